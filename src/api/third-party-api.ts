/**
 * The third-party API's own routes (docs/api.md, Third-party API); the resident data routes
 * it shares with the admin are in warehouse-api.ts and alerts-api.ts.
 *
 * - `POST/GET /v1/api-keys`, `DELETE /v1/api-keys/{id}` (scope `admin`): keys are shown once
 *   and stored as SHA-256; a revoked key is refused at once by this process, within 2 s by
 *   the others (principal.ts).
 * - `GET /v1/residents` (any key): the residents the key may see; names, birth dates, home,
 *   medical notes only with `residents:read` (ids are random, so the rest is pseudonymous).
 * - `GET /v1/residents/{id}/device-status` (`alerts:read`): the band's state behind the
 *   DEVICE_OFFLINE / NOT_WORN / BATTERY_LOW alerts — its latest reading (time, battery, worn,
 *   charging) and those alerts while unresolved. No health data, hence not `readings:read`.
 */
import type { FastifyInstance } from 'fastify';
import { VigilError } from '../core/errors.js';
import { hashSecret, newId, newSecret } from '../core/ids.js';
import type { ApiKey, Resident, Store } from '../store/types.js';
import type { ReadingCursor, ReadingRow } from '../warehouse/types.js';
import { alertSchema, alertView } from './alerts-api.js';
import { API_KEY_PREFIX, SCOPES, type ApiAccess } from './principal.js';
import type { WarehouseQueries } from './warehouse-api.js';

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
/** How far back device status looks for a reading. */
export const DEVICE_STATUS_LOOKBACK_MS = 30 * DAY;
/** Alert types about the band rather than the resident. */
export const DEVICE_ALERT_TYPES = ['DEVICE_OFFLINE', 'NOT_WORN', 'BATTERY_LOW'];

const nullable = (type: string) => ({ type: [type, 'null'] });
const idParams = { type: 'object', required: ['id'], properties: { id: { type: 'string', maxLength: 100 } } } as const;

const apiKeyBody = {
  type: 'object',
  required: ['name', 'scopes'],
  additionalProperties: false,
  properties: {
    name: { type: 'string', minLength: 1, maxLength: 200, description: 'Who uses it, for the listing and the logs.' },
    scopes: { type: 'array', minItems: 1, uniqueItems: true, items: { type: 'string', enum: SCOPES }, description: 'What it may do.' },
    residentIds: {
      anyOf: [{ type: 'array', maxItems: 1000, uniqueItems: true, items: { type: 'string', minLength: 1, maxLength: 100 } }, { type: 'null' }],
      description: 'The residents it may see; absent or null: every resident.',
    },
  },
} as const;

const apiKeyProperties = {
  id: { type: 'string', description: '`key_…`: names the key (not a secret).' },
  name: { type: 'string' },
  scopes: { type: 'array', items: { type: 'string' } },
  residentIds: { type: ['array', 'null'], items: { type: 'string' } },
  createdAt: { type: 'string' },
  revokedAt: nullable('string'),
} as const;

const residentSchema = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    timezone: { type: 'string' },
    createdAt: { type: 'string' },
    name: { type: 'string', description: 'Only with residents:read.' },
    birthDate: { ...nullable('string'), description: 'Only with residents:read.' },
    homeLocation: {
      type: ['object', 'null'],
      description: 'Only with residents:read.',
      properties: { lat: { type: 'number' }, lon: { type: 'number' }, radiusM: { type: 'number' } },
    },
    medicalNotes: { ...nullable('string'), description: 'Only with residents:read.' },
  },
} as const;

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());
const apiKeyView = (k: ApiKey) => ({
  id: k.id,
  name: k.name,
  scopes: k.scopes,
  residentIds: k.residentIds,
  createdAt: iso(k.createdAt),
  revokedAt: iso(k.revokedAt),
});

/**
 * The resident's newest reading in the lookback (null: none): the vitals' buckets narrow the
 * time down (last day with readings, its last hour, its last minute), then that minute's
 * readings give the row — four small queries whatever the history, where paging the
 * readings forward would read all of it.
 */
