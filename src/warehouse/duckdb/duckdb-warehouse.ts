/**
 * The warehouse on an embedded DuckDB file (DESIGN §2, the default engine).
 *
 * On-disk invariants (`<dataDir>/warehouse.duckdb` and its `.wal`):
 * - One process owns the file (DuckDB locks it); inside it, one writer connection does every
 *   write, one `load` at a time, each in a single transaction: readings, the minute vitals they
 *   touch and the staging table change together or not at all.
 * - `readings` holds at most one row per (device_id, seq): the first version stored wins.
 *   A load skips the staged rows whose (device_id, seq) is already stored with a ts inside the
 *   load's span, and keeps one of each (device_id, seq) within the load. That suffices because
 *   every copy of a reading the warehouse receives has the same ts: ingest drops a re-sent
 *   (deviceId, seq), so copies come only from replays of the stream, whose records never
 *   change. (The one gap: on Kinesis, two processes appending one device at the same moment
 *   may both pass dedupe, and if the phone's ts was over 5 minutes ahead, each copy has its
 *   own receive time as ts and both are stored.) Raw accelerometer samples are never stored
 *   (the archive keeps them), only acc_hz and acc_samples (their count).
 * - Timestamps are `TIMESTAMP` columns holding UTC. Not `TIMESTAMPTZ`: date_trunc and
 *   time_bucket on TIMESTAMPTZ follow the session TimeZone setting, which would move the
 *   minute and day boundaries with the machine's zone.
 * - `vitals_1m` has a row for every (resident_id, minute) with at least one reading, equal to
 *   the aggregate of that minute's rows in `readings` (recomputed from `readings`, never
 *   incremented, so late and duplicated readings keep it exact). Per-measure counts
 *   (hr_count, ...) are kept so coarser buckets can weigh averages by measurements.
 * - `staging` is a TEMP table (memory only, writer connection only), empty between loads.
 * - `sleep_sessions` (key (device_id, night)) and `daily_activity` (key (device_id, day)) hold
 *   the last version saved of each key; a `saveInsights` call is one transaction on the writer,
 *   taking its turn with the loads. Dates are `DATE`, times `TIMESTAMP` (UTC) as above.
 * - No table has a key constraint or an index. Keys are kept unique by the writer: an
 *   anti-join for `readings` (above), delete-then-insert in the writer's transaction for the
 *   tables whose rows are replaced (`vitals_1m`, `sleep_sessions`, `daily_activity`). Why:
 *   - DuckDB 1.4–1.5 replays index deletes from the WAL of a killed process into buffered index
 *     operations, and applying them crashed the next process that wrote (SIGSEGV in
 *     `BoundIndex::ApplyBufferedReplays`, about once per 130 restarts after a SIGKILL;
 *     duckdb/duckdb#23848, #25928). With no index there is nothing to replay wrongly.
 *   - An index on `readings` holds a key for every reading ever stored, in memory (the primary
 *     key's grew 2 → 14 MB over the first 600k readings; docs/reliability.md), and nothing in
 *     DuckDB 1.5 is documented to evict it. The anti-join reads only the row groups whose ts
 *     min/max overlap the load's span, as the minute recompute already does.
 *   Files from before are rebuilt without their keys and indexes at open (`dropKeys`).
 * - `eraseResident` deletes the resident's rows from all four tables in one transaction on the
 *   writer, queued with the loads and saves: a load either committed before it (its rows are
 *   erased) or starts after it (its rows stay, with their minutes recomputed from what is left).
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import {
  BIGINT,
  BOOLEAN,
  DOUBLE,
  DuckDBDataChunk,
  DuckDBInstance,
  DuckDBVector,
  LIST,
  VARCHAR,
  listValue,
  type DuckDBConnection,
  type DuckDBValue,
  type JS,
} from '@duckdb/node-api';
import { checkDayRange, checkResidentId, insightsToStore, type InsightsToStore, type SleepToStore } from '../insights.js';
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

/** Each table's columns (and the one key: see the header). */
const TABLES: Record<string, string> = {
  readings: `
  device_id VARCHAR NOT NULL,
  seq BIGINT NOT NULL,
  resident_id VARCHAR NOT NULL,
  ts TIMESTAMP NOT NULL,
  received_at TIMESTAMP NOT NULL,
  hr DOUBLE,
  spo2 DOUBLE,
  skin_temp DOUBLE,
  steps INTEGER,
  battery DOUBLE,
  worn BOOLEAN,
  charging BOOLEAN,
  events VARCHAR[],
  lat DOUBLE,
  lon DOUBLE,
  accuracy_m DOUBLE,
  acc_hz DOUBLE,
  acc_samples INTEGER,
  flags VARCHAR[]
`,
  vitals_1m: `
  resident_id VARCHAR NOT NULL,
  minute TIMESTAMP NOT NULL,
  hr_avg DOUBLE,
  hr_min DOUBLE,
  hr_max DOUBLE,
  hr_count BIGINT NOT NULL,
  spo2_avg DOUBLE,
  spo2_min DOUBLE,
  spo2_count BIGINT NOT NULL,
  skin_temp_avg DOUBLE,
  skin_temp_count BIGINT NOT NULL,
  steps BIGINT,
  readings BIGINT NOT NULL
`,
  sleep_sessions: `
  device_id VARCHAR NOT NULL,
  night DATE NOT NULL,
  resident_id VARCHAR NOT NULL,
  start_ts TIMESTAMP NOT NULL,
  end_ts TIMESTAMP NOT NULL,
  total_sleep_min DOUBLE NOT NULL,
  efficiency DOUBLE NOT NULL,
  waso_min DOUBLE NOT NULL,
  awakenings INTEGER NOT NULL,
  onset_latency_min DOUBLE
`,
  daily_activity: `
  device_id VARCHAR NOT NULL,
  day DATE NOT NULL,
  resident_id VARCHAR NOT NULL,
  steps INTEGER NOT NULL,
  active_minutes DOUBLE NOT NULL,
  longest_sedentary_min DOUBLE NOT NULL,
  worn_minutes DOUBLE NOT NULL,
  final BOOLEAN NOT NULL
`,
};
const SCHEMA = Object.entries(TABLES).map(([name, columns]) => `CREATE TABLE IF NOT EXISTS ${name} (${columns});`).join('\n');

