/**
 * What every backend does to sleep sessions and daily activity before its SQL sees them, so
 * that the engines accept and refuse the same calls:
 * - Dates must be written `YYYY-MM-DD`: the engines' own date parsers accept other spellings
 *   (DuckDB `2024-1-5`, PostgreSQL `Jan 5 2024` and whatever its DateStyle reads), which would
 *   store different days on different engines. A well-formed date that does not exist
 *   (`2024-02-30`) is left to the DATE column, which rejects it.
 * - `start`/`end` are parsed to epoch ms here (any ISO-8601 offset; stored as UTC).
 * - Counts (steps, awakenings) must be integers: PostgreSQL rejects a fraction in an INTEGER
 *   column, DuckDB would round it.
 * - A call that names a key twice keeps the last row of it, as if the rows had been saved one
 *   after the other (an upsert statement may not touch one row twice).
 * - Rows are sorted by key, so concurrent saves lock shared keys in one order.
 * Missing keys and other nulls are left to the NOT NULL columns.
 */
import type { DailyActivityRow, DayRangeQuery, SleepSessionRow, WarehouseInsights } from './types.js';

/** A sleep session with its times as epoch ms. */
export type SleepToStore = SleepSessionRow & { startMs: number; endMs: number };

export interface InsightsToStore {
  sleep: SleepToStore[];
  activity: DailyActivityRow[];
}

const DAY = /^\d{4}-\d{2}-\d{2}$/;

/** Validated, deduplicated (last row of a key wins) and sorted by key; throws on a malformed row. */
export function insightsToStore(rows: WarehouseInsights): InsightsToStore {
  const sleep = lastPerKey(rows.sleep, (r) => [r.deviceId, r.night]).map((r) => {
    day(r.night, 'sleep session night');
    integer(r.awakenings, 'sleep session awakenings');
    return { ...r, startMs: epochMs(r.start, 'sleep session start'), endMs: epochMs(r.end, 'sleep session end') };
  });
  const activity = lastPerKey(rows.activity, (r) => [r.deviceId, r.day]);
  for (const r of activity) {
    day(r.day, 'daily activity day');
    integer(r.steps, 'daily activity steps');
  }
  return { sleep, activity };
}

/** Throws unless both bounds are `YYYY-MM-DD`. */
export function checkDayRange(q: DayRangeQuery): void {
  for (const [what, v] of [['from', q.from], ['to', q.to]] as const) {
    if (!(typeof v === 'string' && DAY.test(v))) throw new RangeError(`${what} must be a YYYY-MM-DD date, got ${JSON.stringify(v)}`);
  }
}

/** Throws unless the id of a resident to erase is a non-empty string (a worker-thread call passes anything). */
export function checkResidentId(residentId: unknown): void {
  if (!(typeof residentId === 'string' && residentId !== '')) {
    throw new TypeError(`residentId must be a non-empty string, got ${JSON.stringify(residentId)}`);
  }
}

function lastPerKey<T>(rows: readonly T[], key: (row: T) => [string, string]): T[] {
  const byKey = new Map<string, { key: [string, string]; row: T }>();
  for (const row of rows) {
    const k = key(row);
    const id = JSON.stringify(k);
    byKey.delete(id);
    byKey.set(id, { key: k, row });
  }
  return [...byKey.values()].sort((a, b) => compare(a.key[0], b.key[0]) || compare(a.key[1], b.key[1])).map((e) => e.row);
}

/** Nulls (left to the NOT NULL columns) first. */
function compare(a: string | null, b: string | null): number {
  if (a === b) return 0;
  if (a === null) return -1;
  if (b === null) return 1;
  return a < b ? -1 : 1;
}

function day(v: unknown, what: string): void {
  if (v !== null && v !== undefined && !(typeof v === 'string' && DAY.test(v))) {
    throw new RangeError(`${what} must be a YYYY-MM-DD date, got ${JSON.stringify(v)}`);
  }
}

function integer(v: unknown, what: string): void {
  if (v !== null && v !== undefined && !Number.isSafeInteger(v)) {
    throw new RangeError(`${what} must be an integer, got ${JSON.stringify(v)}`);
  }
}

function epochMs(v: unknown, what: string): number {
  const ms = typeof v === 'string' ? Date.parse(v) : NaN;
  if (!Number.isFinite(ms)) throw new RangeError(`${what} must be an ISO-8601 time, got ${JSON.stringify(v)}`);
  return ms;
}
