/**
 * Alerts: list, read, acknowledge, and the notifications each one queued. The admin key, or
 * an API key with `alerts:read` (`alerts:ack` to acknowledge) limited to the alerts of the
 * residents it may see (principal.ts); resolving stays `admin`. Lists page with `after` /
 * `next` and answer CSV with `Accept: text/csv`.
 *
 * Who acknowledged and the note are free text people typed (names, often): null for a key
 * without `residents:read`.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { VigilError } from '../core/errors.js';
import type { Alert, OutboxItem, Store } from '../store/types.js';
import type { ApiAccess } from './principal.js';
import { acknowledgeAndStop } from '../notify/acknowledgements.js';
import { sendCsv, wantsCsv } from './csv.js';
import type { AlertView } from './views.js';

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

export const alertView = (a: Alert): AlertView => ({
  ...a,
  openedAt: iso(a.openedAt)!,
  detectedAt: iso(a.detectedAt)!,
  acknowledgedAt: iso(a.acknowledgedAt),
  resolvedAt: iso(a.resolvedAt),
  lastSeenAt: iso(a.lastSeenAt)!,
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
    limit: { type: 'string', pattern: '^[0-9]{1,4}$', description: 'Alerts per page, 1–1000 (default 100).' },
    after: { type: 'string', maxLength: 300, description: 'The `next` of the previous page.' },
  },
} as const;

const ackBody = {
  type: 'object',
  required: ['by'],
  additionalProperties: false,
  properties: { by: { type: 'string', minLength: 1, maxLength: 200 }, note: { type: 'string', maxLength: 2000 } },
} as const;

const nullable = (type: string) => ({ type: [type, 'null'] });
const alertParams = { type: 'object', required: ['id'], properties: { id: { type: 'string', maxLength: 100 } } } as const;

export const alertSchema = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    residentId: { type: 'string' },
    deviceId: { type: 'string' },
    type: { type: 'string', description: 'FALL, SOS, HR_HIGH, … (docs/detection.md)' },
    severity: { type: 'string', enum: ['critical', 'high', 'medium', 'low'] },
    state: { type: 'string', enum: ['open', 'acknowledged', 'resolved'] },
    openedAt: { type: 'string', description: 'Event time of the triggering reading.' },
    detectedAt: { type: 'string' },
    delayMs: nullable('number'),
    acknowledgedAt: nullable('string'),
    acknowledgedBy: { ...nullable('string'), description: 'Null without residents:read.' },
    ackNote: { ...nullable('string'), description: 'Null without residents:read.' },
    resolvedAt: nullable('string'),
    lastSeenAt: { type: 'string' },
    occurrences: { type: 'integer' },
    evidence: { type: 'object', additionalProperties: true },
  },
} as const;

const notificationSchema = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    alertId: { type: 'string' },
    step: { type: 'integer' },
    contactId: { type: 'string' },
    channel: { type: 'string' },
    status: { type: 'string', enum: ['queued', 'sending', 'sent', 'delivered', 'failed', 'cancelled'] },
    attempts: { type: 'integer' },
    nextAttemptAt: nullable('string'),
    lastError: nullable('string'),
    providerId: nullable('string'),
    createdAt: nullable('string'),
    updatedAt: nullable('string'),
  },
} as const;

const ALERT_COLUMNS = [
  'id', 'residentId', 'deviceId', 'type', 'severity', 'state', 'openedAt', 'detectedAt', 'delayMs', 'acknowledgedAt',
  'acknowledgedBy', 'ackNote', 'resolvedAt', 'lastSeenAt', 'occurrences', 'evidence',
] as const satisfies readonly (keyof ReturnType<typeof alertView>)[];

/** The `after` cursor: the (openedAt, id) of the last alert of a page. */
const encodeAfter = (a: Alert) => Buffer.from(JSON.stringify({ o: a.openedAt, i: a.id })).toString('base64url');
function decodeAfter(s: string): { openedAt: number; id: string } {
  try {
    const c = JSON.parse(Buffer.from(s, 'base64url').toString('utf8')) as { o: unknown; i: unknown };
    if (typeof c.o === 'number' && typeof c.i === 'string') return { openedAt: c.o, id: c.i };
  } catch {
    // fall through
  }
  throw new VigilError('INVALID_BODY', 'after is not a cursor this API returned');
}

/** Listing order: newest first, then id descending (the stores' order). */
const listingOrder = (a: Alert, b: Alert) => b.openedAt - a.openedAt || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0);

