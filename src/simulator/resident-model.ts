/**
 * One simulated resident wearing a band: a deterministic model of their day that yields the
 * wire reading (DESIGN §3.1) the phone app would post for each window of simulated time.
 *
 * Everything derives from the seed and the start time, so the same options give the same
 * readings, sample for sample. Scenarios (SOS, a fall, abnormal vitals) are injected on top
 * of the daily rhythm; while one is under way the band is worn, so that a demo never fires a
 * tachycardia at a band lying on its charger.
 *
 * Values stay within what ingest accepts without a flag (see ../ingest/sanitize.ts).
 */
import type { Accelerometer, DeviceEvent } from '../core/reading.js';
import * as acc from './accelerometer.js';
import { LocalClock } from './local-time.js';
import { Random, mixSeeds } from './prng.js';

/** A reading as the phone app sends it. */
export interface WireReading {
  deviceId: string;
  seq: number;
  ts: string;
  /** Absent while the band is off the wrist: optical sensors measure nothing on a charger. */
  hr?: number;
  spo2?: number;
  skinTemp: number;
  steps: number;
  battery: number;
  worn: boolean;
  charging: boolean;
  acc: Accelerometer;
  events?: DeviceEvent[];
}

export type ScenarioName = 'SOS' | 'FALL' | 'TACHYCARDIA' | 'BRADYCARDIA' | 'HYPOXIA';
export const SCENARIO_NAMES: readonly ScenarioName[] = ['SOS', 'FALL', 'TACHYCARDIA', 'BRADYCARDIA', 'HYPOXIA'];

/**
 * Default lengths. Vitals last 2 min: well past the ~30 s a vitals alert needs, short enough
 * for the alert to resolve within a demo. After a fall the resident stays down 3 min.
 */
export const SCENARIO_DEFAULT_MS: Readonly<Record<ScenarioName, number>> = {
  SOS: 0,
  FALL: 3 * 60_000,
  TACHYCARDIA: 2 * 60_000,
  BRADYCARDIA: 2 * 60_000,
  HYPOXIA: 2 * 60_000,
};

export interface ResidentModelOptions {
  deviceId: string;
  seed: number;
  /** Device time of the first reading, epoch ms. */
  startTs: number;
  /** IANA zone of the resident's daily rhythm. Default Europe/Paris. */
  timezone?: string;
  /** Accelerometer rate. Default 25 Hz: enough for walking and falls, light on the wire. */
  accHz?: number;
  /** Window covered by each reading. Default 5 s, the phone app's cadence. */
  intervalMs?: number;
  /** seq of the first reading. Default 0. */
  startSeq?: number;
}

type Mode = 'sleep' | 'seated' | 'walking' | 'charger' | 'fallen';

/** Who this resident is: drawn once from the seed. */
interface Profile {
  sleepHr: number;
  dayHr: number;
  walkBoost: number;
  spo2: number;
  skinDay: number;
  skinNight: number;
  /** Steps per second while walking; older adults walk at ~1.6–1.9 steps/s. */
  cadence: number;
  /** Multiplies how often they get up and walk. */
  activity: number;
  wakeShift: number;
  bedShift: number;
}

/** One local day, in minutes after local midnight. */
interface DayPlan {
  wake: number;
  bed: number;
  chargeStart: number;
  chargeEnd: number;
  bathroom?: { start: number; end: number };
}

interface Scenario {
  name: ScenarioName;
  startTs: number;
  endTs: number;
  fired: boolean;
}

const MAX_ACC_SAMPLES = 2000; // what ingest accepts per reading
const WALK_BOUT_MS = 3 * 60_000;
const HR_TAU_MS = 40_000; // heart rate settles within a minute or two after a change of effort
const SKIN_TAU_MS = 10 * 60_000; // skin temperature drifts over minutes
const DRAIN_PER_MS = 1 / (15 * 60_000); // 1 % per 15 min
const CHARGE_PER_MS = 3.3 / 60_000; // ~95 % in 30 min
const AMBIENT_C = 23;

const clamp = (v: number, lo: number, hi: number): number => Math.min(hi, Math.max(lo, v));

export class ResidentModel {
  readonly deviceId: string;
  readonly intervalMs: number;
  readonly accHz: number;
  private readonly seed: number;
  private readonly samplesPerReading: number;
  private readonly clock: LocalClock;
  private readonly rng: Random;
  private readonly profile: Profile;
  private ts: number;
  private seq: number;
  private scenarios: Scenario[] = [];
  private plan: DayPlan | undefined;
  private planDay = NaN;
  private walkingNow = false;
  private posture = 0;
  private hrLevel = NaN;
  private skinLevel = NaN;
  private battery: number;