/** Tables made with a key constraint or an index by earlier versions: rebuilt without at open. */
const KEYED_TABLES = `
SELECT table_name FROM duckdb_constraints()
WHERE schema_name = 'main' AND constraint_type IN ('PRIMARY KEY', 'UNIQUE') AND list_contains($tables, table_name)
UNION
SELECT table_name FROM duckdb_indexes() WHERE schema_name = 'main' AND list_contains($tables, table_name)`;

/**
 * Staging mirrors the readings row, but numbers (seq and the epoch-ms times too) are DOUBLE:
 * a double vector is a Float64Array the chunk fills in place, where BIGINT and TIMESTAMP
 * vectors would need a BigInt or a value object per row. Epoch ms and seq stay exact below
 * 2^53; the INSERT casts them.
 */
const STAGING_COLUMNS = [
  ['device_id', VARCHAR],
  ['seq', DOUBLE],
  ['resident_id', VARCHAR],
  ['ts_ms', DOUBLE],
  ['received_at_ms', DOUBLE],
  ['hr', DOUBLE],
  ['spo2', DOUBLE],
  ['skin_temp', DOUBLE],
  ['steps', DOUBLE],
  ['battery', DOUBLE],
  ['worn', BOOLEAN],
  ['charging', BOOLEAN],
  ['events', LIST(VARCHAR)],
  ['lat', DOUBLE],
  ['lon', DOUBLE],
  ['accuracy_m', DOUBLE],
  ['acc_hz', DOUBLE],
  ['acc_samples', DOUBLE],
  ['flags', LIST(VARCHAR)],
] as const;
const STAGING_TYPES = STAGING_COLUMNS.map(([, type]) => type);
const STAGING_SCHEMA = `CREATE TEMP TABLE staging (${STAGING_COLUMNS.map(([name, type]) => `${name} ${type}`).join(', ')})`;

