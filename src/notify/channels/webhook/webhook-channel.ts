/**
 * Webhook notifications: `POST <contact.webhookUrl>` with the JSON body queued in the outbox.
 *
 * Headers (docs/webhooks.md):
 * - `X-Vigil-Signature: sha256=<hex HMAC-SHA256 of the raw body, keyed with the contact's webhookSecret>`
 * - `X-Vigil-Delivery: <outbox id>` — the same on every retry of one notification, so a
 *   receiver that saw it already can ignore a resend after a crash.
 * - `X-Vigil-Event: alert.opened`
 */
import { createHmac } from 'node:crypto';
import type { EscalationPayload } from '../../escalation/escalation-plan.js';
import { PermanentDeliveryError, type Channel, type Delivery } from '../../types.js';

export const sign = (secret: string, body: string): string => 'sha256=' + createHmac('sha256', secret).update(body).digest('hex');

export class WebhookChannel implements Channel {
  readonly name = 'webhook';
  constructor(private readonly timeoutMs: number) {}

  async send({ item }: Delivery): Promise<{ providerId?: string }> {
    const request = (item.payload as EscalationPayload).webhook;
    if (!request) throw new PermanentDeliveryError('the row carries no webhook request');
    const { url, secret, event, body } = request;
    const text = JSON.stringify(body);
    const res = await fetch(url, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'user-agent': 'Vigil-Webhook/1',
        'x-vigil-signature': sign(secret, text),
        'x-vigil-delivery': item.id,
        'x-vigil-event': event,
      },
      body: text,
      signal: AbortSignal.timeout(this.timeoutMs),
    });
    await res.arrayBuffer().catch(() => undefined);
    if (!res.ok) throw new Error(`webhook answered ${res.status}`);
    return { providerId: res.headers.get('x-request-id') ?? undefined };
  }
}
