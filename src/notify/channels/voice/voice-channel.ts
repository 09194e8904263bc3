/**
 * Voice-call notifications through the Twilio Calls resource (docs/notifications-twilio.md).
 *
 * The call carries its TwiML inline (no fetch of instructions from Vigil when it is answered):
 * the alert is read out inside a `<Gather numDigits="1">`, so pressing 1 makes Twilio post
 * `Digits=1` to `/v1/providers/twilio/voice?alert=…&contact=…`, which acknowledges that alert
 * for that contact. The query is part of what Twilio signs, so it cannot be forged.
 * https://www.twilio.com/docs/voice/twiml/gather
 */
import type { Alert } from '../../../store/types.js';
import { alertMessage } from '../../messages.js';
import type { Channel, Delivery } from '../../types.js';
import { phoneOf, type TwilioChannelOptions } from '../twilio/twilio-client.js';
import { xml } from '../twilio/twiml.js';

/** Where Twilio posts the keypress of a call about `alert` to `contact`. */
export const voiceActionUrl = (publicUrl: string, alertId: string, contactId: string): string =>
  `${publicUrl.replace(/\/+$/, '')}/v1/providers/twilio/voice?alert=${encodeURIComponent(alertId)}&contact=${encodeURIComponent(contactId)}`;

/** The TwiML of an alert call: the message, "press 1", and a goodbye when nothing is pressed. */
export function callTwiml(message: string, actionUrl: string): string {
  return (
    `<Response><Gather numDigits="1" action="${xml(actionUrl)}" method="POST">` +
    `<Say>${xml(message)} Press 1 to acknowledge.</Say></Gather>` +
    `<Say>No key pressed. Goodbye.</Say></Response>`
  );
}

export const alertCallTwiml = (publicUrl: string, alert: Alert, resident: Delivery['resident'], contactId: string): string =>
  callTwiml(alertMessage(alert, resident).text, voiceActionUrl(publicUrl, alert.id, contactId));

export class VoiceChannel implements Channel {
  readonly name = 'voice';
  private readonly statusCallback: string;

  constructor(private readonly o: TwilioChannelOptions) {
    this.statusCallback = `${o.publicUrl.replace(/\/+$/, '')}/v1/providers/twilio/status`;
  }

  async send(d: Delivery): Promise<{ providerId?: string }> {
    const to = phoneOf(d.contact, 'call');
    // The row's contact id: the notification is keyed by it (DESIGN §3.2), and the keypress acknowledges for it.
    const twiml = alertCallTwiml(this.o.publicUrl, d.alert, d.resident, d.item.contactId);
    const { sid } = await this.o.client.createCall({ To: to, From: this.o.from, Twiml: twiml, StatusCallback: this.statusCallback });
    return { providerId: sid };
  }
}
