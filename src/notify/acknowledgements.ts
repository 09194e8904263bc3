/**
 * Acknowledgements that arrive through a channel rather than the API — an SMS reply, a
 * keypress in a call — and providers' delivery reports, applied to the store. Acknowledging
 * cancels the alert's notifications not sent yet: escalation stops at once.
 */
import type { Store } from '../store/types.js';
import type { AcknowledgementService } from './types.js';

/** Phone numbers compared by their digits only: "+33 6 12 34 56 78" = "+33612345678". */
const digits = (phone: string) => phone.replace(/\D/g, '');

/** Acknowledges an alert through the store and stops its escalation; shared with the API. Channel acks are recorded as `<channel>:<contactId>`: no name in clear on the alert. */
export async function acknowledgeAndStop(store: Store, alertId: string, by: string, note: string | null, now = Date.now()) {
  const alert = await store.acknowledgeAlert(alertId, by, note, now);
  if (alert && alert.state !== 'open') await store.cancelOutbox(alertId, `alert ${alert.state}`, now);
  return alert;
}

export class StoreAcknowledgements implements AcknowledgementService {
  constructor(
    private readonly store: Store,
    private readonly clock: () => number = Date.now,
  ) {}

  async acknowledgeByPhone(phone: string, via: 'sms' | 'voice'): Promise<string[]> {
    const wanted = digits(phone);
    if (wanted.length < 3) return [];
    const acknowledged: string[] = [];
    // Few alerts are open at any time; their rows say which phones were called or texted.
    for (const alert of await this.store.listAlerts({ state: 'open', limit: 1000 })) {
      const rows = (await this.store.listOutbox(alert.id)).filter((r) => (r.channel === 'sms' || r.channel === 'voice') && (r.status === 'sent' || r.status === 'delivered'));
      for (const contactId of new Set(rows.map((r) => r.contactId))) {
        const contact = await this.store.getContact(contactId);
        if (contact?.phone && digits(contact.phone) === wanted) {
          await acknowledgeAndStop(this.store, alert.id, `${via}:${contact.id}`, null, this.clock());
          acknowledged.push(alert.id);
          break;
        }
      }
    }
    return acknowledged;
  }

  async acknowledgeAlert(alertId: string, contactId: string, via: 'sms' | 'voice' | 'push' | 'email'): Promise<boolean> {
    const [alert, contact] = await Promise.all([this.store.getAlert(alertId), this.store.getContact(contactId)]);
    if (!alert || alert.state !== 'open' || !contact || contact.residentId !== alert.residentId) return false;
    const after = await acknowledgeAndStop(this.store, alertId, `${via}:${contact.id}`, null, this.clock());
    return after?.state === 'acknowledged';
  }

  async recordDelivery(channel: string, providerId: string, status: 'delivered' | 'failed', error: string | null): Promise<void> {
    await this.store.recordDelivery(channel, providerId, status, error, this.clock());
  }
}
