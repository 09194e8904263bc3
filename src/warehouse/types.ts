/**
 * The warehouse: consolidated readings and per-minute vitals that third-party apps and
 * analysts query (DESIGN §1, §2). Engines: DuckDB (embedded default), PostgreSQL.
 *
 * Lifecycle: open (backend's static factory) → `load`/`readings`/`vitals`… → `close()`.
 *
 * Guarantees every backend keeps (the conformance suite in testing/ checks them):
 * - `load` is idempotent on (deviceId, seq) (DESIGN §3.2): a reading whose key is already
 *   stored is ignored (the stored version wins), so loading the same or overlapping rows
 *   again changes nothing. When `load` resolves, its rows and the aggregates derived from
 *   them are durable; when it rejects, none of them is visible.
 * - Aggregates are exact whatever the arrival order: late and duplicated readings leave the
 *   minute vitals as if every reading had arrived once, in order.
 * - Raw accelerometer samples are not kept (the archive keeps them): only their rate and
 *   count.
 * - Time is UTC: timestamps come back as ISO-8601 strings, buckets start on UTC boundaries.
 * - `load` may be called concurrently with itself and with queries; queries see only
 *   committed loads.
 */
import type { Reading } from '../core/reading.js';

/** Of an accelerometer burst the warehouse keeps the rate and the sample count; the archive keeps the samples. */
export interface AccelerometerSummary {
  hz: number;
  sampleCount: number;
}

/** A reading as the warehouse stores it: with the resident its device was assigned to when it was accepted, its burst summarized. */
export type WarehouseReading = Omit<Reading, 'acc'> & { residentId: string; acc?: AccelerometerSummary };

/** One stored reading. Measurements the device did not send are null. */
export interface ReadingRow {
  deviceId: string;
  seq: number;
  residentId: string;
  /** Device time, ISO-8601 UTC. */
  ts: string;
  /** Server receive time, ISO-8601 UTC. */
  receivedAt: string;
  hr: number | null;
  spo2: number | null;
  skinTemp: number | null;
  steps: number | null;
  battery: number | null;
  worn: boolean | null;
  charging: boolean | null;
  events: string[] | null;
  lat: number | null;
  lon: number | null;
  accuracyM: number | null;
  accHz: number | null;
  /** How many accelerometer samples the reading carried. */
  accSamples: number | null;
  flags: string[] | null;
}

/** Keyset cursor: the (ts, deviceId, seq) of the last row of the previous page. */
export interface ReadingCursor {
  /** Epoch ms. */
  ts: number;
  deviceId: string;
  seq: number;
}

export interface ReadingsQuery {
  residentId: string;
  /** Epoch ms, inclusive. */
  from: number;
  /** Epoch ms, exclusive. */
  to: number;
  limit: number;
  after?: ReadingCursor;
}

export type VitalsStep = '1m' | '15m' | '1h' | '1d';

export interface VitalsQuery {
  residentId: string;
  /** Epoch ms, inclusive: minutes starting at or after it. */
  from: number;
  /** Epoch ms, exclusive: minutes starting before it. */
  to: number;
  step: VitalsStep;
}

/**
 * Vitals over one bucket. Averages weigh every measurement equally (not every minute);
 * a value is null when no reading of the bucket carried that measurement.
 */
export interface VitalsRow {
  /** Start of the bucket, ISO-8601 UTC. */
  bucket: string;
  hrAvg: number | null;
  hrMin: number | null;
  hrMax: number | null;
  spo2Avg: number | null;
  spo2Min: number | null;
  skinTempAvg: number | null;
  steps: number | null;
  /** Readings stored for the bucket. */
  readings: number;
}

export interface Warehouse {
  /** Stores the rows not stored yet and recomputes the minutes they touch; durable when resolved. */
  load(rows: WarehouseReading[]): Promise<{ inserted: number }>;
  /** A resident's readings in [from, to), ordered by (ts, deviceId, seq), after the cursor. */
  readings(q: ReadingsQuery): Promise<ReadingRow[]>;
  /** A resident's vitals per UTC bucket of `step`, oldest first; buckets without readings are absent. */
  vitals(q: VitalsQuery): Promise<VitalsRow[]>;
  /** Upserts sleep sessions and daily activity by their keys, in one transaction; durable when resolved. */
  saveInsights(rows: WarehouseInsights): Promise<void>;
  /** A resident's sleep sessions whose night is in [from, to], by night then deviceId. */
  sleepSessions(q: DayRangeQuery): Promise<SleepSessionRow[]>;
  /** A resident's daily activity for days in [from, to], by day then deviceId. */
  dailyActivity(q: DayRangeQuery): Promise<DailyActivityRow[]>;
  /**
   * Right to erasure: deletes every row stored for the resident — their readings, the
   * per-minute vitals derived from them, their sleep sessions and daily activity — in one
   * transaction, durable when it resolves; other residents' rows are untouched. Returns how
   * many readings, sleep sessions and daily activity rows were deleted (minute vitals are
   * derived and not counted); a second call returns zeros.
   *
   * Rows are matched by the resident they were stored under (`resident_id`), not by device:
   * a band that moved on to another resident keeps that resident's rows.
   *
   * The rows are gone when the promise resolves, nothing more: the warehouse keeps no
   * tombstone, so a later `load` of the resident's readings (a replay of the warehouse group
   * from a stream still holding them) or `saveInsights` of their rows stores them again, and a
   * load or save running concurrently may commit after the erase. Preventing that is the
   * caller's concern: unassign the resident's devices first, and erase again once the
   * stream's retention has passed their last readings (the call is idempotent).
   *
   * Erasure is logical: the engine frees the deleted rows' space later (DuckDB on checkpoint,
   * PostgreSQL on vacuum), and backups or replicas keep them until they are rotated.
   */
  eraseResident(residentId: string): Promise<{ readings: number; sleepSessions: number; dailyActivity: number }>;
  /** Memory the engine holds in this process by its own count (an embedded engine), for monitoring; absent for a server. */
  memoryBytes?(): Promise<number>;
  close(): Promise<void>;
}

export const STEP_MINUTES: Readonly<Record<VitalsStep, number>> = { '1m': 1, '15m': 15, '1h': 60, '1d': 1440 };

/**
 * One night of sleep of a device's wearer (detectors/sleep): `night` is the local date of the
 * evening it began, in the resident's time zone. Keyed by (deviceId, night): a later write of
 * the same key replaces the row (a replay recomputes it identically).
 */
export interface SleepSessionRow {
  deviceId: string;
  residentId: string;
  /** YYYY-MM-DD. */
  night: string;
  /** ISO-8601 UTC. */
  start: string;
  end: string;
  totalSleepMin: number;
  /** Total sleep time over time in bed, 0..1. */
  efficiency: number;
  wasoMin: number;
  awakenings: number;
  onsetLatencyMin: number | null;
}

/** One local day of a device's activity (detectors/activity). Keyed by (deviceId, day), replaced on rewrite. */
export interface DailyActivityRow {
  deviceId: string;
  residentId: string;
  /** YYYY-MM-DD, local day of the resident. */
  day: string;
  steps: number;
  activeMinutes: number;
  longestSedentaryMin: number;
  wornMinutes: number;
  /** False while the day is still running (today's totals so far). */
  final: boolean;
}

export interface DayRangeQuery {
  residentId: string;
  /** YYYY-MM-DD, inclusive. */
  from: string;
  /** YYYY-MM-DD, inclusive. */
  to: string;
}

/** Derived per-day rows the warehouse group writes beside the readings. */
export interface WarehouseInsights {
  sleep: SleepSessionRow[];
  activity: DailyActivityRow[];
}
