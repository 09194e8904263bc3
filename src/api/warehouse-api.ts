/**
 * Per-resident readings and vitals from the warehouse: the admin key, or an API key with the
 * route's scope that may see the resident (principal.ts). JSON, or CSV with `Accept: text/csv`
 * (csv.ts). Where the queries go is decided by the app: to the warehouse group's thread when
 * it runs here (DuckDB has one owner per process), or straight to a networked warehouse
 * (PostgreSQL) from an API-only process.
 *
 * Locations are personal data (they show where the resident lives): a reading's `lat`, `lon`
 * and `accuracyM` are null for a key without `residents:read`.
 */
import type { FastifyInstance } from 'fastify';
import { VigilError } from '../core/errors.js';
import type { Store } from '../store/types.js';
import type { DailyActivityRow, DayRangeQuery, ReadingRow, ReadingsQuery, SleepSessionRow, VitalsQuery, VitalsRow } from '../warehouse/types.js';
import type { ApiAccess } from './principal.js';
import { sendCsv, wantsCsv } from './csv.js';

const HOUR = 3_600_000;

/** `from`/`to` as ISO-8601 or epoch ms. */
export function parseTime(value: string | undefined, name: string, fallback: number): number {
  if (value === undefined || value === '') return fallback;
  const ms = /^\d+$/.test(value) ? Number(value) : Date.parse(value);
  if (!Number.isFinite(ms)) throw new VigilError('INVALID_BODY', `${name} must be an ISO-8601 time or epoch milliseconds`);
  return ms;
}

function range(q: { from?: string; to?: string }, defaultSpanMs: number) {
  const to = parseTime(q.to, 'to', Date.now());
  const from = parseTime(q.from, 'from', to - defaultSpanMs);
  if (from > to) throw new VigilError('INVALID_BODY', 'from must not be after to');
  return { from, to };
}

interface Cursor {
  ts: number;
  deviceId: string;
  seq: number;
}

const encodeCursor = (c: Cursor) => Buffer.from(JSON.stringify(c)).toString('base64url');
function decodeCursor(s: string): Cursor {
  try {
    const c = JSON.parse(Buffer.from(s, 'base64url').toString('utf8')) as Cursor;
    if (typeof c.ts === 'number' && typeof c.deviceId === 'string' && typeof c.seq === 'number') return c;
  } catch {
    // fall through
  }
  throw new VigilError('INVALID_BODY', 'cursor is not one this API returned');
}

export interface WarehouseQueries {
  readings(q: ReadingsQuery): Promise<ReadingRow[]>;
  vitals(q: VitalsQuery): Promise<VitalsRow[]>;
  sleepSessions(q: DayRangeQuery): Promise<SleepSessionRow[]>;
  dailyActivity(q: DayRangeQuery): Promise<DailyActivityRow[]>;
  /** Not a read: the right to erasure (api/erasure-service.ts) goes the same way to the warehouse. */
  eraseResident(residentId: string): Promise<{ readings: number; sleepSessions: number; dailyActivity: number }>;
}

const DAY_MS = 86_400_000;
const ISO_DAY = /^\d{4}-\d{2}-\d{2}$/;

/** `from`/`to` as local dates `YYYY-MM-DD` (inclusive); by default the last `defaultDays` days. */
function dayRange(q: { from?: string; to?: string }, defaultDays: number): { from: string; to: string } {
  for (const [name, v] of [['from', q.from], ['to', q.to]] as const) {
    if (v !== undefined && (!ISO_DAY.test(v) || Number.isNaN(Date.parse(v)))) throw new VigilError('INVALID_BODY', `${name} must be a date YYYY-MM-DD`);
  }
  const to = q.to ?? new Date(Date.now()).toISOString().slice(0, 10);
  const from = q.from ?? new Date(Date.parse(to) - (defaultDays - 1) * DAY_MS).toISOString().slice(0, 10);
  if (from > to) throw new VigilError('INVALID_BODY', 'from must not be after to');
  return { from, to };
}

const nullable = (type: string) => ({ type: [type, 'null'] });
const residentParams = { type: 'object', required: ['id'], properties: { id: { type: 'string', maxLength: 100 } } } as const;
const timeRange = {
  from: { type: 'string', description: 'ISO-8601 time or epoch milliseconds, inclusive.' },
  to: { type: 'string', description: 'ISO-8601 time or epoch milliseconds, exclusive. Default: now.' },
} as const;
const dayRangeQuery = {
  type: 'object',
  properties: {
    from: { type: 'string', description: 'First local date YYYY-MM-DD. Default: 6 days before `to`.' },
    to: { type: 'string', description: 'Last local date YYYY-MM-DD, inclusive. Default: today (UTC).' },
  },
} as const;