/**
 * The staged rows not yet stored (see the header), the first of each (device_id, seq) in the
 * order they were staged. The ts range ($lo, $hi) spans every staged row, so a stored copy
 * (same ts) is inside it, and it is a constant filter DuckDB checks against each row group's
 * min/max, so the anti-join reads the recent row groups rather than the whole table.
 */
const INSERT_STAGED = `
INSERT INTO readings
SELECT device_id, CAST(seq AS BIGINT), resident_id,
  epoch_ms(CAST(ts_ms AS BIGINT)), epoch_ms(CAST(received_at_ms AS BIGINT)),
  hr, spo2, skin_temp, CAST(steps AS INTEGER), battery, worn, charging, events,
  lat, lon, accuracy_m, acc_hz, CAST(acc_samples AS INTEGER), flags
FROM staging s
WHERE NOT EXISTS (
  SELECT 1 FROM readings r
  WHERE r.device_id = s.device_id AND r.seq = CAST(s.seq AS BIGINT) AND r.ts >= epoch_ms($lo) AND r.ts < epoch_ms($hi))
QUALIFY row_number() OVER (PARTITION BY device_id, seq ORDER BY rowid) = 1`;

const STAGED_MINUTES = `SELECT DISTINCT resident_id, date_trunc('minute', epoch_ms(CAST(ts_ms AS BIGINT))) AS minute FROM staging`;

/** The staged rows' minutes are deleted, then recomputed from everything stored, within ($lo, $hi) as above. */
const DELETE_MINUTES = `
DELETE FROM vitals_1m v USING (${STAGED_MINUTES}) t
WHERE v.resident_id = t.resident_id AND v.minute = t.minute AND v.minute >= epoch_ms($lo) AND v.minute < epoch_ms($hi)`;
const RECOMPUTE_MINUTES = `
INSERT INTO vitals_1m
SELECT r.resident_id, date_trunc('minute', r.ts) AS minute,
  avg(r.hr), min(r.hr), max(r.hr), count(r.hr),
  avg(r.spo2), min(r.spo2), count(r.spo2),
  avg(r.skin_temp), count(r.skin_temp),
  CAST(sum(r.steps) AS BIGINT), count(*)
FROM readings r
JOIN (${STAGED_MINUTES}) t
  ON r.resident_id = t.resident_id AND date_trunc('minute', r.ts) = t.minute
WHERE r.ts >= epoch_ms($lo) AND r.ts < epoch_ms($hi)
GROUP BY r.resident_id, date_trunc('minute', r.ts)`;

const READING_COLUMNS = `
device_id AS "deviceId", seq, resident_id AS "residentId",
epoch_ms(ts) AS ts, epoch_ms(received_at) AS "receivedAt",
hr, spo2, skin_temp AS "skinTemp", steps, battery, worn, charging, events,
lat, lon, accuracy_m AS "accuracyM", acc_hz AS "accHz", acc_samples AS "accSamples", flags`;
const READINGS_RANGE = `resident_id = $resident AND ts >= epoch_ms($from) AND ts < epoch_ms($to)`;
const READINGS_ORDER = `ORDER BY ts, device_id, seq LIMIT $limit`;
const SELECT_READINGS = `SELECT ${READING_COLUMNS} FROM readings WHERE ${READINGS_RANGE} ${READINGS_ORDER}`;
const SELECT_READINGS_AFTER = `SELECT ${READING_COLUMNS} FROM readings WHERE ${READINGS_RANGE}
  AND (ts, device_id, seq) > (epoch_ms($afterTs), $afterDevice, $afterSeq) ${READINGS_ORDER}`;

