/**
 * Simulated residents without HTTP or timers, for tests that push days of readings through
 * the detectors in-process, as fast as the model makes them: a week of 20 residents at 20 Hz
 * (2.42 M readings, 242 M accelerometer samples) takes ~15 s on one core of the development
 * machine (~160 k readings/s; normal-week.test.ts prints the figure). The residents are the
 * ones a live fleet would run: same device ids, seeds and homes as `provisionFleet` + `Fleet`
 * with the same seed.
 *
 * Scenarios go on the models before generating: `resident.model.scheduleScenario('FALL_SILENT',
 * { day: 2, at: '10:00' })`.
 */
import { splitLateBatches } from './late-batches.js';
import { Random, hashString, mixSeeds } from './prng.js';
import { deviceIdFor, homeLocationFor, type HomeGeofence } from './provision.js';
import { ResidentModel, type WireReading } from './resident-model.js';

/**
 * The readings of one resident from `fromTs` (default: the model's next reading) until before
 * `toTs`, in seq order. Readings before `fromTs` are made and dropped (a model cannot skip
 * ahead: its state, like the battery, depends on every window before).
 */
export function* generateReadings(model: ResidentModel, fromTs: number, toTs: number): Generator<WireReading, void, undefined> {
  if (fromTs < model.nextTs - model.intervalMs) throw new RangeError(`the model is already at ${new Date(model.nextTs).toISOString()}`);
  while (model.nextTs < fromTs) model.next();
  while (model.nextTs < toTs) yield model.next();
}

export interface SimulatedResident {
  /** 1, 2, ...: the n-th resident of the simulated town. */
  n: number;
  deviceId: string;
  timezone: string;
  /** What provisioning registers as the resident's homeLocation (radius 200 m). */
  homeLocation: HomeGeofence;
  model: ResidentModel;
}

export interface SimulatedResidentsOptions {
  /** Device time of the first reading, epoch ms. */
  startTs: number;
  /** Mixed into each device's seed, like FleetOptions.seed. Default 0. */
  seed?: number;
  /** Default 20 Hz: enough for fall detection, ~20 % cheaper than 25 Hz. */
  accHz?: number;
  /** Default 5000 ms. */
  intervalMs?: number;
  /** Default Europe/Paris. */
  timezone?: string;
  /** Device ids are `<prefix>0001`, ... Default `band-`. */
  deviceIdPrefix?: string;
}

/** `count` residents (band-0001, ...), each with the home provisioning would give them. */
export function simulatedResidents(count: number, opts: SimulatedResidentsOptions): SimulatedResident[] {
  const timezone = opts.timezone ?? 'Europe/Paris';
  return Array.from({ length: count }, (_, i) => {
    const n = i + 1;
    const deviceId = deviceIdFor(n, opts.deviceIdPrefix);
    const homeLocation = homeLocationFor(n);
    const model = new ResidentModel({
      deviceId,
      seed: mixSeeds(opts.seed ?? 0, hashString(deviceId)),
      startTs: opts.startTs,
      timezone,
      accHz: opts.accHz ?? 20,
      intervalMs: opts.intervalMs,
      home: homeLocation,
    });
    return { n, deviceId, timezone, homeLocation, model };
  });
}

/**
 * The readings of several residents from their next reading until before `toTs`, in time
 * order across residents (ties in the order given), each resident's in seq order.
 */
export function* generateFleetReadings(models: readonly ResidentModel[], toTs: number): Generator<WireReading, void, undefined> {
  const live = models.filter((m) => m.nextTs < toTs);
  while (live.length > 0) {
    let k = 0;
    for (let i = 1; i < live.length; i++) if (live[i].nextTs < live[k].nextTs) k = i;
    yield live[k].next();
    if (live[k].nextTs >= toTs) live.splice(k, 1);
  }
}

/** One request as the phone app would send it. */
export interface Delivery {
  /** Device time at which the phone sends it, epoch ms: the end of the newest live reading's window. */
  at: number;
  readings: WireReading[];
  /** Readings made out of range, sent after it (shuffled, in several batches). */
  late: boolean;
}

/**
 * The requests the phone would send for one resident until before `toTs`: each live reading
 * on its own at the end of its window; readings made during OUT_OF_RANGE held until it ends,
 * then shuffled into several batches sent one after each of the next live readings (as the
 * Fleet does over HTTP). Whatever is still held or queued at `toTs` goes out at `toTs`.
 * Every reading is delivered exactly once.
 */
export function* generateDeliveries(model: ResidentModel, toTs: number): Generator<Delivery, void, undefined> {
  let held: WireReading[] = [];
  const late: WireReading[][] = [];
  const shuffle = (): void => {
    if (held.length === 0) return;
    late.push(...splitLateBatches(held, new Random(mixSeeds(hashString(model.deviceId), held[0].seq))));
    held = [];
  };
  while (model.nextTs < toTs) {
    const ts = model.nextTs;
    const reading = model.next();
    if (model.outOfRangeUntil(ts) !== undefined) {
      held.push(reading);
      continue;
    }
    shuffle();
    const at = ts + model.intervalMs;
    yield { at, readings: [reading], late: false };
    const batch = late.shift();
    if (batch) yield { at, readings: batch, late: true };
  }
  shuffle();
  for (const batch of late.splice(0)) yield { at: toTs, readings: batch, late: true };
}
