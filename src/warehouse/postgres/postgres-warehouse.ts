/**
 * The warehouse on PostgreSQL (DESIGN §2, the self-hosted scale-out engine): the tables,
 * semantics and query answers of the DuckDB warehouse (../duckdb/duckdb-warehouse.ts), shared
 * by every process that loads or queries it through the server.
 *
 * Where the data lives: the database the URL names (created on first open when the server does
 * not have it), in the first existing schema of the connection's `search_path` (set it with
 * `?options=-c%20search_path%3D<schema>`), else `public`.
 *
 * On-disk invariants:
 * - A load is one transaction: `readings` and the `vitals_1m` rows it touches change together
 *   or not at all, durable when COMMIT returns (keep the server's `fsync` and
 *   `synchronous_commit` on).
 * - `readings` holds at most one row per (device_id, seq): the first version committed wins. A
 *   load that meets a key another load has inserted but not committed waits for that one and
 *   skips the key. Raw accelerometer samples are never stored, only acc_hz and acc_samples.
 * - Timestamps are `TIMESTAMP` (without time zone) holding UTC, converted from and to epoch ms
 *   by arithmetic on TIMESTAMP 'epoch', never through the session TimeZone: minute and day
 *   boundaries are UTC whatever the server's or the connection's zone.
 * - `vitals_1m` has a row for every (resident_id, minute) with at least one reading, equal to
 *   the aggregate of that minute's rows in `readings` (recomputed from `readings`, never
 *   incremented). Loads that share a resident recompute one after the other under an advisory
 *   lock held to commit, so the later one reads the earlier one's rows: concurrent loads from
 *   any number of processes keep the minutes exact.
 * - device_id sorts bytewise (COLLATE "C"), as in DuckDB, whatever the database's locale.
 * - `sleep_sessions` (key (device_id, night)) and `daily_activity` (key (device_id, day)) hold
 *   the last version committed of each key. A `saveInsights` call is one transaction of
 *   upserts, its rows sorted by key so that concurrent saves lock shared keys in one order.
 *   Dates are `DATE`, read back with to_char (never through the session's DateStyle).
 * - `eraseResident` is one transaction: under the resident's advisory lock (the one a load
 *   holds while it recomputes the resident's minutes), it deletes the resident's readings,
 *   minutes, sleep sessions and daily activity. A load of the resident committed before it is
 *   erased; one that commits after it keeps its rows, with minutes recomputed from the rows left.
 * - `staging` is a TEMP table per connection, empty outside a load's transaction.
 * - Everything PostgreSQL-only is in postgres-dialect.ts; the SQL here is also Redshift's.
 */
