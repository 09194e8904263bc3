/** Alert batches for the backend-specific store tests (the conformance suite has its own). */
import type { Alert, Lease, OutboxItem } from '../types.js';

export const T0 = 1_700_000_000_000;

/** Two webhook rows per alert, as `notificationsFor` would build them. */
export const outboxFor = (alert: Alert): OutboxItem[] =>
  ['con-a', 'con-b'].map((contactId) => ({
    id: `${alert.id}:0:${contactId}:webhook`,
    alertId: alert.id,
    step: 0,
    contactId,
    channel: 'webhook',
    payload: {},
    status: 'queued',
    attempts: 0,
    nextAttemptAt: T0,
    lastError: null,
    providerId: null,
    createdAt: T0,
    updatedAt: T0,
  }));

export const raise = (id: string, type = 'HR_HIGH') => ({
  kind: 'raise' as const,
  alert: { id, residentId: 'res-1', deviceId: 'band-1', type, severity: 'high' as const, openedAt: T0, detectedAt: T0, delayMs: null, evidence: {} },
});

export const checkpointOf = (lease: Lease, sequence = '1') => ({
  group: lease.group,
  partition: lease.partition,
  sequence,
  snapshot: null,
  fence: { owner: lease.owner, epoch: lease.epoch },
});
