/**
 * SMS notifications through the Twilio Messages resource (docs/notifications-twilio.md).
 *
 * The text is built at send time from the alert and the resident (messages.ts), with the way to
 * acknowledge: replying OK, which Twilio posts to `/v1/providers/twilio/sms`. Twilio reports
 * the message's fate (delivered, undelivered, failed) to `/v1/providers/twilio/status`, keyed
 * by the Message SID this channel returns as the row's providerId.
 */
import { alertMessage } from '../../messages.js';
import type { Channel, Delivery } from '../../types.js';
import { phoneOf, type TwilioChannelOptions } from '../twilio/twilio-client.js';

export const SMS_ACK_HINT = 'Reply OK to acknowledge.';

export const smsBody = (d: Pick<Delivery, 'alert' | 'resident' | 'digest'>): string => `${alertMessage(d.alert, d.resident, d.digest).text} ${SMS_ACK_HINT}`;

export class SmsChannel implements Channel {
  readonly name = 'sms';
  private readonly statusCallback: string;

  constructor(private readonly o: TwilioChannelOptions) {
    this.statusCallback = `${o.publicUrl.replace(/\/+$/, '')}/v1/providers/twilio/status`;
  }

  async send(d: Delivery): Promise<{ providerId?: string }> {
    const to = phoneOf(d.contact, 'SMS');
    const { sid } = await this.o.client.createMessage({ To: to, From: this.o.from, Body: smsBody(d), StatusCallback: this.statusCallback });
    return { providerId: sid };
  }
}