import pg from 'pg';
import { checkDayRange, checkResidentId, insightsToStore } from '../insights.js';
import {
  STEP_MINUTES,
  type DailyActivityRow,
  type DayRangeQuery,
  type ReadingRow,
  type ReadingsQuery,
  type SleepSessionRow,
  type VitalsQuery,
  type VitalsRow,
  type Warehouse,
  type WarehouseInsights,
  type WarehouseReading,
} from '../types.js';
import {
  BEGIN_LOAD,
  DEVICE_ID_TYPE,
  INDEXES,
  LOCK_RESIDENT,
  LOCK_SETUP,
  LOCK_STAGED_RESIDENTS,
  TEXT_LIST_TYPE,
  insertNew,
  lockResidentRows,
  stageRows,
  upsert,
} from './postgres-dialect.js';
import { createDatabase, INVALID_CATALOG_NAME, sqlState } from '../../core/postgres.js';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS readings (
  device_id ${DEVICE_ID_TYPE} NOT NULL,
  seq BIGINT NOT NULL,
  resident_id VARCHAR NOT NULL,
  ts TIMESTAMP NOT NULL,
  received_at TIMESTAMP NOT NULL,
  hr DOUBLE PRECISION,
  spo2 DOUBLE PRECISION,
  skin_temp DOUBLE PRECISION,
  steps INTEGER,
  battery DOUBLE PRECISION,
  worn BOOLEAN,
  charging BOOLEAN,
  events ${TEXT_LIST_TYPE},
  lat DOUBLE PRECISION,
  lon DOUBLE PRECISION,
  accuracy_m DOUBLE PRECISION,
  acc_hz DOUBLE PRECISION,
  acc_samples INTEGER,
  flags ${TEXT_LIST_TYPE},
  PRIMARY KEY (device_id, seq)
);
CREATE TABLE IF NOT EXISTS vitals_1m (
  resident_id VARCHAR NOT NULL,
  minute TIMESTAMP NOT NULL,
  hr_avg DOUBLE PRECISION,
  hr_min DOUBLE PRECISION,
  hr_max DOUBLE PRECISION,
  hr_count BIGINT NOT NULL,
  spo2_avg DOUBLE PRECISION,
  spo2_min DOUBLE PRECISION,
  spo2_count BIGINT NOT NULL,
  skin_temp_avg DOUBLE PRECISION,
  skin_temp_count BIGINT NOT NULL,
  steps BIGINT,
  readings BIGINT NOT NULL,
  PRIMARY KEY (resident_id, minute)
);
CREATE TABLE IF NOT EXISTS sleep_sessions (
  device_id ${DEVICE_ID_TYPE} NOT NULL,
  night DATE NOT NULL,
  resident_id VARCHAR NOT NULL,
  start_ts TIMESTAMP NOT NULL,
  end_ts TIMESTAMP NOT NULL,
  total_sleep_min DOUBLE PRECISION NOT NULL,
  efficiency DOUBLE PRECISION NOT NULL,
  waso_min DOUBLE PRECISION NOT NULL,
  awakenings INTEGER NOT NULL,
  onset_latency_min DOUBLE PRECISION,
  PRIMARY KEY (device_id, night)
);
CREATE TABLE IF NOT EXISTS daily_activity (
  device_id ${DEVICE_ID_TYPE} NOT NULL,
  day DATE NOT NULL,
  resident_id VARCHAR NOT NULL,
  steps INTEGER NOT NULL,
  active_minutes DOUBLE PRECISION NOT NULL,
  longest_sedentary_min DOUBLE PRECISION NOT NULL,
  worn_minutes DOUBLE PRECISION NOT NULL,
  final BOOLEAN NOT NULL,
  PRIMARY KEY (device_id, day)
);
${INDEXES};`;

/** Epoch ms to TIMESTAMP (UTC) and back, exact to the millisecond, independent of the session zone. */
const fromMs = (ms: string) => `(TIMESTAMP 'epoch' + ${ms} * INTERVAL '1 millisecond')`;
const toMs = (ts: string) => `CAST(EXTRACT(EPOCH FROM ${ts}) * 1000 AS BIGINT)`;

const READINGS_COLUMNS = [
  'device_id', 'seq', 'resident_id', 'ts', 'received_at', 'hr', 'spo2', 'skin_temp', 'steps', 'battery', 'worn',
  'charging', 'events', 'lat', 'lon', 'accuracy_m', 'acc_hz', 'acc_samples', 'flags',
] as const;

/** Sorted by key, so concurrent loads take their key locks in one order and cannot deadlock. */
const INSERT_STAGED = insertNew('readings', READINGS_COLUMNS, ['device_id', 'seq'], `
SELECT device_id, seq, resident_id, ${fromMs('ts_ms')}, ${fromMs('received_at_ms')},
  hr, spo2, skin_temp, steps, battery, worn, charging, events, lat, lon, accuracy_m, acc_hz, acc_samples, flags
FROM staging ORDER BY device_id, seq`);

const VITALS_COLUMNS = [
  'resident_id', 'minute', 'hr_avg', 'hr_min', 'hr_max', 'hr_count', 'spo2_avg', 'spo2_min', 'spo2_count',
  'skin_temp_avg', 'skin_temp_count', 'steps', 'readings',
] as const;

/**
 * The staged rows' minutes, recomputed from everything stored: one index range scan per
 * (resident, minute). The batch's bounds ($1, $2: epoch ms) are there for the planner, which
 * cannot tell how few rows a range joined on a staged minute holds; without them it scans the
 * whole table (measured at 1M readings: 250–900 ms against 3 ms for a 5000-row batch).
 */
const RECOMPUTE_MINUTES = upsert('vitals_1m', VITALS_COLUMNS, ['resident_id', 'minute'], `
SELECT r.resident_id, date_trunc('minute', r.ts),
  avg(r.hr), min(r.hr), max(r.hr), count(r.hr),
  avg(r.spo2), min(r.spo2), count(r.spo2),
  avg(r.skin_temp), count(r.skin_temp),
  sum(r.steps), count(*)
