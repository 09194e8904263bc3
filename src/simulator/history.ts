/**
 * A simulated resident's recent past, so that a fresh `vigil start --simulate N` shows full
 * charts, last night's sleep and today's activity rather than a few minutes of data: for each
 * new device, `hours` of readings (`simulateHistoryHours`, default 36) made by the same
 * resident model as the live fleet (same seed, home and time zone, so the same daily plans —
 * bedtime, charging, walks) and ingested in the background through ingest, ahead of the
 * device's live readings.
 *
 * Ordering. A device's history ends exactly where its live readings begin (Fleet.origin): the
 * last history reading covers the minute before the first live one, and its seq is the first
 * live seq − 1 (the fleet numbers seq from the clock, so history seqs are below every live
 * one). Its batches go in seq order, one at a time, and the fleet holds the device's live
 * readings until the last batch is durable (Fleet `held` / `release`): the detectors see one
 * device's readings in seq order, history then live, with no gap and nothing late — the
 * reorder buffer has nothing to wait for and no reading counts as late data.
 *
 * Why it raises no alert. Normal days of the model raise none (normal-week.test.ts,
 * detectors/simulated-days.test.ts; history.test.ts checks these settings through every
 * detector). The detectors run in event time, so a reading of yesterday is judged against
 * yesterday, not against now; DEVICE_OFFLINE looks at when the server last heard from the
 * band (receive time: now, while history arrives); the device is new, so no detector state
 * predates it. No scenario is played in the past.
 *
 * Cost, and the choices it led to (measured on the 2-core development machine): a 5-s reading
 * with its 25 Hz accelerometer burst costs ~0.6 ms of CPU end to end (ingest, log, three
 * groups, archive), nearly all of it in the samples' JSON (docs/performance.md); 36 h of 5-s
 * readings for 50 residents would be 1.3 M readings, ~13 CPU-minutes. So the past is
 * coarser than the present, and the detectors that feed the dashboard still work on it:
 * - one reading per minute (HISTORY_INTERVAL_MS): Cole–Kripke and the daily activity work
 *   in 1-min epochs, vitals_1m has one row per minute anyway; a walking minute carries its
 *   ~100 steps, so active minutes still count (≥ 60 steps/min);
 * - a duty-cycled accelerometer: a 15-s burst at 10 Hz at the start of each minute
 *   (150 samples, a tenth of the 1,500 a live minute carries). 15 s is the coverage an epoch
 *   needs for a movement count (MIN_COVERAGE_S in sleep/sleep-detector.ts and
 *   activity/daily-activity.ts), extrapolated to the minute; counts are time integrals of a
 *   rate-aware filter, so 10 Hz gives about the counts of 20–25 Hz for these movements (turns
 *   in bed, seated gestures, gait at 1.6–1.9 steps/s). 10 Hz is below the 20 Hz the fall detector
 *   is tuned for: no fall is ever simulated in the past. Without any accelerometer there would
 *   be no sleep at all (an epoch without movement data is missing, never asleep).
 *   history.test.ts compares the nights these settings give with those of live readings.
 * - 36 h by default: whatever the time of day, the latest whole night and all of today are in
 *   it, and yesterday from 12 h before the current time of day (all of it on a start before
 *   noon). 48 h would always hold yesterday whole, for a third more.
 * That is 50 × 36 h = 108,000 readings of ~3 KB for 50 residents, about a minute on two cores.
 *
 * Pacing: the backfill never gets more than `maxAhead` records (of HISTORY_BATCH readings)
 * ahead of the slowest consumer group (`handled`), so the groups stay within a second or two
 * of the stream's head and the live demo's alerts are not queued behind hours of the past.
 * Measured for 50 residents on the shared 2-core development machine: 58–76 s, with the
 * process's peak memory at ~1.1–1.3 GB against ~350 MB without a past — the archive group
 * keeps what it has handled until its flush (archive.flushIntervalMs, 60 s by default).
 */
import { hashString, mixSeeds } from './prng.js';
import { ResidentModel, type HomeLocation, type WireReading } from './resident-model.js';

/** One reading a minute: the epoch of Cole–Kripke and of the daily activity. */
export const HISTORY_INTERVAL_MS = 60_000;
/** A 15-s accelerometer burst per minute: the least an epoch needs for a movement count. */
export const HISTORY_ACC_WINDOW_MS = 15_000;
export const HISTORY_ACC_HZ = 10;
/**
 * Readings per append: 20 minutes of one resident, one stream record of ~65 KB. Records of an
 * hour (~200 KB) make each group's reads (256 records a partition) heavy: they measured slower
 * and with a higher peak of memory; smaller ones cost more records for nothing.
 */
export const HISTORY_BATCH = 20;

export interface HistoryDevice {
  deviceId: string;
  residentId: string;
  timezone?: string;
  homeLocation?: HomeLocation;
}

/** Where a device's live readings begin: its history ends just before, in time and in seq. */
export interface LiveOrigin {
  ts: number;
  seq: number;
}

/** Where an append put a batch: partition and sequence in the stream. */
export interface AppendedAt {
  partition: number;
  sequence: string;
}

export const historyReadings = (hours: number): number => Math.round((hours * 3_600_000) / HISTORY_INTERVAL_MS);

/** The model that makes a device's past: the live fleet's resident (`seed` is the fleet's), one reading a minute. */
export function historyModel(device: HistoryDevice, origin: LiveOrigin, hours: number, seed = 0): ResidentModel {
  const count = historyReadings(hours);
  return new ResidentModel({
    deviceId: device.deviceId,
    seed: mixSeeds(seed, hashString(device.deviceId)),
    timezone: device.timezone,
    home: device.homeLocation,
    intervalMs: HISTORY_INTERVAL_MS,
    accHz: HISTORY_ACC_HZ,
    accWindowMs: HISTORY_ACC_WINDOW_MS,
    startTs: origin.ts - count * HISTORY_INTERVAL_MS,
    startSeq: origin.seq - count,
  });
}