export async function latestReading(queries: Pick<WarehouseQueries, 'vitals' | 'readings'>, residentId: string, now: number): Promise<ReadingRow | null> {
  // Readings may be stamped a little ahead of the server's clock (ingest.maxFutureSkewMs).
  let from = now - DEVICE_STATUS_LOOKBACK_MS;
  let to = now + HOUR;
  for (const [step, size] of [['1d', DAY], ['1h', HOUR], ['1m', MINUTE]] as const) {
    const buckets = await queries.vitals({ residentId, from, to, step });
    const last = buckets[buckets.length - 1];
    if (!last) return null;
    const start = Date.parse(last.bucket);
    from = Math.max(from, start);
    to = Math.min(to, start + size);
  }
  const limit = 10_000;
  let latest: ReadingRow | null = null;
  let after: ReadingCursor | undefined;
  for (;;) {
    const page = await queries.readings({ residentId, from, to, limit, after });
    if (page.length) latest = page[page.length - 1];
    if (page.length < limit || !latest) return latest;
    after = { ts: Date.parse(latest.ts), deviceId: latest.deviceId, seq: latest.seq };
  }
}

export interface ThirdPartyDeps {
  store: Store;
  /** Null when no warehouse is readable from this process (DuckDB owned by another). */
  queries: WarehouseQueries | null;
  access: ApiAccess;
}