/** Weighted by measurement counts, so a bucket's average is the average of its measurements. */
const SELECT_VITALS = `
SELECT epoch_ms(time_bucket(to_minutes($stepMinutes), minute)) AS bucket,
  sum(hr_avg * hr_count) / nullif(sum(hr_count), 0) AS "hrAvg",
  min(hr_min) AS "hrMin", max(hr_max) AS "hrMax",
  sum(spo2_avg * spo2_count) / nullif(sum(spo2_count), 0) AS "spo2Avg",
  min(spo2_min) AS "spo2Min",
  sum(skin_temp_avg * skin_temp_count) / nullif(sum(skin_temp_count), 0) AS "skinTempAvg",
  sum(steps) AS steps, sum(readings) AS readings
FROM vitals_1m
WHERE resident_id = $resident AND minute >= epoch_ms($from) AND minute < epoch_ms($to)
GROUP BY 1 ORDER BY 1`;

/**
 * A call's rows arrive as one list parameter per column (numbers as DOUBLE, exact for the
 * integers and epoch ms they hold; dates as text the DATE cast checks), zipped by unnest.
 */
const DELETE_SLEEP = `
DELETE FROM sleep_sessions s USING (SELECT unnest($device) AS device_id, CAST(unnest($night) AS DATE) AS night) k
WHERE s.device_id = k.device_id AND s.night = k.night`;
const INSERT_SLEEP = `
INSERT INTO sleep_sessions
  (device_id, night, resident_id, start_ts, end_ts, total_sleep_min, efficiency, waso_min, awakenings, onset_latency_min)
SELECT device_id, CAST(night AS DATE), resident_id, epoch_ms(CAST(start_ms AS BIGINT)), epoch_ms(CAST(end_ms AS BIGINT)),
  total_sleep_min, efficiency, waso_min, CAST(awakenings AS INTEGER), onset_latency_min
FROM (SELECT unnest($device) AS device_id, unnest($night) AS night, unnest($resident) AS resident_id,
  unnest($startMs) AS start_ms, unnest($endMs) AS end_ms, unnest($totalSleepMin) AS total_sleep_min,
  unnest($efficiency) AS efficiency, unnest($wasoMin) AS waso_min, unnest($awakenings) AS awakenings,
  unnest($onsetLatencyMin) AS onset_latency_min)`;
const SLEEP_TYPES = {
  device: LIST(VARCHAR), night: LIST(VARCHAR), resident: LIST(VARCHAR), startMs: LIST(DOUBLE), endMs: LIST(DOUBLE),
  totalSleepMin: LIST(DOUBLE), efficiency: LIST(DOUBLE), wasoMin: LIST(DOUBLE), awakenings: LIST(DOUBLE), onsetLatencyMin: LIST(DOUBLE),
};

const DELETE_ACTIVITY = `
DELETE FROM daily_activity a USING (SELECT unnest($device) AS device_id, CAST(unnest($day) AS DATE) AS day) k
WHERE a.device_id = k.device_id AND a.day = k.day`;
const INSERT_ACTIVITY = `
INSERT INTO daily_activity
  (device_id, day, resident_id, steps, active_minutes, longest_sedentary_min, worn_minutes, final)
SELECT device_id, CAST(day AS DATE), resident_id, CAST(steps AS INTEGER), active_minutes, longest_sedentary_min, worn_minutes, final
FROM (SELECT unnest($device) AS device_id, unnest($day) AS day, unnest($resident) AS resident_id,
  unnest($steps) AS steps, unnest($activeMinutes) AS active_minutes, unnest($longestSedentaryMin) AS longest_sedentary_min,
  unnest($wornMinutes) AS worn_minutes, unnest($final) AS final)`;
const ACTIVITY_TYPES = {
  device: LIST(VARCHAR), day: LIST(VARCHAR), resident: LIST(VARCHAR), steps: LIST(DOUBLE), activeMinutes: LIST(DOUBLE),
  longestSedentaryMin: LIST(DOUBLE), wornMinutes: LIST(DOUBLE), final: LIST(BOOLEAN),
};