  constructor(opts: ResidentModelOptions) {
    this.deviceId = opts.deviceId;
    this.seed = opts.seed >>> 0;
    this.ts = opts.startTs;
    this.seq = opts.startSeq ?? 0;
    this.intervalMs = opts.intervalMs ?? 5000;
    this.accHz = opts.accHz ?? 25;
    if (!(this.intervalMs > 0)) throw new RangeError('intervalMs must be positive');
    if (!(this.accHz >= 1 && this.accHz <= 1000)) throw new RangeError('accHz must be from 1 to 1000');
    this.samplesPerReading = Math.max(1, Math.round((this.accHz * this.intervalMs) / 1000));
    if (this.samplesPerReading > MAX_ACC_SAMPLES)
      throw new RangeError(`${this.accHz} Hz over ${this.intervalMs} ms exceeds ${MAX_ACC_SAMPLES} samples per reading`);
    this.clock = new LocalClock(opts.timezone ?? 'Europe/Paris');
    this.rng = new Random(this.seed);
    const r = this.rng;
    this.profile = {
      sleepHr: r.uniform(56, 60),
      dayHr: r.uniform(68, 75),
      walkBoost: r.uniform(10, 18),
      spo2: r.uniform(96, 97.5),
      skinDay: r.uniform(32.5, 33.5),
      skinNight: r.uniform(34, 35),
      cadence: r.uniform(1.6, 1.9),
      activity: r.uniform(0.7, 1.3),
      wakeShift: r.uniform(-20, 20),
      bedShift: r.uniform(-20, 20),
    };
    this.posture = r.int(0, acc.POSTURES.lying.length - 1);
    this.battery = this.initialBattery();
  }

  /** Device time of the next reading, epoch ms. */
  get nextTs(): number {
    return this.ts;
  }

  /**
   * Plays a scenario from the first reading at or after `startTs`. SOS and FALL put their
   * event on that reading (FALL also the impact in its accelerometer burst); the others hold
   * their abnormal vital for `durationMs`.
   */
  inject(name: ScenarioName, startTs: number, durationMs = SCENARIO_DEFAULT_MS[name]): void {
    if (!SCENARIO_NAMES.includes(name)) throw new RangeError(`unknown scenario ${String(name)}; one of ${SCENARIO_NAMES.join(', ')}`);
    this.scenarios.push({ name, startTs, endTs: startTs + durationMs, fired: false });
  }

  next(): WireReading {
    const ts = this.ts;
    const dt = this.intervalMs;
    const { day, minute } = this.clock.at(ts);
    const plan = this.planFor(day);
    const r = this.rng;

    const events: DeviceEvent[] = [];
    let hr: number | undefined;
    let spo2: number | undefined;
    let impact = false;
    let fallen = false;
    let inScenario = false;
    this.scenarios = this.scenarios.filter((s) => !s.fired || ts < s.endTs);
    for (const s of this.scenarios) {
      if (ts < s.startTs) continue;
      inScenario = true;
      if (s.name === 'SOS' && !s.fired) events.push('SOS');
      if (s.name === 'FALL') {
        if (!s.fired) events.push('FALL');
        impact ||= !s.fired;
        fallen = true;
      }
      if (s.name === 'TACHYCARDIA') hr = r.int(140, 155);
      if (s.name === 'BRADYCARDIA') hr = r.int(35, 38);
      if (s.name === 'HYPOXIA') spo2 = r.int(86, 89);
      s.fired = true;
    }

    const asleep = minute < plan.wake || minute >= plan.bed;
    let mode: Mode;
    if (fallen) mode = 'fallen';
    else if (!inScenario && minute >= plan.chargeStart && minute < plan.chargeEnd) mode = 'charger';
    else if (asleep) mode = plan.bathroom && minute >= plan.bathroom.start && minute < plan.bathroom.end ? 'walking' : 'sleep';
    else mode = this.daytimeMode(minute, dt);
    if (mode !== 'seated' && mode !== 'walking') this.walkingNow = false;
    const worn = mode !== 'charger';

    const p = this.profile;
    const hrTarget =
      mode === 'sleep' ? p.sleepHr : mode === 'walking' ? p.dayHr + p.walkBoost : mode === 'fallen' ? p.dayHr + 8 : p.dayHr;
    this.hrLevel = Number.isNaN(this.hrLevel) ? hrTarget : this.hrLevel + (hrTarget - this.hrLevel) * (1 - Math.exp(-dt / HR_TAU_MS));
    if (worn) {
      hr ??= mode === 'sleep' ? clamp(Math.round(r.normal(this.hrLevel, 1)), 55, 62) : clamp(Math.round(r.normal(this.hrLevel, 2)), 65, 95);
      spo2 ??= clamp(Math.round(r.normal(asleep ? p.spo2 - 1 : p.spo2, 0.7)), 94, 99);
    } else {
      hr = spo2 = undefined;
    }

    const skinTarget = !worn ? AMBIENT_C : mode === 'sleep' ? p.skinNight : p.skinDay;
    this.skinLevel = Number.isNaN(this.skinLevel)
      ? skinTarget
      : this.skinLevel + (skinTarget - this.skinLevel) * (1 - Math.exp(-dt / SKIN_TAU_MS));
    const skinTemp = Math.round(r.normal(this.skinLevel, 0.05) * 10) / 10;

    const charging = mode === 'charger';
    this.battery = clamp(this.battery + (charging ? CHARGE_PER_MS : -DRAIN_PER_MS) * dt, 1, 100);

    const cadence = asleep ? p.cadence * 0.8 : p.cadence; // a shuffle to the bathroom at night
    const steps = mode === 'walking' ? Math.round(((cadence * dt) / 1000) * r.uniform(0.85, 1)) : 0;

    // One object shape for every reading; JSON.stringify leaves out the undefined fields.
    const reading: WireReading = {
      deviceId: this.deviceId,
      seq: this.seq,
      ts: new Date(Math.round(ts)).toISOString(),
      hr,
      spo2,
      skinTemp,
      steps,
      battery: Math.round(this.battery),
      worn,
      charging,
      acc: { hz: this.accHz, samples: this.accelerometer(mode, impact, cadence) },
      events: events.length > 0 ? events : undefined,
    };

    this.ts += dt;
    this.seq++;
    return reading;
  }