FROM readings r
JOIN (SELECT DISTINCT resident_id, date_trunc('minute', ${fromMs('ts_ms')}) AS minute FROM staging) t
  ON r.resident_id = t.resident_id AND r.ts >= t.minute AND r.ts < t.minute + INTERVAL '1 minute'
WHERE r.ts >= ${fromMs('$1')} AND r.ts < ${fromMs('$2')}
GROUP BY r.resident_id, date_trunc('minute', r.ts)`);

const READING_FIELDS = `
device_id AS "deviceId", seq, resident_id AS "residentId", ${toMs('ts')} AS ts, ${toMs('received_at')} AS "receivedAt",
hr, spo2, skin_temp AS "skinTemp", steps, battery, worn, charging, events,
lat, lon, accuracy_m AS "accuracyM", acc_hz AS "accHz", acc_samples AS "accSamples", flags`;
const READINGS_RANGE = `resident_id = $1 AND ts >= ${fromMs('$2')} AND ts < ${fromMs('$3')}`;
const READINGS_ORDER = 'ORDER BY ts, device_id, seq LIMIT $4';
const SELECT_READINGS = `SELECT ${READING_FIELDS} FROM readings WHERE ${READINGS_RANGE} ${READINGS_ORDER}`;
/** (ts, device_id, seq) > cursor, spelled out: Redshift has no row-value comparison. */
const SELECT_READINGS_AFTER = `SELECT ${READING_FIELDS} FROM readings WHERE ${READINGS_RANGE}
  AND ts >= ${fromMs('$5')} AND (ts > ${fromMs('$5')} OR device_id > $6 OR (device_id = $6 AND seq > $7))
  ${READINGS_ORDER}`;

/** Buckets count whole steps from the epoch: UTC boundaries, as DuckDB's time_bucket gives for steps that divide a day. */
const SELECT_VITALS = `
SELECT (CAST(EXTRACT(EPOCH FROM minute) AS BIGINT) / $4) * $4 * 1000 AS bucket,
  sum(hr_avg * hr_count) / nullif(sum(hr_count), 0) AS "hrAvg",
  min(hr_min) AS "hrMin", max(hr_max) AS "hrMax",
  sum(spo2_avg * spo2_count) / nullif(sum(spo2_count), 0) AS "spo2Avg",
  min(spo2_min) AS "spo2Min",
  sum(skin_temp_avg * skin_temp_count) / nullif(sum(skin_temp_count), 0) AS "skinTempAvg",
  CAST(sum(steps) AS BIGINT) AS steps, CAST(sum(readings) AS BIGINT) AS readings
