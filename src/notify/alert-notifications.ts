/**
 * Which notifications an alert queues when it is first raised. For now: a webhook to every
 * contact of the resident that has a webhookUrl (step 0). Escalation policies extend this.
 */
import type { Alert, OutboxItem, Store } from '../store/types.js';
import type { WebhookPayload } from './channels/webhook/webhook-channel.js';

export const outboxId = (alertId: string, step: number, contactId: string, channel: string) => `${alertId}:${step}:${contactId}:${channel}`;

/** The documented webhook body (docs/webhooks.md). */
export function alertWebhookBody(alert: Alert) {
  return {
    event: 'alert.opened',
    alert: {
      id: alert.id,
      residentId: alert.residentId,
      deviceId: alert.deviceId,
      type: alert.type,
      severity: alert.severity,
      state: alert.state,
      openedAt: new Date(alert.openedAt).toISOString(),
      detectedAt: new Date(alert.detectedAt).toISOString(),
      delayMs: alert.delayMs,
      evidence: alert.evidence,
    },
  };
}

export function notificationsFor(store: Store) {
  return async (alert: Alert): Promise<OutboxItem[]> => {
    const contacts = await store.listContacts(alert.residentId);
    const now = Date.now();
    return contacts
      .filter((c) => c.webhookUrl && c.webhookSecret)
      .map((c) => {
        const payload: WebhookPayload = { url: c.webhookUrl!, secret: c.webhookSecret!, event: 'alert.opened', body: alertWebhookBody(alert) };
        return {
          id: outboxId(alert.id, 0, c.id, 'webhook'),
          alertId: alert.id,
          step: 0,
          contactId: c.id,
          channel: 'webhook',
          payload: payload as unknown as Record<string, unknown>,
          status: 'queued' as const,
          attempts: 0,
          nextAttemptAt: now,
          lastError: null,
          providerId: null,
          createdAt: now,
          updatedAt: now,
        };
      });
  };
}
