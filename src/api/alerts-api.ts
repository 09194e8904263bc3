/** Alerts: list, read, acknowledge, and the notifications each one queued (admin key). */
import type { FastifyInstance } from 'fastify';
import { VigilError } from '../core/errors.js';
import type { Alert, OutboxItem, Store } from '../store/types.js';
import type { AdminAuth } from './admin-auth.js';
import { acknowledgeAndStop } from '../notify/acknowledgements.js';

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

export const alertView = (a: Alert) => ({
  ...a,
  openedAt: iso(a.openedAt),
  detectedAt: iso(a.detectedAt),
  acknowledgedAt: iso(a.acknowledgedAt),
  resolvedAt: iso(a.resolvedAt),
  lastSeenAt: iso(a.lastSeenAt),
});

/** The payload holds the webhook secret: never shown. */
const notificationView = (n: OutboxItem) => ({
  id: n.id,
  alertId: n.alertId,
  step: n.step,
  contactId: n.contactId,
  channel: n.channel,
  status: n.status,
  attempts: n.attempts,
  nextAttemptAt: iso(n.nextAttemptAt),
  lastError: n.lastError,
  providerId: n.providerId,
  createdAt: iso(n.createdAt),
  updatedAt: iso(n.updatedAt),
});

const listQuery = {
  type: 'object',
  additionalProperties: false,
  properties: {
    residentId: { type: 'string' },
    state: { type: 'string', enum: ['open', 'acknowledged', 'resolved'] },
    type: { type: 'string', pattern: '^[A-Z_]{1,40}$' },
    limit: { type: 'string', pattern: '^[0-9]{1,4}$' },
  },
} as const;

const ackBody = {
  type: 'object',
  required: ['by'],
  additionalProperties: false,
  properties: { by: { type: 'string', minLength: 1, maxLength: 200 }, note: { type: 'string', maxLength: 2000 } },
} as const;

export function registerAlertsApi(app: FastifyInstance, store: Store, admin: AdminAuth): void {
  app.register(async (scope) => {
    scope.addHook('onRequest', async (req) => admin.check(req));

    scope.get('/v1/alerts', { schema: { querystring: listQuery } }, async (req) => {
      const q = req.query as { residentId?: string; state?: Alert['state']; type?: string; limit?: string };
      const alerts = await store.listAlerts({ ...q, limit: q.limit ? Math.min(1000, Number(q.limit)) : undefined });
      return { alerts: alerts.map(alertView) };
    });

    scope.get('/v1/alerts/:id', async (req) => {
      const { id } = req.params as { id: string };
      const alert = await store.getAlert(id);
      if (!alert) throw new VigilError('NOT_FOUND', `no alert ${id}`);
      return alertView(alert);
    });

    scope.post('/v1/alerts/:id/ack', { schema: { body: ackBody } }, async (req) => {
      const { id } = req.params as { id: string };
      const { by, note } = req.body as { by: string; note?: string };
      const alert = await acknowledgeAndStop(store, id, by, note ?? null);
      if (!alert) throw new VigilError('NOT_FOUND', `no alert ${id}`);
      if (alert.state === 'resolved' && alert.acknowledgedAt === null) throw new VigilError('CONFLICT', `alert ${id} is already resolved`);
      return alertView(alert);
    });

    scope.post('/v1/alerts/:id/resolve', { schema: { body: ackBody } }, async (req) => {
      const { id } = req.params as { id: string };
      const { by, note } = req.body as { by: string; note?: string };
      const alert = await store.resolveAlert(id, by, note ?? null, Date.now());
      if (!alert) throw new VigilError('NOT_FOUND', `no alert ${id}`);
      await store.cancelOutbox(id, 'alert resolved', Date.now());
      return alertView(alert);
    });

    scope.get('/v1/alerts/:id/notifications', async (req) => {
      const { id } = req.params as { id: string };
      if (!(await store.getAlert(id))) throw new VigilError('NOT_FOUND', `no alert ${id}`);
      return { notifications: (await store.listOutbox(id)).map(notificationView) };
    });
  });
}