export const readingSchema = {
  type: 'object',
  properties: {
    deviceId: { type: 'string' },
    seq: { type: 'integer' },
    residentId: { type: 'string' },
    ts: { type: 'string', description: 'Device time, ISO-8601 UTC.' },
    receivedAt: { type: 'string' },
    hr: nullable('number'),
    spo2: nullable('number'),
    skinTemp: nullable('number'),
    steps: nullable('number'),
    battery: nullable('number'),
    worn: nullable('boolean'),
    charging: nullable('boolean'),
    events: { type: ['array', 'null'], items: { type: 'string' } },
    lat: { ...nullable('number'), description: 'Null without residents:read.' },
    lon: { ...nullable('number'), description: 'Null without residents:read.' },
    accuracyM: { ...nullable('number'), description: 'Null without residents:read.' },
    accHz: nullable('number'),
    accSamples: nullable('integer'),
    flags: { type: ['array', 'null'], items: { type: 'string' } },
  },
} as const;
const vitalsSchema = {
  type: 'object',
  properties: {
    bucket: { type: 'string', description: 'Start of the UTC bucket, ISO-8601.' },
    hrAvg: nullable('number'),
    hrMin: nullable('number'),
    hrMax: nullable('number'),
    spo2Avg: nullable('number'),
    spo2Min: nullable('number'),
    skinTempAvg: nullable('number'),
    steps: nullable('number'),
    readings: { type: 'integer' },
  },
} as const;
const sleepSchema = {
  type: 'object',
  properties: {
    deviceId: { type: 'string' },
    residentId: { type: 'string' },
    night: { type: 'string', description: 'Local date of the evening, YYYY-MM-DD.' },
    start: { type: 'string' },
    end: { type: 'string' },
    totalSleepMin: { type: 'number' },
    efficiency: { type: 'number' },
    wasoMin: { type: 'number' },
    awakenings: { type: 'integer' },
    onsetLatencyMin: nullable('number'),
  },
} as const;
const activitySchema = {
  type: 'object',
  properties: {
    deviceId: { type: 'string' },
    residentId: { type: 'string' },
    day: { type: 'string', description: 'Local date, YYYY-MM-DD.' },
    steps: { type: 'number' },
    activeMinutes: { type: 'number' },
    longestSedentaryMin: { type: 'number' },
    wornMinutes: { type: 'number' },
    final: { type: 'boolean', description: 'False while the day is still running.' },
  },
} as const;

/** A 200 answer as JSON (`schema`) or CSV (`Accept: text/csv`). */
const jsonOrCsv = (description: string, schema: object) => ({
  200: {
    description,
    content: {
      'application/json': { schema },
      'text/csv': { schema: { type: 'string', description: 'RFC 4180, one header row; the next page in a `Link: <…>; rel="next"` header.' } },
    },
  },
});

export const READING_COLUMNS = [
  'deviceId', 'seq', 'ts', 'receivedAt', 'hr', 'spo2', 'skinTemp', 'steps', 'battery', 'worn', 'charging',
  'events', 'lat', 'lon', 'accuracyM', 'accHz', 'accSamples', 'flags',
] as const satisfies readonly (keyof ReadingRow)[];
const VITALS_COLUMNS = ['bucket', 'hrAvg', 'hrMin', 'hrMax', 'spo2Avg', 'spo2Min', 'skinTempAvg', 'steps', 'readings'] as const satisfies readonly (keyof VitalsRow)[];
const SLEEP_COLUMNS = [
  'deviceId', 'night', 'start', 'end', 'totalSleepMin', 'efficiency', 'wasoMin', 'awakenings', 'onsetLatencyMin',
] as const satisfies readonly (keyof SleepSessionRow)[];
const ACTIVITY_COLUMNS = [
  'deviceId', 'day', 'steps', 'activeMinutes', 'longestSedentaryMin', 'wornMinutes', 'final',
] as const satisfies readonly (keyof DailyActivityRow)[];

/** A reading without its location (a key without residents:read). */
export const withoutLocation = (r: ReadingRow): ReadingRow => ({ ...r, lat: null, lon: null, accuracyM: null });