export function registerAlertsApi(app: FastifyInstance, store: Store, access: ApiAccess): void {
  /** The alert view for this caller: who acknowledged and the note only with residents:read. */
  const viewFor = (req: FastifyRequest) => {
    const full = access.has(req, 'residents:read');
    return (a: Alert) => (full ? alertView(a) : { ...alertView(a), acknowledgedBy: null, ackNote: null });
  };
  /** The alert, if the caller may see its resident (else an audited 403). */
  const alertFor = async (req: FastifyRequest, id: string): Promise<Alert> => {
    const alert = await store.getAlert(id);
    if (!alert) throw new VigilError('NOT_FOUND', `no alert ${id}`);
    access.checkResident(req, alert.residentId);
    return alert;
  };

  app.register(async (scope) => {
    scope.get('/v1/alerts', {
      config: { scope: 'alerts:read' },
      schema: {
        tags: ['Alerts'],
        summary: 'List alerts',
        description:
          'Newest first, filtered; `limit` per page and `next` the `after` of the next page (null on the last). ' +
          'A key limited to residents sees only theirs (a `residentId` of another is 403).',
        querystring: listQuery,
        response: {
          200: {
            description: 'Alerts',
            content: {
              'application/json': { schema: { type: 'object', properties: { alerts: { type: 'array', items: alertSchema }, next: nullable('string') } } },
              'text/csv': { schema: { type: 'string', description: 'RFC 4180, one header row; the next page in a `Link: <…>; rel="next"` header.' } },
            },
          },
        },
      },
    }, async (req, reply) => {
      const q = req.query as { residentId?: string; state?: Alert['state']; type?: string; limit?: string; after?: string };
      const limit = Math.min(1000, Math.max(1, Number(q.limit ?? 100)));
      const filter = { state: q.state, type: q.type, limit, after: q.after ? decodeAfter(q.after) : undefined };
      const allowed = access.residents(req);
      let alerts: Alert[];
      if (q.residentId !== undefined) {
        access.checkResident(req, q.residentId);
        alerts = await store.listAlerts({ ...filter, residentId: q.residentId });
      } else if (allowed === null) {
        alerts = await store.listAlerts(filter);
      } else {
        // One page per resident the key may see, merged in listing order.
        const pages = await Promise.all(allowed.map((residentId) => store.listAlerts({ ...filter, residentId })));
        alerts = pages.flat().sort(listingOrder).slice(0, limit);
      }
      const next = alerts.length === limit ? encodeAfter(alerts[alerts.length - 1]) : null;
      const views = alerts.map(viewFor(req));
      if (wantsCsv(req)) return sendCsv(req, reply, ALERT_COLUMNS, views, { param: 'after', cursor: next });
      return { alerts: views, next };
    });

    scope.get('/v1/alerts/:id', {
      config: { scope: 'alerts:read' },
      schema: { tags: ['Alerts'], summary: 'An alert', params: alertParams, response: { 200: { description: 'The alert', ...alertSchema } } },
    }, async (req) => viewFor(req)(await alertFor(req, (req.params as { id: string }).id)));

    scope.post('/v1/alerts/:id/ack', {
      config: { scope: 'alerts:ack' },
      schema: {
        tags: ['Alerts'],
        summary: 'Acknowledge an alert',
        description: 'open → acknowledged; escalation stops. `409 CONFLICT` if it is already resolved.',
        params: alertParams,
        body: ackBody,
        response: { 200: { description: 'The alert, acknowledged', ...alertSchema } },
      },
    }, async (req) => {
      const { id } = req.params as { id: string };
      await alertFor(req, id);
      const { by, note } = req.body as { by: string; note?: string };
      const alert = await acknowledgeAndStop(store, id, by, note ?? null);
      if (!alert) throw new VigilError('NOT_FOUND', `no alert ${id}`);
      if (alert.state === 'resolved' && alert.acknowledgedAt === null) throw new VigilError('CONFLICT', `alert ${id} is already resolved`);
      return viewFor(req)(alert);
    });

    scope.post('/v1/alerts/:id/resolve', {
      config: { scope: 'admin' },
      schema: {
        tags: ['Alerts'],
        summary: 'Resolve an alert',
        description: 'open or acknowledged → resolved, by a person; escalation stops.',
        params: alertParams,
        body: ackBody,
        response: { 200: { description: 'The alert, resolved', ...alertSchema } },
      },
    }, async (req) => {
      const { id } = req.params as { id: string };
      await alertFor(req, id);
      const { by, note } = req.body as { by: string; note?: string };
      const alert = await store.resolveAlert(id, by, note ?? null, Date.now());
      if (!alert) throw new VigilError('NOT_FOUND', `no alert ${id}`);
      await store.cancelOutbox(id, 'alert resolved', Date.now());
      return viewFor(req)(alert);
    });

    scope.get('/v1/alerts/:id/notifications', {
      config: { scope: 'alerts:read' },
      schema: {
        tags: ['Alerts'],
        summary: "An alert's notification history",
        description: 'Every notification the alert queued, per escalation step, contact and channel, with its delivery status (payloads are never shown).',
        params: alertParams,
        response: { 200: { description: 'Notifications', type: 'object', properties: { notifications: { type: 'array', items: notificationSchema } } } },
      },
    }, async (req) => {
      const { id } = req.params as { id: string };
      await alertFor(req, id);
      return { notifications: (await store.listOutbox(id)).map(notificationView) };
    });
  });
}
