/**
 * A notification channel delivers one outbox row. `send` resolves when the provider took the
 * message (with its id, if it gives one) and throws when it did not; the outbox sender owns
 * retries, so a channel never retries by itself.
 *
 * Rows carry no personal data (the store encrypts it; the outbox is not encrypted): the sender
 * hands the channel the alert, the resident and the contact as the store gives them
 * (decrypted), and the channel builds the message and finds the address at send time.
 */
import type { Alert, Contact, OutboxItem, Resident } from '../store/types.js';

export interface Delivery {
  item: OutboxItem;
  alert: Alert;
  resident: Resident | null;
  /** Null when the contact was deleted after the row was queued (the channel then fails it). */
  contact: Contact | null;
  /**
   * A digest: every open alert whose digest row for this contact and channel came due together
   * (`alert` is the first). One message covers them all; the sender completes every row.
   */
  digest?: Alert[];
}

export interface Channel {
  readonly name: string;
  send(delivery: Delivery): Promise<{ providerId?: string }>;
}

/** A failure that retrying cannot fix (no address, contact gone, subscription expired). */
export class PermanentDeliveryError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PermanentDeliveryError';
  }
}

/**
 * What providers' inbound callbacks may do (notify/acknowledgements.ts implements it over the
 * store): acknowledge alerts and record delivery reports.
 */
export interface AcknowledgementService {
  /** Acknowledges every open alert that was sent by SMS or call to this phone; returns their ids. */
  acknowledgeByPhone(phone: string, via: 'sms' | 'voice'): Promise<string[]>;
  /** Acknowledges one alert on behalf of one of its contacts; false when it is not open or unknown. */
  acknowledgeAlert(alertId: string, contactId: string, via: 'sms' | 'voice' | 'push' | 'email'): Promise<boolean>;
  /** A provider's delivery report for a row it took. */
  recordDelivery(channel: string, providerId: string, status: 'delivered' | 'failed', error: string | null): Promise<void>;
}