FROM vitals_1m
WHERE resident_id = $1 AND minute >= ${fromMs('$2')} AND minute < ${fromMs('$3')}
GROUP BY 1 ORDER BY 1`;

const SLEEP_COLUMNS = [
  'device_id', 'night', 'resident_id', 'start_ts', 'end_ts', 'total_sleep_min', 'efficiency', 'waso_min', 'awakenings',
  'onset_latency_min',
] as const;
const ACTIVITY_COLUMNS = [
  'device_id', 'day', 'resident_id', 'steps', 'active_minutes', 'longest_sedentary_min', 'worn_minutes', 'final',
] as const;

/** Rows per upsert statement: 10 parameters a row, far below the protocol's 65535. */
const UPSERT_ROWS = 1000;

/**
 * An upsert of `rows` rows given as parameters, one per column a row; `row` makes a row's
 * VALUES tuple of its placeholders. Parameters of an INSERT's VALUES take the types of their
 * columns: a malformed date or a fraction for an INTEGER fails the statement.
 */
function upsertValues(table: string, columns: readonly string[], key: readonly string[], rows: number, row: (p: string[]) => string): string {
  const tuples: string[] = [];
  for (let i = 0; i < rows; i++) tuples.push(row(columns.map((_, c) => `$${i * columns.length + c + 1}`)));
  return upsert(table, columns, key, `VALUES ${tuples.join(', ')}`);
}

const upsertSleep = (rows: number) =>
  upsertValues('sleep_sessions', SLEEP_COLUMNS, ['device_id', 'night'], rows, (p) =>
    `(${p[0]}, ${p[1]}, ${p[2]}, ${fromMs(p[3])}, ${fromMs(p[4])}, ${p.slice(5).join(', ')})`);
const upsertActivity = (rows: number) =>
  upsertValues('daily_activity', ACTIVITY_COLUMNS, ['device_id', 'day'], rows, (p) => `(${p.join(', ')})`);

/** Ordered by the input columns (qualified), not by their to_char text. */
const SELECT_SLEEP = `
SELECT device_id AS "deviceId", resident_id AS "residentId", to_char(night, 'YYYY-MM-DD') AS "night",
  ${toMs('start_ts')} AS "start", ${toMs('end_ts')} AS "end", total_sleep_min AS "totalSleepMin", efficiency,
  waso_min AS "wasoMin", awakenings, onset_latency_min AS "onsetLatencyMin"
FROM sleep_sessions
WHERE resident_id = $1 AND night >= CAST($2 AS DATE) AND night <= CAST($3 AS DATE)
ORDER BY sleep_sessions.night, sleep_sessions.device_id`;

const SELECT_ACTIVITY = `
SELECT device_id AS "deviceId", resident_id AS "residentId", to_char(day, 'YYYY-MM-DD') AS "day", steps,
  active_minutes AS "activeMinutes", longest_sedentary_min AS "longestSedentaryMin", worn_minutes AS "wornMinutes", final