/** `queries` is null when no warehouse is readable from this process (DuckDB owned by another). */
export function registerWarehouseApi(app: FastifyInstance, store: Store, queries: WarehouseQueries | null, access: ApiAccess): void {
  app.register(async (scope) => {
    scope.addHook('preHandler', async (req) => {
      const { id } = req.params as { id: string };
      if (!(await store.getResident(id))) throw new VigilError('NOT_FOUND', `no resident ${id}`);
      if (!queries) throw new VigilError('UNAVAILABLE', 'the DuckDB warehouse is readable only in the process that runs the warehouse group');
    });

    scope.get('/v1/residents/:id/readings', {
      config: { scope: 'readings:read', residentParam: 'id' },
      schema: {
        tags: ['Warehouse'],
        summary: "A resident's readings",
        description: 'Readings in `[from, to)` (default: the last hour), oldest first, `limit` per page (≤ 10000, default 1000); `next` is the `cursor` of the next page, null on the last.',
        params: residentParams,
        querystring: {
          type: 'object',
          properties: {
            ...timeRange,
            limit: { type: 'string', pattern: '^[0-9]{1,5}$', description: 'Rows per page, 1–10000.' },
            cursor: { type: 'string', maxLength: 500, description: 'The `next` of the previous page.' },
          },
        },
        response: jsonOrCsv('Readings', {
          type: 'object',
          properties: {
            residentId: { type: 'string' },
            from: { type: 'string' },
            to: { type: 'string' },
            readings: { type: 'array', items: readingSchema },
            next: nullable('string'),
          },
        }),
      },
    }, async (req, reply) => {
      const { id } = req.params as { id: string };
      const q = req.query as { from?: string; to?: string; limit?: string; cursor?: string };
      const { from, to } = range(q, HOUR);
      const limit = Math.min(10_000, Math.max(1, Number(q.limit ?? 1000) || 1000));
      const after = q.cursor ? decodeCursor(q.cursor) : undefined;
      const rows = await queries!.readings({ residentId: id, from, to, limit, after });
      const last = rows[rows.length - 1];
      const next = rows.length === limit ? encodeCursor({ ts: Date.parse(last.ts), deviceId: last.deviceId, seq: last.seq }) : null;
      const readings = access.has(req, 'residents:read') ? rows : rows.map(withoutLocation);
      if (wantsCsv(req)) return sendCsv(req, reply, READING_COLUMNS, readings, { param: 'cursor', cursor: next });
      return { residentId: id, from: new Date(from).toISOString(), to: new Date(to).toISOString(), readings, next };
    });

    scope.get('/v1/residents/:id/vitals', {
      config: { scope: 'vitals:read', residentParam: 'id' },
      schema: {
        tags: ['Warehouse'],
        summary: "A resident's vitals",
        description: 'Vitals per UTC bucket of `step` in `[from, to)` (default: the last 24 h), oldest first; buckets without readings are absent.',
        params: residentParams,
        querystring: { type: 'object', properties: { ...timeRange, step: { type: 'string', enum: ['1m', '15m', '1h', '1d'], description: 'Bucket size. Default 1m.' } } },
        response: jsonOrCsv('Vitals', {
          type: 'object',
          properties: { residentId: { type: 'string' }, step: { type: 'string' }, from: { type: 'string' }, to: { type: 'string' }, vitals: { type: 'array', items: vitalsSchema } },
        }),
      },
    }, async (req, reply) => {
      const { id } = req.params as { id: string };
      const q = req.query as { from?: string; to?: string; step?: string };
      const step = q.step ?? '1m';
      if (!['1m', '15m', '1h', '1d'].includes(step)) throw new VigilError('INVALID_BODY', 'step must be one of 1m, 15m, 1h, 1d');
      const { from, to } = range(q, 24 * HOUR);
      const vitals = await queries!.vitals({ residentId: id, from, to, step: step as VitalsQuery['step'] });
      if (wantsCsv(req)) return sendCsv(req, reply, VITALS_COLUMNS, vitals);
      return { residentId: id, step, from: new Date(from).toISOString(), to: new Date(to).toISOString(), vitals };
    });

    scope.get('/v1/residents/:id/sleep', {
      config: { scope: 'sleep:read', residentParam: 'id' },
      schema: {
        tags: ['Warehouse'],
        summary: "A resident's sleep sessions",
        description: 'Sleep sessions whose night (local date of the evening) is in `[from, to]`, default the last 7.',
        params: residentParams,
        querystring: dayRangeQuery,
        response: jsonOrCsv('Sleep sessions', {
          type: 'object',
          properties: { residentId: { type: 'string' }, from: { type: 'string' }, to: { type: 'string' }, sessions: { type: 'array', items: sleepSchema } },
        }),
      },
    }, async (req, reply) => {
      const { id } = req.params as { id: string };
      const { from, to } = dayRange(req.query as { from?: string; to?: string }, 7);
      const sessions = await queries!.sleepSessions({ residentId: id, from, to });
      if (wantsCsv(req)) return sendCsv(req, reply, SLEEP_COLUMNS, sessions);
      return { residentId: id, from, to, sessions };
    });

    scope.get('/v1/residents/:id/activity', {
      config: { scope: 'activity:read', residentParam: 'id' },
      schema: {
        tags: ['Warehouse'],
        summary: "A resident's daily activity",
        description: 'Daily activity for local days in `[from, to]`, default the last 7; today\'s row has `final: false`.',
        params: residentParams,
        querystring: dayRangeQuery,
        response: jsonOrCsv('Daily activity', {
          type: 'object',
          properties: { residentId: { type: 'string' }, from: { type: 'string' }, to: { type: 'string' }, days: { type: 'array', items: activitySchema } },
        }),
      },
    }, async (req, reply) => {
      const { id } = req.params as { id: string };
      const { from, to } = dayRange(req.query as { from?: string; to?: string }, 7);
      const days = await queries!.dailyActivity({ residentId: id, from, to });
      if (wantsCsv(req)) return sendCsv(req, reply, ACTIVITY_COLUMNS, days);
      return { residentId: id, from, to, days };
    });
  });
}