const SELECT_SLEEP = `
SELECT device_id AS "deviceId", resident_id AS "residentId", CAST(night AS VARCHAR) AS night,
  epoch_ms(start_ts) AS "start", epoch_ms(end_ts) AS "end", total_sleep_min AS "totalSleepMin", efficiency,
  waso_min AS "wasoMin", awakenings, onset_latency_min AS "onsetLatencyMin"
FROM sleep_sessions
WHERE resident_id = $resident AND night >= CAST($from AS DATE) AND night <= CAST($to AS DATE)
ORDER BY night, device_id`;

const SELECT_ACTIVITY = `
SELECT device_id AS "deviceId", resident_id AS "residentId", CAST(day AS VARCHAR) AS day, steps,
  active_minutes AS "activeMinutes", longest_sedentary_min AS "longestSedentaryMin", worn_minutes AS "wornMinutes", final
FROM daily_activity
WHERE resident_id = $resident AND day >= CAST($from AS DATE) AND day <= CAST($to AS DATE)
ORDER BY day, device_id`;

const DAY_RANGE_TYPES = { resident: VARCHAR, from: VARCHAR, to: VARCHAR };

/** Every table holding a resident's rows: their readings and everything derived from them. */
const ERASE_READINGS = 'DELETE FROM readings WHERE resident_id = $resident';
const ERASE_VITALS = 'DELETE FROM vitals_1m WHERE resident_id = $resident';
const ERASE_SLEEP = 'DELETE FROM sleep_sessions WHERE resident_id = $resident';
const ERASE_ACTIVITY = 'DELETE FROM daily_activity WHERE resident_id = $resident';

const MINUTE_MS = 60_000;

/**
 * A file made by an earlier version gets its keyed or indexed tables rebuilt without (see the
 * header): same columns, same rows, no constraint and no index. Checkpointed at once, so the
 * WAL never holds these DDL statements next to row changes for a later replay. It copies the
 * table once, so opening a file with a large `readings` the first time takes a while.
 */
async function dropKeys(writer: DuckDBConnection): Promise<void> {
  const tables = listValue(Object.keys(TABLES));
  const keyed = (await writer.runAndReadAll(KEYED_TABLES, { tables }, { tables: LIST(VARCHAR) })).getColumns()[0] ?? [];
  if (keyed.length === 0) return;
  await writer.run('BEGIN TRANSACTION');
  try {
    for (const table of keyed as string[]) {
      await writer.run(`CREATE TABLE ${table}_unkeyed (${TABLES[table]})`);
      await writer.run(`INSERT INTO ${table}_unkeyed SELECT * FROM ${table}`);
      await writer.run(`DROP TABLE ${table}`);
      await writer.run(`ALTER TABLE ${table}_unkeyed RENAME TO ${table}`);
    }
    await writer.run('COMMIT');
  } catch (err) {
    await writer.run('ROLLBACK').catch(() => undefined);
    throw err;
  }
  await writer.run('CHECKPOINT');
}

export class DuckDbWarehouse implements Warehouse {
  /** Loads and saves run one after another on the writer connection: its transaction is per connection. */
  private writing: Promise<unknown> = Promise.resolve();

  private constructor(
    private readonly instance: DuckDBInstance,
    private readonly writer: DuckDBConnection,
    private readonly reader: DuckDBConnection,
  ) {}

  /** `memoryMB`: DuckDB's memory_limit (its default is 80% of the machine's RAM). */
  static async open(dataDir: string, opts: { memoryMB?: number } = {}): Promise<DuckDbWarehouse> {
    mkdirSync(dataDir, { recursive: true });
    const instance = await DuckDBInstance.create(join(dataDir, 'warehouse.duckdb'), opts.memoryMB ? { memory_limit: `${opts.memoryMB}MB` } : {});
    try {
      const writer = await instance.connect();
      await dropKeys(writer);
      await writer.run(SCHEMA);
      await writer.run(STAGING_SCHEMA);
      return new DuckDbWarehouse(instance, writer, await instance.connect());
    } catch (err) {
      instance.closeSync();
      throw err;
    }
  }

  load(rows: WarehouseReading[]): Promise<{ inserted: number }> {
    return this.write(() => this.loadNow(rows));
  }

