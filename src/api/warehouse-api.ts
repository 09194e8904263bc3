/**
 * Per-resident readings and vitals from the warehouse (admin key). Where the queries go is
 * decided by the app: to the warehouse group's thread when it runs here (DuckDB has one
 * owner per process), or straight to a networked warehouse (PostgreSQL) from an API-only
 * process.
 */
import type { FastifyInstance } from 'fastify';
import { VigilError } from '../core/errors.js';
import type { Store } from '../store/types.js';
import type { DailyActivityRow, DayRangeQuery, ReadingRow, ReadingsQuery, SleepSessionRow, VitalsQuery, VitalsRow } from '../warehouse/types.js';
import type { AdminAuth } from './admin-auth.js';

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

/** `queries` is null when no warehouse is readable from this process (DuckDB owned by another). */
export function registerWarehouseApi(app: FastifyInstance, store: Store, queries: WarehouseQueries | null, admin: AdminAuth): void {
  app.register(async (scope) => {
    scope.addHook('onRequest', async (req) => admin.check(req));
    scope.addHook('preHandler', async (req) => {
      const { id } = req.params as { id: string };
      if (!(await store.getResident(id))) throw new VigilError('NOT_FOUND', `no resident ${id}`);
      if (!queries) throw new VigilError('UNAVAILABLE', 'the DuckDB warehouse is readable only in the process that runs the warehouse group');
    });

    scope.get('/v1/residents/:id/readings', async (req) => {
      const { id } = req.params as { id: string };
      const q = req.query as { from?: string; to?: string; limit?: string; cursor?: string };
      const { from, to } = range(q, HOUR);
      const limit = Math.min(10_000, Math.max(1, Number(q.limit ?? 1000) || 1000));
      const after = q.cursor ? decodeCursor(q.cursor) : undefined;
      const readings = await queries!.readings({ residentId: id, from, to, limit, after });
      const last = readings[readings.length - 1];
      return {
        residentId: id,
        from: new Date(from).toISOString(),
        to: new Date(to).toISOString(),
        readings,
        next: readings.length === limit ? encodeCursor({ ts: Date.parse(last.ts), deviceId: last.deviceId, seq: last.seq }) : null,
      };
    });

    scope.get('/v1/residents/:id/vitals', async (req) => {
      const { id } = req.params as { id: string };
      const q = req.query as { from?: string; to?: string; step?: string };
      const step = q.step ?? '1m';
      if (!['1m', '15m', '1h', '1d'].includes(step)) throw new VigilError('INVALID_BODY', 'step must be one of 1m, 15m, 1h, 1d');
      const { from, to } = range(q, 24 * HOUR);
      const vitals = await queries!.vitals({ residentId: id, from, to, step: step as VitalsQuery['step'] });
      return { residentId: id, step, from: new Date(from).toISOString(), to: new Date(to).toISOString(), vitals };
    });

    scope.get('/v1/residents/:id/sleep', async (req) => {
      const { id } = req.params as { id: string };
      const { from, to } = dayRange(req.query as { from?: string; to?: string }, 7);
      return { residentId: id, from, to, sessions: await queries!.sleepSessions({ residentId: id, from, to }) };
    });

    scope.get('/v1/residents/:id/activity', async (req) => {
      const { id } = req.params as { id: string };
      const { from, to } = dayRange(req.query as { from?: string; to?: string }, 7);
      return { residentId: id, from, to, days: await queries!.dailyActivity({ residentId: id, from, to }) };
    });
  });
}