  /** Awake and wearing the band: mostly seated, in walking bouts now and then. */
  private daytimeMode(minute: number, dt: number): Mode {
    const busy = (minute >= 540 && minute < 720) || (minute >= 870 && minute < 1080); // 9–12 h, 14:30–18 h
    const meanRestMs = ((busy ? 25 : 60) * 60_000) / this.profile.activity;
    const switchMs = this.walkingNow ? WALK_BOUT_MS : meanRestMs;
    if (this.rng.chance(1 - Math.exp(-dt / switchMs))) this.walkingNow = !this.walkingNow;
    return this.walkingNow ? 'walking' : 'seated';
  }

  private accelerometer(mode: Mode, impact: boolean, cadence: number): acc.Vec3[] {
    const { rng: r, samplesPerReading: n, accHz: hz } = this;
    const lying = acc.POSTURES.lying;
    switch (mode) {
      case 'charger':
        return acc.still(r, n, acc.POSTURES.charger, 0.002);
      case 'seated':
        return acc.seated(r, n, hz, acc.POSTURES.forearmOnTable);
      case 'walking':
        return acc.walking(r, n, hz, cadence);
      case 'fallen':
        return impact ? acc.fall(r, n, hz, acc.POSTURES.fallen) : acc.still(r, n, acc.POSTURES.fallen, 0.006);
      case 'sleep': {
        // Sleepers turn over every hour or two; between turns the wrist is nearly still.
        if (!r.chance(1 - Math.exp(-this.intervalMs / (80 * 60_000)))) return acc.still(r, n, lying[this.posture], 0.004);
        const from = lying[this.posture];
        this.posture = (this.posture + r.int(1, lying.length - 1)) % lying.length;
        return acc.turnOver(r, n, hz, from, lying[this.posture]);
      }
    }
  }

  /** Per-day jitter comes from its own seed, so it does not depend on how many readings came before. */
  private planFor(day: number): DayPlan {
    if (day === this.planDay && this.plan) return this.plan;
    const r = new Random(mixSeeds(this.seed, day));
    const wake = 390 + this.profile.wakeShift + r.uniform(-10, 10); // ~06:30
    const bed = 1350 + this.profile.bedShift + r.uniform(-10, 10); // ~22:30
    const chargeStart = wake + r.uniform(40, 70);
    const plan: DayPlan = { wake, bed, chargeStart, chargeEnd: chargeStart + r.uniform(25, 35) };
    if (r.chance(0.6)) {
      const start = r.uniform(60, 270); // between 01:00 and 04:30
      plan.bathroom = { start, end: start + r.uniform(2, 4) };
    }
    this.planDay = day;
    this.plan = plan;
    return plan;
  }

  /** Starts where the charge cycle would be at this time of day, not always at 100 %. */
  private initialBattery(): number {
    const { day, minute } = this.clock.at(this.ts);
    const today = this.planFor(day);
    if (minute >= today.chargeStart && minute < today.chargeEnd) return 60;
    const sinceCharge = minute >= today.chargeEnd ? minute - today.chargeEnd : minute + 1440 - this.planFor(day - 1).chargeEnd;
    return clamp(100 - sinceCharge / 15, 1, 100);
  }
}