  /** Runs `fn` on the writer after the writes queued before it. */
  private write<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.writing.then(fn);
    this.writing = run.catch(() => undefined);
    return run;
  }

  private async loadNow(rows: WarehouseReading[]): Promise<{ inserted: number }> {
    if (rows.length === 0) return { inserted: 0 };
    await this.writer.run('BEGIN TRANSACTION');
    try {
      const span = await this.stage(rows);
      const inSpan = [{ lo: span.lo, hi: span.hi }, { lo: BIGINT, hi: BIGINT }] as const;
      const inserted = Number((await this.writer.runAndReadAll(INSERT_STAGED, ...inSpan)).getColumns()[0][0]);
      if (inserted > 0) {
        for (const sql of [DELETE_MINUTES, RECOMPUTE_MINUTES]) await this.writer.run(sql, ...inSpan);
      }
      await this.writer.run('DELETE FROM staging');
      await this.writer.run('COMMIT');
      return { inserted };
    } catch (err) {
      // A failed COMMIT has already ended the transaction; the original error is the one to report.
      await this.writer.run('ROLLBACK').catch(() => undefined);
      throw err;
    }
  }

  /** Appends the rows to staging a data chunk at a time; returns the minutes they span. */
  private async stage(rows: WarehouseReading[]): Promise<{ lo: number; hi: number }> {
    const appender = await this.writer.createAppender('staging', null, 'temp');
    const chunkRows = DuckDBVector.standardSize();
    let minTs = Infinity;
    let maxTs = -Infinity;
    try {
      for (let start = 0; start < rows.length; start += chunkRows) {
        const end = Math.min(start + chunkRows, rows.length);
        appender.appendDataChunk(fillChunk(rows, start, end));
        for (let i = start; i < end; i++) {
          const ts = rows[i].ts;
          if (ts < minTs) minTs = ts;
          if (ts > maxTs) maxTs = ts;
        }
      }
    } finally {
      appender.closeSync();
    }
    return { lo: floorToMinute(minTs), hi: floorToMinute(maxTs) + MINUTE_MS };
  }

  saveInsights(rows: WarehouseInsights): Promise<void> {
    // Checked before queueing: a malformed call fails without waiting for the writer.
    let toStore: InsightsToStore;
    try {
      toStore = insightsToStore(rows);
    } catch (err) {
      return Promise.reject(err);
    }
    return this.write(() => this.saveInsightsNow(toStore));
  }

  private async saveInsightsNow({ sleep, activity }: InsightsToStore): Promise<void> {
    if (sleep.length === 0 && activity.length === 0) return;
    await this.writer.run('BEGIN TRANSACTION');
    try {
      if (sleep.length > 0) {
        const column = <K extends keyof SleepToStore>(k: K) => listValue(sleep.map((r) => r[k] ?? null));
        await this.writer.run(DELETE_SLEEP, { device: column('deviceId'), night: column('night') }, { device: SLEEP_TYPES.device, night: SLEEP_TYPES.night });
        await this.writer.run(
          INSERT_SLEEP,
          {
            device: column('deviceId'),
            night: column('night'),
            resident: column('residentId'),
            startMs: column('startMs'),
            endMs: column('endMs'),
            totalSleepMin: column('totalSleepMin'),
            efficiency: column('efficiency'),
            wasoMin: column('wasoMin'),
            awakenings: column('awakenings'),
            onsetLatencyMin: column('onsetLatencyMin'),
          },
          SLEEP_TYPES,
        );
      }
      if (activity.length > 0) {
        const column = <K extends keyof DailyActivityRow>(k: K) => listValue(activity.map((r) => r[k] ?? null));
        await this.writer.run(DELETE_ACTIVITY, { device: column('deviceId'), day: column('day') }, { device: ACTIVITY_TYPES.device, day: ACTIVITY_TYPES.day });
        await this.writer.run(
          INSERT_ACTIVITY,
          {
            device: column('deviceId'),
            day: column('day'),
            resident: column('residentId'),
            steps: column('steps'),
            activeMinutes: column('activeMinutes'),
            longestSedentaryMin: column('longestSedentaryMin'),
            wornMinutes: column('wornMinutes'),
            final: column('final'),
          },
          ACTIVITY_TYPES,
        );
      }
      await this.writer.run('COMMIT');
    } catch (err) {
      await this.writer.run('ROLLBACK').catch(() => undefined);
      throw err;
    }
  }

  eraseResident(residentId: string): Promise<{ readings: number; sleepSessions: number; dailyActivity: number }> {
    try {
      checkResidentId(residentId);
    } catch (err) {
      return Promise.reject(err);
    }
    return this.write(() => this.eraseResidentNow(residentId));
  }

  /** One transaction on the writer, taking its turn with loads and saves. */
  private async eraseResidentNow(residentId: string): Promise<{ readings: number; sleepSessions: number; dailyActivity: number }> {
    const deleted = async (sql: string) =>
      Number((await this.writer.runAndReadAll(sql, { resident: residentId }, { resident: VARCHAR })).getColumns()[0][0]);
    await this.writer.run('BEGIN TRANSACTION');
    try {
      const readings = await deleted(ERASE_READINGS);
      await deleted(ERASE_VITALS);
      const sleepSessions = await deleted(ERASE_SLEEP);
      const dailyActivity = await deleted(ERASE_ACTIVITY);
      await this.writer.run('COMMIT');
      return { readings, sleepSessions, dailyActivity };
    } catch (err) {
      await this.writer.run('ROLLBACK').catch(() => undefined);
      throw err;
    }
  }

  async sleepSessions(q: DayRangeQuery): Promise<SleepSessionRow[]> {
    checkDayRange(q);
    const reader = await this.reader.runAndReadAll(SELECT_SLEEP, { resident: q.residentId, from: q.from, to: q.to }, DAY_RANGE_TYPES);
    return reader.getRowObjectsJS().map(toSleepSessionRow);
  }

  async dailyActivity(q: DayRangeQuery): Promise<DailyActivityRow[]> {
    checkDayRange(q);
    const reader = await this.reader.runAndReadAll(SELECT_ACTIVITY, { resident: q.residentId, from: q.from, to: q.to }, DAY_RANGE_TYPES);
    return reader.getRowObjectsJS().map(toDailyActivityRow);
  }

  async readings(q: ReadingsQuery): Promise<ReadingRow[]> {
    const values: Record<string, DuckDBValue> = { resident: q.residentId, from: q.from, to: q.to, limit: q.limit };
    const types = { resident: VARCHAR, from: BIGINT, to: BIGINT, limit: BIGINT, afterTs: BIGINT, afterDevice: VARCHAR, afterSeq: BIGINT };
    if (q.after) Object.assign(values, { afterTs: q.after.ts, afterDevice: q.after.deviceId, afterSeq: q.after.seq });
    const reader = await this.reader.runAndReadAll(q.after ? SELECT_READINGS_AFTER : SELECT_READINGS, values, types);
    return reader.getRowObjectsJS().map(toReadingRow);
  }

  async vitals(q: VitalsQuery): Promise<VitalsRow[]> {
    const reader = await this.reader.runAndReadAll(
      SELECT_VITALS,
      { resident: q.residentId, from: q.from, to: q.to, stepMinutes: STEP_MINUTES[q.step] },
      { resident: VARCHAR, from: BIGINT, to: BIGINT, stepMinutes: BIGINT },
    );
    return reader.getRowObjectsJS().map(toVitalsRow);
  }

  /** DuckDB's buffer manager and allocations it tracks: its cache of the file's blocks, the staging table, query work. */
  async memoryBytes(): Promise<number> {
    const reader = await this.reader.runAndReadAll('SELECT sum(memory_usage_bytes) FROM duckdb_memory()');
    return Number(reader.getColumns()[0][0]);
  }

  async close(): Promise<void> {
    await this.writing;
    this.reader.closeSync();
    this.writer.closeSync();
    this.instance.closeSync();
  }
}