export interface BackfillOptions {
  devices: readonly HistoryDevice[];
  hours: number;
  origin(deviceId: string): LiveOrigin;
  /**
   * Makes one batch of a device's readings durable through ingest and says where it went
   * (null: nothing appended, all duplicates). A rejection is retried (a stream that is busy).
   */
  append(device: HistoryDevice, readings: WireReading[]): Promise<AppendedAt | null>;
  /** Whether every consumer group that must keep up has handled the record at `at` (pacing). Default: yes. */
  handled?(at: AppendedAt): boolean;
  /** Whether the record at `at` is where the backfill is for (the warehouse): the end waits for it. Default: `handled`. */
  settled?(at: AppendedAt): boolean;
  /** A device's history is durable: its live readings may go. Also called for a device given up on. */
  onDeviceDone?(deviceId: string): void;
  /** An append failed (it is retried, up to MAX_ATTEMPTS, then the device's history is given up). */
  onError?(deviceId: string, err: unknown, willRetry: boolean): void;
  /** The live fleet's seed. Default 0. */
  seed?: number;
  /** Devices loaded at once. Default 2: one being generated while the other's batch is being written. */
  concurrency?: number;
  /** Records appended but not yet handled by every group, at most. Default 192 (3,840 readings, a second or two of the groups' work). */
  maxAhead?: number;
}

export interface BackfillResult {
  /** Readings made durable (duplicates not counted). */
  readings: number;
  devices: number;
  ms: number;
  /** False when stopped before the end, or a device's history was given up. */
  complete: boolean;
}

const MAX_ATTEMPTS = 5;
const POLL_MS = 100;

export class HistoryBackfill {
  /** Readings to load. */
  readonly total: number;
  /** Readings loaded so far. */
  loaded = 0;
  private readonly opts: BackfillOptions;
  private readonly ahead: AppendedAt[] = [];
  /** The last record appended in each partition. */
  private readonly last = new Map<number, AppendedAt>();
  private stopped = false;
  private gaveUp = false;
  /** Pending waits, ended early by stop(). */
  private readonly sleepers = new Set<() => void>();
  private run: Promise<BackfillResult> | undefined;

  constructor(opts: BackfillOptions) {
    if (!(opts.hours > 0)) throw new RangeError('history hours must be positive');
    this.opts = opts;
    this.total = historyReadings(opts.hours) * opts.devices.length;
  }

  /** Starts loading in the background; resolves when every group has handled the history (or on stop). */
  start(): Promise<BackfillResult> {
    this.run ??= this.load();
    return this.run;
  }

  /** Stops after the batches being written; resolves once nothing more is written. */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const wake of this.sleepers) wake();
    await this.run?.catch(() => undefined);
  }

  private async load(): Promise<BackfillResult> {
    const started = Date.now();
    const queue = [...this.opts.devices];
    const worker = async () => {
      for (let d = queue.shift(); d && !this.stopped; d = queue.shift()) {
        await this.loadDevice(d);
        if (!this.stopped) this.opts.onDeviceDone?.(d.deviceId);
      }
    };
    await Promise.all(Array.from({ length: Math.max(1, this.opts.concurrency ?? 2) }, worker));
    // Done when the groups have it, not merely when it is durable: then the charts show it.
    const settled = this.opts.settled ?? this.opts.handled ?? (() => true);
    while (!this.stopped && ![...this.last.values()].every((at) => settled(at))) await this.sleep(POLL_MS);
    return { readings: this.loaded, devices: this.opts.devices.length, ms: Date.now() - started, complete: !this.stopped && !this.gaveUp };
  }

  private async loadDevice(device: HistoryDevice): Promise<void> {
    const model = historyModel(device, this.opts.origin(device.deviceId), this.opts.hours, this.opts.seed);
    const end = this.opts.origin(device.deviceId).seq;
    const maxAhead = this.opts.maxAhead ?? 192;
    while (model.nextSeq < end && !this.stopped) {
      const batch: WireReading[] = [];
      while (batch.length < HISTORY_BATCH && model.nextSeq < end) batch.push(model.next());
      while (!this.stopped && !this.catchUp(maxAhead)) await this.sleep(POLL_MS);
      for (let attempt = 1; !this.stopped; attempt++) {
        try {
          const at = await this.opts.append(device, batch);
          if (at) {
            this.ahead.push(at);
            this.last.set(at.partition, at);
          }
          this.loaded += batch.length;
          break;
        } catch (err) {
          const retry = attempt < MAX_ATTEMPTS;
          this.opts.onError?.(device.deviceId, err, retry);
          if (!retry) {
            this.gaveUp = true;
            return; // its live readings go on regardless: a device without a past, not a silent one
          }
          await this.sleep(Math.min(5000, 250 * 2 ** attempt));
        }
      }
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const wake = () => {
        clearTimeout(timer);
        this.sleepers.delete(wake);
        resolve();
      };
      const timer = setTimeout(wake, ms);
      this.sleepers.add(wake);
    });
  }

  /** Drops the records every group has handled; true when at most `limit` are left. */
  private catchUp(limit: number): boolean {
    const handled = this.opts.handled;
    if (!handled) this.ahead.length = 0;
    while (this.ahead.length > 0 && handled!(this.ahead[0])) this.ahead.shift();
    if (this.ahead.length <= limit) return true;
    // Records of different partitions are handled independently: look past the oldest.
    for (let i = this.ahead.length - 1; i >= 0; i--) if (handled!(this.ahead[i])) this.ahead.splice(i, 1);
    return this.ahead.length <= limit;
  }
}