FROM daily_activity
WHERE resident_id = $1 AND day >= CAST($2 AS DATE) AND day <= CAST($3 AS DATE)
ORDER BY daily_activity.day, daily_activity.device_id`;

/**
 * An erasure's statements, after LOCK_RESIDENT. The insights' rows are locked first in key
 * order, as a save locks them (sorted by key, sleep before activity), so an erasure and a save
 * of the same resident wait for each other instead of deadlocking.
 */
const ERASE_RESIDENT = {
  readings: 'DELETE FROM readings WHERE resident_id = $1',
  vitals: 'DELETE FROM vitals_1m WHERE resident_id = $1',
  lockSleep: lockResidentRows('sleep_sessions', ['device_id', 'night']),
  sleep: 'DELETE FROM sleep_sessions WHERE resident_id = $1',
  lockActivity: lockResidentRows('daily_activity', ['device_id', 'day']),
  activity: 'DELETE FROM daily_activity WHERE resident_id = $1',
};

/** Loads and queries in flight at once; the server has the cores, a few connections keep them busy. */
const POOL_SIZE = 4;

/**
 * Every BIGINT here (seq, epoch ms, counts) is far below 2^53, so it is read as a number;
 * set per pool, so other pg users in the process keep their parsers.
 */
const TYPES = new pg.TypeOverrides();
TYPES.setTypeParser(pg.types.builtins.INT8, Number);

export class PostgresWarehouse implements Warehouse {
  /** Loads and saves in flight: close() waits for these, as DuckDB's close waits for its writer. */
  private readonly writing = new Set<Promise<unknown>>();

  private constructor(private readonly pool: pg.Pool) {}

  static async open(url: string): Promise<PostgresWarehouse> {
    const pool = new pg.Pool({ connectionString: url, max: POOL_SIZE, types: TYPES });
    // An idle connection that dies (server restart) is dropped by the pool and replaced on the
    // next query; unhandled, the event would crash the process.
    pool.on('error', () => undefined);
    try {
      await createTables(pool).catch(async (err: unknown) => {
        if (sqlState(err) !== INVALID_CATALOG_NAME) throw err;
        await createDatabase(url);
        await createTables(pool);
      });
    } catch (err) {
      await pool.end();
      throw err;
    }
    return new PostgresWarehouse(pool);
  }

  load(rows: WarehouseReading[]): Promise<{ inserted: number }> {
    return this.track(this.loadNow(rows));
  }

  private track<T>(run: Promise<T>): Promise<T> {
    this.writing.add(run);
    const forget = () => this.writing.delete(run);
    run.then(forget, forget);
    return run;
  }

  private async loadNow(rows: WarehouseReading[]): Promise<{ inserted: number }> {
    if (rows.length === 0) return { inserted: 0 };
    return this.inTransaction(BEGIN_LOAD, async (client) => {
      await stageRows(client, rows);
      const inserted = (await client.query(INSERT_STAGED)).rowCount ?? 0;
      if (inserted > 0) {
        await client.query(LOCK_STAGED_RESIDENTS);
        await client.query(RECOMPUTE_MINUTES, minutesSpanned(rows));
      }
      return { inserted };
    });
  }

  /**
   * Runs `work` in one transaction on a pooled connection. On failure the original error is
   * reported (a failed COMMIT has already ended the transaction), and a connection that cannot
   * even roll back is closed rather than handed to the next caller.
   */
  private async inTransaction<T>(begin: string, work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    const client = await this.pool.connect();
    let broken: Error | undefined;
    try {
      await client.query(begin);
      const result = await work(client);
      await client.query('COMMIT');
      return result;
    } catch (err) {
      await client.query('ROLLBACK').catch((rollbackErr: Error) => {
        broken = rollbackErr;
      });
      throw err;
    } finally {
      client.release(broken);
    }
  }

  saveInsights(rows: WarehouseInsights): Promise<void> {
    return this.track(this.saveInsightsNow(rows));
  }

  private async saveInsightsNow(rows: WarehouseInsights): Promise<void> {
    const { sleep, activity } = insightsToStore(rows);
    if (sleep.length === 0 && activity.length === 0) return;
    await this.inTransaction('BEGIN', async (client) => {
      for (let i = 0; i < sleep.length; i += UPSERT_ROWS) {
        const chunk = sleep.slice(i, i + UPSERT_ROWS);
        await client.query(upsertSleep(chunk.length), chunk.flatMap((r) => [
          r.deviceId, r.night, r.residentId, r.startMs, r.endMs, r.totalSleepMin, r.efficiency, r.wasoMin, r.awakenings,
          r.onsetLatencyMin ?? null,
        ]));
      }
      for (let i = 0; i < activity.length; i += UPSERT_ROWS) {
        const chunk = activity.slice(i, i + UPSERT_ROWS);
        await client.query(upsertActivity(chunk.length), chunk.flatMap((r) => [
          r.deviceId, r.day, r.residentId, r.steps, r.activeMinutes, r.longestSedentaryMin, r.wornMinutes, r.final,
        ]));
      }
    });
  }

  eraseResident(residentId: string): Promise<{ readings: number; sleepSessions: number; dailyActivity: number }> {
    return this.track(this.eraseResidentNow(residentId));
  }

  private async eraseResidentNow(residentId: string): Promise<{ readings: number; sleepSessions: number; dailyActivity: number }> {
    checkResidentId(residentId);
    return this.inTransaction('BEGIN', async (client) => {
      const run = async (sql: string) => (await client.query(sql, [residentId])).rowCount ?? 0;
      await run(LOCK_RESIDENT);
      const readings = await run(ERASE_RESIDENT.readings);
      await run(ERASE_RESIDENT.vitals);
      await run(ERASE_RESIDENT.lockSleep);
      const sleepSessions = await run(ERASE_RESIDENT.sleep);
      await run(ERASE_RESIDENT.lockActivity);
      const dailyActivity = await run(ERASE_RESIDENT.activity);
      return { readings, sleepSessions, dailyActivity };
    });
  }

  async sleepSessions(q: DayRangeQuery): Promise<SleepSessionRow[]> {
    checkDayRange(q);
    const { rows } = await this.pool.query(SELECT_SLEEP, [q.residentId, q.from, q.to]);
    return rows.map(toSleepSessionRow);
  }

  async dailyActivity(q: DayRangeQuery): Promise<DailyActivityRow[]> {
    checkDayRange(q);
    const { rows } = await this.pool.query(SELECT_ACTIVITY, [q.residentId, q.from, q.to]);
    return rows.map(toDailyActivityRow);
  }

  async readings(q: ReadingsQuery): Promise<ReadingRow[]> {
    const values: unknown[] = [q.residentId, q.from, q.to, q.limit];
    if (q.after) values.push(q.after.ts, q.after.deviceId, q.after.seq);
    const { rows } = await this.pool.query(q.after ? SELECT_READINGS_AFTER : SELECT_READINGS, values);
    return rows.map(toReadingRow);
  }

  async vitals(q: VitalsQuery): Promise<VitalsRow[]> {
    const { rows } = await this.pool.query(SELECT_VITALS, [q.residentId, q.from, q.to, STEP_MINUTES[q.step] * 60]);
    return rows.map(toVitalsRow);
  }

  async close(): Promise<void> {
    await Promise.allSettled(this.writing);
    await this.pool.end();
  }
}

/** One implicit transaction (a multi-statement query), serialized with other processes' by LOCK_SETUP. */
async function createTables(pool: pg.Pool): Promise<void> {
  await pool.query(`${LOCK_SETUP};${SCHEMA}`);
}

const MINUTE_MS = 60_000;

/** [first minute, end of last minute) of the rows' device times, epoch ms. */
function minutesSpanned(rows: readonly WarehouseReading[]): [number, number] {
  let lo = Infinity;
  let hi = -Infinity;
  for (const { ts } of rows) {
    if (ts < lo) lo = ts;
    if (ts > hi) hi = ts;
  }
  return [Math.floor(lo / MINUTE_MS) * MINUTE_MS, Math.floor(hi / MINUTE_MS) * MINUTE_MS + MINUTE_MS];
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

function toReadingRow(o: Record<string, unknown>): ReadingRow {
  return {
    deviceId: o.deviceId as string,
    seq: o.seq as number,
    residentId: o.residentId as string,
    ts: iso(o.ts as number),
    receivedAt: iso(o.receivedAt as number),
    hr: o.hr as number | null,
    spo2: o.spo2 as number | null,
    skinTemp: o.skinTemp as number | null,
    steps: o.steps as number | null,
    battery: o.battery as number | null,
    worn: o.worn as boolean | null,
    charging: o.charging as boolean | null,
    events: o.events as string[] | null,
    lat: o.lat as number | null,
    lon: o.lon as number | null,
    accuracyM: o.accuracyM as number | null,
    accHz: o.accHz as number | null,
    accSamples: o.accSamples as number | null,
    flags: o.flags as string[] | null,
  };
}

function toVitalsRow(o: Record<string, unknown>): VitalsRow {
  return {
    bucket: iso(o.bucket as number),
    hrAvg: o.hrAvg as number | null,
    hrMin: o.hrMin as number | null,
    hrMax: o.hrMax as number | null,
    spo2Avg: o.spo2Avg as number | null,
    spo2Min: o.spo2Min as number | null,
    skinTempAvg: o.skinTempAvg as number | null,
    steps: o.steps as number | null,
    readings: o.readings as number,
  };
}

function toSleepSessionRow(o: Record<string, unknown>): SleepSessionRow {
  return {
    deviceId: o.deviceId as string,
    residentId: o.residentId as string,
    night: o.night as string,
    start: iso(o.start as number),
    end: iso(o.end as number),
    totalSleepMin: o.totalSleepMin as number,
    efficiency: o.efficiency as number,
    wasoMin: o.wasoMin as number,
    awakenings: o.awakenings as number,
    onsetLatencyMin: o.onsetLatencyMin as number | null,
  };
}

function toDailyActivityRow(o: Record<string, unknown>): DailyActivityRow {
  return {
    deviceId: o.deviceId as string,
    residentId: o.residentId as string,
    day: o.day as string,
    steps: o.steps as number,
    activeMinutes: o.activeMinutes as number,
    longestSedentaryMin: o.longestSedentaryMin as number,
    wornMinutes: o.wornMinutes as number,
    final: o.final as boolean,
  };
}