/** Writes straight into the chunk's vectors: no per-row value objects for the common columns. */
function fillChunk(rows: WarehouseReading[], start: number, end: number): DuckDBDataChunk {
  const chunk = DuckDBDataChunk.create(STAGING_TYPES, end - start);
  const v = STAGING_TYPES.map((_, i) => chunk.getColumnVector(i));
  for (let i = 0; i < end - start; i++) {
    const r = rows[start + i];
    v[0].setItem(i, r.deviceId);
    v[1].setItem(i, r.seq);
    v[2].setItem(i, r.residentId);
    v[3].setItem(i, r.ts);
    v[4].setItem(i, r.receivedAt);
    v[5].setItem(i, r.hr ?? null);
    v[6].setItem(i, r.spo2 ?? null);
    v[7].setItem(i, r.skinTemp ?? null);
    v[8].setItem(i, r.steps ?? null);
    v[9].setItem(i, r.battery ?? null);
    v[10].setItem(i, r.worn ?? null);
    v[11].setItem(i, r.charging ?? null);
    v[12].setItem(i, r.events ? listValue(r.events) : null);
    v[13].setItem(i, r.location?.lat ?? null);
    v[14].setItem(i, r.location?.lon ?? null);
    v[15].setItem(i, r.location?.accuracyM ?? null);
    v[16].setItem(i, r.acc?.hz ?? null);
    v[17].setItem(i, r.acc?.sampleCount ?? null);
    v[18].setItem(i, r.flags ? listValue(r.flags) : null);
  }
  for (const vector of v) vector.flush();
  return chunk;
}

