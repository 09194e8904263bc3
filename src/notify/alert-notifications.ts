/**
 * Which notifications an alert queues when it is first raised: the rows of its escalation
 * policy (escalation/), built inside the alert's transaction (`outboxFor`), so an alert and
 * its whole escalation are written together or not at all.
 *
 * An alert detected long after the event (a replay of old data, a phone that kept its buffer
 * for a day) is recorded without paging anyone (DESIGN §3.3): `pageWithinMs`.
 */
import { knownTimeZone } from '../core/local-time.js';
import type { Alert, OutboxItem, Store } from '../store/types.js';
import { planNotifications } from './escalation/escalation-plan.js';
import { policyFor } from './escalation/escalation-policy.js';

export { outboxId } from './escalation/escalation-plan.js';

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

export interface NotificationOptions {
  /** Channels configured on this Vigil. */
  channels: ReadonlySet<string>;
  /** Alerts detected more than this after their event time are not paged. */
  pageWithinMs: number;
  clock?: () => number;
}

export function notificationsFor(store: Store, opts: NotificationOptions) {
  const clock = opts.clock ?? Date.now;
  return async (alert: Alert): Promise<OutboxItem[]> => {
    if (alert.detectedAt - alert.openedAt > opts.pageWithinMs) return [];
    const [contacts, resident, { policy }] = await Promise.all([
      store.listContacts(alert.residentId),
      store.getResident(alert.residentId),
      policyFor(store, alert.residentId, alert.severity),
    ]);
    return planNotifications({
      alert,
      policy,
      contacts,
      timezone: knownTimeZone(resident?.timezone ?? 'UTC'),
      channels: opts.channels,
      webhookBody: alertWebhookBody,
      now: clock(),
    });
  };
}