export function registerThirdPartyApi(app: FastifyInstance, { store, queries, access }: ThirdPartyDeps): void {
  app.register(async (scope) => {
    scope.post('/v1/api-keys', {
      config: { scope: 'admin' },
      schema: {
        tags: ['API keys'],
        summary: 'Create an API key',
        description:
          'The key (`vkey_…`) is in this answer only: Vigil keeps its SHA-256. A key limited to residents can only create keys limited to (some of) its residents.',
        body: apiKeyBody,
        response: { 201: { description: 'The key, shown once', type: 'object', properties: { ...apiKeyProperties, key: { type: 'string' } } } },
      },
    }, async (req, reply) => {
      const body = req.body as { name: string; scopes: string[]; residentIds?: string[] | null };
      const residentIds = body.residentIds ?? null;
      const creator = access.principal(req).residentIds;
      if (creator !== null) {
        const outside = residentIds === null ? null : residentIds.find((id) => !creator.includes(id));
        if (residentIds === null || outside !== undefined) throw access.forbidden(req, 'resident', outside ?? undefined);
      }
      for (const id of residentIds ?? []) {
        if (!(await store.getResident(id))) throw new VigilError('INVALID_BODY', `residentIds: no resident ${id}`);
      }
      const key = newSecret(API_KEY_PREFIX);
      const created = await store.createApiKey({
        id: newId('key'),
        name: body.name,
        keyHash: hashSecret(key),
        scopes: body.scopes,
        residentIds,
        createdAt: Date.now(),
      });
      req.log.info({ audit: 'api.key.created', keyId: created.id, by: req.principal?.id, scopes: created.scopes }, 'API key created');
      return reply.code(201).send({ ...apiKeyView(created), key });
    });

    scope.get('/v1/api-keys', {
      config: { scope: 'admin' },
      schema: {
        tags: ['API keys'],
        summary: 'List API keys',
        description: 'Every key, revoked ones too, oldest first (never the key itself).',
        response: { 200: { description: 'Keys', type: 'object', properties: { apiKeys: { type: 'array', items: { type: 'object', properties: apiKeyProperties } } } } },
      },
    }, async () => ({ apiKeys: (await store.listApiKeys()).map(apiKeyView) }));

    scope.delete('/v1/api-keys/:id', {
      config: { scope: 'admin' },
      schema: {
        tags: ['API keys'],
        summary: 'Revoke an API key',
        description: 'Refused by this process from the next request on, by other processes within 2 s. The key stays listed, with `revokedAt`.',
        params: idParams,
        response: { 204: { description: 'Revoked', type: 'null' } },
      },
    }, async (req, reply) => {
      const { id } = req.params as { id: string };
      const revoked = await store.revokeApiKey(id, Date.now());
      if (!revoked) throw new VigilError('NOT_FOUND', `no API key ${id}`);
      access.auth.invalidate(id);
      req.log.info({ audit: 'api.key.revoked', keyId: id, by: req.principal?.id }, 'API key revoked');
      return reply.code(204).send();
    });

    scope.get('/v1/residents', {
      config: { scope: 'any' },
      schema: {
        tags: ['Residents'],
        summary: 'List residents',
        description:
          'The residents the key may see, by id (keyset pagination: `next` is the `after` of the next page). ' +
          'Without `residents:read` only `id`, `timezone` and `createdAt`: ids are random, so nothing personal.',
        querystring: {
          type: 'object',
          properties: {
            limit: { type: 'string', pattern: '^[0-9]{1,4}$', description: '1–1000, default 100.' },
            after: { type: 'string', description: 'The `next` of the previous page.' },
          },
        },
        response: {
          200: { description: 'Residents', type: 'object', properties: { residents: { type: 'array', items: residentSchema }, next: nullable('string') } },
        },
      },
    }, async (req) => {
      const q = req.query as { limit?: string; after?: string };
      const limit = Math.min(1000, Math.max(1, Number(q.limit ?? 100)));
      const allowed = access.residents(req);
      let residents: Resident[];
      /** The ids this page covered, in order (a listed id whose resident is gone is skipped). */
      let covered: string[];
      if (allowed === null) {
        residents = await store.listResidents({ limit, after: q.after });
        covered = residents.map((r) => r.id);
      } else {
        covered = [...allowed].sort().filter((id) => q.after === undefined || id > q.after).slice(0, limit);
        residents = (await Promise.all(covered.map((id) => store.getResident(id)))).filter((r): r is Resident => r !== null);
      }
      const full = access.has(req, 'residents:read');
      return {
        residents: residents.map((r) =>
          full ? { ...r, createdAt: iso(r.createdAt) } : { id: r.id, timezone: r.timezone, createdAt: iso(r.createdAt) },
        ),
        next: covered.length === limit ? covered[covered.length - 1] : null,
      };
    });

    scope.get('/v1/residents/:id/device-status', {
      config: { scope: 'alerts:read', residentParam: 'id' },
      schema: {
        tags: ['Residents'],
        summary: "The state of a resident's band",
        description:
          `The newest reading in the warehouse (last ${DEVICE_STATUS_LOOKBACK_MS / DAY} days) — its time, battery, worn and charging — ` +
          `and the unresolved device alerts (${DEVICE_ALERT_TYPES.join(', ')}).`,
        params: idParams,
        response: {
          200: {
            description: 'Device status',
            type: 'object',
            properties: {
              residentId: { type: 'string' },
              devices: { type: 'array', items: { type: 'object', properties: { deviceId: { type: 'string' }, registeredAt: { type: 'string' } } } },
              lastReading: {
                type: ['object', 'null'],
                properties: {
                  deviceId: { type: 'string' },
                  seq: { type: 'integer' },
                  ts: { type: 'string' },
                  receivedAt: { type: 'string' },
                  battery: nullable('number'),
                  worn: nullable('boolean'),
                  charging: nullable('boolean'),
                },
              },
              deviceAlerts: { type: 'array', items: alertSchema },
            },
          },
        },
      },
    }, async (req) => {
      const { id } = req.params as { id: string };
      if (!(await store.getResident(id))) throw new VigilError('NOT_FOUND', `no resident ${id}`);
      if (!queries) throw new VigilError('UNAVAILABLE', 'the DuckDB warehouse is readable only in the process that runs the warehouse group');
      const [devices, last, open, acknowledged] = await Promise.all([
        store.listDevices(id),
        latestReading(queries, id, Date.now()),
        store.listAlerts({ residentId: id, state: 'open' }),
        store.listAlerts({ residentId: id, state: 'acknowledged' }),
      ]);
      const full = access.has(req, 'residents:read');
      return {
        residentId: id,
        devices: devices.map((d) => ({ deviceId: d.deviceId, registeredAt: iso(d.createdAt) })),
        lastReading: last && {
          deviceId: last.deviceId,
          seq: last.seq,
          ts: last.ts,
          receivedAt: last.receivedAt,
          battery: last.battery,
          worn: last.worn,
          charging: last.charging,
        },
        deviceAlerts: [...open, ...acknowledged]
          .filter((a) => DEVICE_ALERT_TYPES.includes(a.type))
          .sort((a, b) => b.openedAt - a.openedAt)
          .map((a) => (full ? alertView(a) : { ...alertView(a), acknowledgedBy: null, ackNote: null })),
      };
    });
  });
}