function floorToMinute(ms: number): number {
  return Math.floor(ms / MINUTE_MS) * MINUTE_MS;
}

function iso(ms: JS): string {
  return new Date(Number(ms)).toISOString();
}

function num(v: JS): number | null {
  return v === null ? null : Number(v);
}

function strings(v: JS): string[] | null {
  return v === null ? null : (v as string[]);
}

function toReadingRow(o: Record<string, JS>): ReadingRow {
  return {
    deviceId: o.deviceId as string,
    seq: Number(o.seq),
    residentId: o.residentId as string,
    ts: iso(o.ts),
    receivedAt: iso(o.receivedAt),
    hr: num(o.hr),
    spo2: num(o.spo2),
    skinTemp: num(o.skinTemp),
    steps: num(o.steps),
    battery: num(o.battery),
    worn: o.worn as boolean | null,
    charging: o.charging as boolean | null,
    events: strings(o.events),
    lat: num(o.lat),
    lon: num(o.lon),
    accuracyM: num(o.accuracyM),
    accHz: num(o.accHz),
    accSamples: num(o.accSamples),
    flags: strings(o.flags),
  };
}

function toVitalsRow(o: Record<string, JS>): VitalsRow {
  return {
    bucket: iso(o.bucket),
    hrAvg: num(o.hrAvg),
    hrMin: num(o.hrMin),
    hrMax: num(o.hrMax),
    spo2Avg: num(o.spo2Avg),
    spo2Min: num(o.spo2Min),
    skinTempAvg: num(o.skinTempAvg),
    steps: num(o.steps),
    readings: Number(o.readings),
  };
}

function toSleepSessionRow(o: Record<string, JS>): SleepSessionRow {
  return {
    deviceId: o.deviceId as string,
    residentId: o.residentId as string,
    night: o.night as string,
    start: iso(o.start),
    end: iso(o.end),
    totalSleepMin: Number(o.totalSleepMin),
    efficiency: Number(o.efficiency),
    wasoMin: Number(o.wasoMin),
    awakenings: Number(o.awakenings),
    onsetLatencyMin: num(o.onsetLatencyMin),
  };
}

function toDailyActivityRow(o: Record<string, JS>): DailyActivityRow {
  return {
    deviceId: o.deviceId as string,
    residentId: o.residentId as string,
    day: o.day as string,
    steps: Number(o.steps),
    activeMinutes: Number(o.activeMinutes),
    longestSedentaryMin: Number(o.longestSedentaryMin),
    wornMinutes: Number(o.wornMinutes),
    final: o.final as boolean,
  };
}
