/**
 * One simulated resident wearing a band: a deterministic model of their day that yields the
 * wire reading (DESIGN §3.1) the phone app would post for each window of simulated time.
 *
 * Everything derives from the seed and the start time, so the same options give the same
 * readings, sample for sample. Scenarios (SOS, a fall, abnormal vitals, a band left on a
 * table, wandering, ...) are injected on top of the daily rhythm; while one is under way the
 * band is on the wrist unless the scenario says otherwise, so that a demo never fires a
 * tachycardia at a band lying on its charger.
 *
 * The normal rhythm is built to raise no alert from any detector (DESIGN §3.4): asleep at night
 * on the wrist (or on the charger for 1–2 h at bedtime for some residents), charged once a day
 * well before 15 %, never seated worn and awake for 2 h without getting up (seated bouts are
 * capped at 80 min), skin temperature 30–36 °C on the wrist, heart rate and SpO2 in normal
 * bands, and the phone at home or on a short walk that stays within 200 m of it.
 *
 * Values stay within what ingest accepts without a flag (see ../ingest/sanitize.ts).
 */
import type { Accelerometer, DeviceEvent } from '../core/reading.js';
import * as acc from './accelerometer.js';
import { LocalClock } from '../core/local-time.js';
import { Random, mixSeeds } from './prng.js';

/** The phone's position, as the app attaches it to each reading. */
export interface WireLocation {
  lat: number;
  lon: number;
  accuracyM: number;
}

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
  location?: WireLocation;
}

export type ScenarioName =
  | 'SOS'
  | 'FALL'
  | 'TACHYCARDIA'
  | 'BRADYCARDIA'
  | 'HYPOXIA'
  | 'FALL_SILENT'
  | 'NOT_WORN'
  | 'SEDENTARY'
  | 'LOW_BATTERY'
  | 'FEVER'
  | 'HYPOTHERMIA'
  | 'WANDERING'
  | 'OUT_OF_RANGE';

export const SCENARIO_NAMES: readonly ScenarioName[] = [
  'SOS',
  'FALL',
  'TACHYCARDIA',
  'BRADYCARDIA',
  'HYPOXIA',
  'FALL_SILENT',
  'NOT_WORN',
  'SEDENTARY',
  'LOW_BATTERY',
  'FEVER',
  'HYPOTHERMIA',
  'WANDERING',
  'OUT_OF_RANGE',
];

/**
 * Default lengths. Each lasts well past what its alert needs, and ends so that the alert can
 * resolve.
 */
export const SCENARIO_DEFAULT_MS: Readonly<Record<ScenarioName, number>> = {
  /** One SOS event on one reading. */
  SOS: 0,
  /** Fall with the on-device FALL event, then 3 min down: short enough for a demo. */
  FALL: 3 * 60_000,
  /** hr 140–155 bpm; vitals last 2 min, well past the ~30 s a vitals alert needs. */
  TACHYCARDIA: 2 * 60_000,
  /** hr 35–38 bpm. */
  BRADYCARDIA: 2 * 60_000,
  /** spo2 86–89 %. */
  HYPOXIA: 2 * 60_000,
  /**
   * Fall without the on-device event (the pipeline must find the impact in the raw
   * accelerometer), then a "long lie": 30 min still, face down, on the wrist.
   */
  FALL_SILENT: 30 * 60_000,
  /** Band taken off and left on a table: worn=false, not charging, no hr/spo2, flat signal, skin to room temperature. */
  NOT_WORN: 60 * 60_000,
  /** Awake, on the wrist, sitting almost motionless (no steps, no gestures): past the 2 h of INACTIVITY. */
  SEDENTARY: 3 * 60 * 60_000,
  /** Battery from at most 20 % down to 8 %, off the charger; put on the charger when it ends. */
  LOW_BATTERY: 2 * 60 * 60_000,
  /** Skin temperature rises to ~38 °C within ~20 min and stays; hr 10–15 bpm up. */
  FEVER: 60 * 60_000,
  /** Skin temperature falls to ~27 °C within ~15 min and stays. */
  HYPOTHERMIA: 60 * 60_000,
  /** Walks away from home at ~1 m/s (past 500 m within ~9 min); brought back home when it ends. */
  WANDERING: 45 * 60_000,
  /** The phone loses the band: readings are made as usual but delivered only when it ends (see Fleet). */
  OUT_OF_RANGE: 60 * 60_000,
};

export interface HomeLocation {
  lat: number;
  lon: number;
}

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
  /**
   * Accelerometer signal per reading, from the start of its window. Default: the whole window.
   * Shorter is a duty-cycled accelerometer, as the history backfill uses to keep its cost down
   * (./history.ts): what happens outside the burst is not seen — a turn in bed or a shift in
   * the chair shows in it with the chance the burst covers of the window, else only as the new
   * posture; a fall's impact (a scenario) is always in it.
   */
  accWindowMs?: number;
  /** seq of the first reading. Default 0. */
  startSeq?: number;
  /**
   * Where the resident lives (the resident's `homeLocation`): readings carry the phone's
   * location near it. Default: a point in Paris drawn from the seed.
   */
  home?: HomeLocation;
}

type Mode = 'sleep' | 'seated' | 'walking' | 'outdoor' | 'charger' | 'fallen' | 'table' | 'sedentary' | 'wandering';

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
  /** Walking speed outdoors, m/s (older adults: ~0.9–1.2 m/s). */
  speed: number;
  /** Multiplies how often they get up and walk. */
  activity: number;
  wakeShift: number;
  bedShift: number;
  /** When the band goes on its charger: ~30 min after getting up, or 1–2 h from bedtime. */
  chargeAt: 'morning' | 'bedtime';
  /** Chance of a walk outside on a given day. */
  outings: number;
}

/** One local day, in minutes after local midnight. */
interface DayPlan {
  wake: number;
  bed: number;
  /** On the charger; a bedtime charge may run past midnight (end > 1440). */
  charge: { start: number; end: number };
  bathroom?: { start: number; end: number };
  /** A walk around the block: a circle through home, of radius `radiusM`, walked at profile speed. */
  outing?: { start: number; end: number; bearing: number; radiusM: number };
  /** Where the band lies when off the wrist, °C. */
  room: number;
}

interface Scenario {
  name: ScenarioName;
  startTs: number;
  endTs: number;
  fired: boolean;
  /** Drawn when it starts: FEVER's hr rise, LOW_BATTERY's starting level. */
  param: number;
}

const MAX_ACC_SAMPLES = 2000; // what ingest accepts per reading
const MINUTE = 60_000;
/** Longest seated bout of the normal rhythm: INACTIVITY fires past 2 h worn, awake and still. */
const MAX_SEATED_MS = 80 * MINUTE;
const MIN_SEATED_MS = 3 * MINUTE;
const SEATED_SHIFT_MS = 12 * MINUTE; // mean time between changes of posture in a chair
const HR_TAU_MS = 40_000; // heart rate settles within a minute or two after a change of effort
/** Skin temperature drifts over minutes; a cold band put on a warm wrist warms faster. */
const SKIN_TAU_MS = 8 * MINUTE;
const SKIN_WARMUP_TAU_MS = 2 * MINUTE;
/** ~2.5 %/h: a band streaming HR, SpO2 and the accelerometer lasts about 40 h; charged daily it never falls below ~40 %. */
const DRAIN_PER_MS = 1 / (24 * MINUTE);
const CHARGE_PER_MS = 3.3 / MINUTE; // ~95 % in 30 min
const RECHARGED = 97;
const LOW_BATTERY_FROM = 20;
const LOW_BATTERY_TO = 8;
const FEVER_SKIN_C = 38;
const HYPOTHERMIA_SKIN_C = 27;
const M_PER_DEG_LAT = 111_320;
const PARIS = { lat: 48.8566, lon: 2.3522 };

const clamp = (v: number, lo: number, hi: number): number => Math.min(hi, Math.max(lo, v));
const round6 = (v: number): number => Math.round(v * 1e6) / 1e6;

export class ResidentModel {
  readonly deviceId: string;
  readonly intervalMs: number;
  readonly accHz: number;
  readonly accWindowMs: number;
  readonly home: HomeLocation;
  private readonly seed: number;
  private readonly samplesPerReading: number;
  private readonly clock: LocalClock;
  private readonly startDay: number;
  private readonly rng: Random;
  private readonly profile: Profile;
  private readonly mPerDegLon: number;
  private ts: number;
  private seq: number;
  private scenarios: Scenario[] = [];
  private readonly plans = new Map<number, DayPlan>();
  private lastMode: Mode | undefined;
  /** The daytime bout under way and when it ends. */
  private bout: 'seated' | 'walking' = 'seated';
  private boutEndTs = 0;
  private getUp = false;
  private seatPosture = 0;
  /** A new seated bout starts with a change of posture. */
  private seatShift = false;
  private posture = 0;
  private hrLevel = NaN;
  private skinLevel = NaN;
  private battery: number;
  /** After LOW_BATTERY: on the charger until recharged. */
  private recharging = false;
  /** Metres east and north of home, where the resident is. */
  private east = 0;
  private north = 0;
  private wander: { bearing: number; heading: number; speed: number } | undefined;

  constructor(opts: ResidentModelOptions) {
    this.deviceId = opts.deviceId;
    this.seed = opts.seed >>> 0;
    this.ts = opts.startTs;
    this.seq = opts.startSeq ?? 0;
    this.intervalMs = opts.intervalMs ?? 5000;
    this.accHz = opts.accHz ?? 25;
    this.accWindowMs = opts.accWindowMs ?? this.intervalMs;
    if (!(this.intervalMs > 0)) throw new RangeError('intervalMs must be positive');
    if (!(this.accHz >= 1 && this.accHz <= 1000)) throw new RangeError('accHz must be from 1 to 1000');
    if (!(this.accWindowMs > 0 && this.accWindowMs <= this.intervalMs)) throw new RangeError('accWindowMs must be positive and at most intervalMs');
    this.samplesPerReading = Math.max(1, Math.round((this.accHz * this.accWindowMs) / 1000));
    if (this.samplesPerReading > MAX_ACC_SAMPLES)
      throw new RangeError(`${this.accHz} Hz over ${this.accWindowMs} ms exceeds ${MAX_ACC_SAMPLES} samples per reading`);
    this.clock = new LocalClock(opts.timezone ?? 'Europe/Paris');
    this.startDay = this.clock.at(this.ts).day;
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
      speed: r.uniform(0.9, 1.2),
      activity: r.uniform(0.7, 1.3),
      wakeShift: r.uniform(-20, 20),
      bedShift: r.uniform(-20, 20),
      chargeAt: r.chance(0.5) ? 'morning' : 'bedtime',
      outings: r.uniform(0.4, 0.9),
    };
    this.posture = r.int(0, acc.POSTURES.lying.length - 1);
    if (opts.home) this.home = { lat: opts.home.lat, lon: opts.home.lon };
    else {
      // Same spread as provisioning: uniform over a disc of 8 km around the centre of Paris.
      const h = new Random(mixSeeds(this.seed, 0x40e));
      const d = 8000 * Math.sqrt(h.float());
      const b = h.uniform(0, 2 * Math.PI);
      this.home = {
        lat: round6(PARIS.lat + (d * Math.cos(b)) / M_PER_DEG_LAT),
        lon: round6(PARIS.lon + (d * Math.sin(b)) / (M_PER_DEG_LAT * Math.cos((PARIS.lat * Math.PI) / 180))),
      };
    }
    this.mPerDegLon = M_PER_DEG_LAT * Math.cos((this.home.lat * Math.PI) / 180);
    this.battery = this.initialBattery();
  }

  /** Device time of the next reading, epoch ms. */
  get nextTs(): number {
    return this.ts;
  }

  /** seq of the next reading. */
  get nextSeq(): number {
    return this.seq;
  }

  /**
   * Plays a scenario from the first reading at or after `startTs`. SOS and FALL put their
   * event on that reading (FALL and FALL_SILENT also the impact in its accelerometer burst);
   * the others hold their condition for `durationMs` (SCENARIO_DEFAULT_MS by default).
   */
  inject(name: ScenarioName, startTs: number, durationMs = SCENARIO_DEFAULT_MS[name]): void {
    if (!SCENARIO_NAMES.includes(name)) throw new RangeError(`unknown scenario ${String(name)}; one of ${SCENARIO_NAMES.join(', ')}`);
    if (!Number.isFinite(startTs) || !(durationMs >= 0)) throw new RangeError('a scenario needs a finite start and a duration ≥ 0');
    this.scenarios.push({ name, startTs, endTs: startTs + durationMs, fired: false, param: NaN });
  }

  /**
   * Epoch ms of local time `at` ('HH:MM' or minutes after midnight) on `day` of the
   * simulation in the resident's time zone; day 0 is the local day of the first reading.
   */
  localTs(day: number, at: string | number): number {
    let minute: number;
    if (typeof at === 'number') minute = at;
    else {
      const m = /^(\d{1,2}):(\d{2})$/.exec(at);
      if (!m || Number(m[1]) > 23 || Number(m[2]) > 59) throw new RangeError(`time of day must be HH:MM; got ${JSON.stringify(at)}`);
      minute = Number(m[1]) * 60 + Number(m[2]);
    }
    if (!Number.isInteger(day) || !(minute >= 0 && minute < 1440)) throw new RangeError('day must be an integer and the time within the day');
    return this.clock.toEpoch(this.startDay + day, minute);
  }

  /**
   * Places a scenario at a local time of a simulated day, e.g.
   * `scheduleScenario('FALL_SILENT', { day: 2, at: '10:00' })`; returns its start, epoch ms.
   */
  scheduleScenario(name: ScenarioName, when: { day: number; at: string | number }, durationMs?: number): number {
    const startTs = this.localTs(when.day, when.at);
    this.inject(name, startTs, durationMs);
    return startTs;
  }

  /**
   * End of the OUT_OF_RANGE scenario the reading made at `ts` falls in, or undefined. Such a
   * reading is made as usual but the phone cannot receive it until then: whoever delivers
   * readings (Fleet, generateDeliveries) holds it. Ask right after next() made that reading.
   */
  outOfRangeUntil(ts: number): number | undefined {
    let until: number | undefined;
    for (const s of this.scenarios)
      if (s.name === 'OUT_OF_RANGE' && ts >= s.startTs && ts < s.endTs) until = Math.max(until ?? -Infinity, s.endTs);
    return until;
  }

  next(): WireReading {
    const ts = this.ts;
    const dt = this.intervalMs;
    const { day, minute } = this.clock.at(ts);
    const plan = this.planFor(day);
    const r = this.rng;
    const p = this.profile;

    const events: DeviceEvent[] = [];
    let hr: number | undefined;
    let spo2: number | undefined;
    let hrRise = 0;
    let skinOverride: number | undefined;
    let impact = false;
    let scenarioMode: Mode | undefined;
    let onWrist = false;
    let lowBattery: Scenario | undefined;

    const live: Scenario[] = [];
    for (const s of this.scenarios) {
      if (s.fired && ts >= s.endTs) this.ended(s);
      else live.push(s);
    }
    this.scenarios = live;
    for (const s of live) {
      if (ts < s.startTs) continue;
      const first = !s.fired;
      s.fired = true;
      if (s.name === 'OUT_OF_RANGE') continue; // the band does not notice: only delivery changes
      if (s.name !== 'NOT_WORN') onWrist = true;
      switch (s.name) {
        case 'SOS':
          if (first) events.push('SOS');
          break;
        case 'FALL':
        case 'FALL_SILENT':
          if (first) {
            impact = true;
            if (s.name === 'FALL') events.push('FALL');
          }
          scenarioMode = 'fallen';
          break;
        case 'TACHYCARDIA':
          hr = r.int(140, 155);
          break;
        case 'BRADYCARDIA':
          hr = r.int(35, 38);
          break;
        case 'HYPOXIA':
          spo2 = r.int(86, 89);
          break;
        case 'NOT_WORN':
          if (scenarioMode !== 'fallen' && scenarioMode !== 'wandering') scenarioMode = 'table';
          break;
        case 'SEDENTARY':
          scenarioMode ??= 'sedentary';
          break;
        case 'WANDERING':
          if (scenarioMode !== 'fallen') scenarioMode = 'wandering';
          break;
        case 'LOW_BATTERY':
          if (first) s.param = Math.min(this.battery, LOW_BATTERY_FROM);
          lowBattery = s;
          break;
        case 'FEVER':
          if (first) s.param = r.uniform(10, 15);
          hrRise = s.param;
          skinOverride = FEVER_SKIN_C;
          break;
        case 'HYPOTHERMIA':
          skinOverride = HYPOTHERMIA_SKIN_C;
          break;
      }
    }
    if (scenarioMode === 'table' && onWrist) scenarioMode = undefined; // another scenario needs the wrist

    if (this.recharging && this.battery >= RECHARGED) this.recharging = false;
    const asleep = minute < plan.wake || minute >= plan.bed;
    let mode: Mode;
    if (scenarioMode) mode = scenarioMode;
    else if (!onWrist && (this.recharging || this.onCharger(day, minute))) mode = 'charger';
    else if (asleep) mode = plan.bathroom && minute >= plan.bathroom.start && minute < plan.bathroom.end ? 'walking' : 'sleep';
    else mode = this.daytimeMode(ts, minute, plan);
    this.lastMode = mode;
    const worn = mode !== 'charger' && mode !== 'table';

    const hrTarget =
      mode === 'sleep'
        ? p.sleepHr
        : mode === 'walking' || mode === 'outdoor' || mode === 'wandering'
          ? p.dayHr + p.walkBoost
          : mode === 'fallen'
            ? p.dayHr + 8
            : mode === 'sedentary'
              ? p.dayHr - 2
              : p.dayHr;
    this.hrLevel = Number.isNaN(this.hrLevel) ? hrTarget : this.hrLevel + (hrTarget - this.hrLevel) * (1 - Math.exp(-dt / HR_TAU_MS));
    if (worn) {
      hr ??=
        (mode === 'sleep' ? clamp(Math.round(r.normal(this.hrLevel, 1)), 55, 62) : clamp(Math.round(r.normal(this.hrLevel, 2)), 65, 95)) +
        Math.round(hrRise);
      spo2 ??= clamp(Math.round(r.normal(asleep ? p.spo2 - 1 : p.spo2, 0.7)), 94, 99);
    } else {
      hr = spo2 = undefined;
    }

    const skinTarget =
      mode === 'table' ? plan.room : mode === 'charger' ? plan.room + 1.5 : (skinOverride ?? (mode === 'sleep' ? p.skinNight : p.skinDay));
    if (Number.isNaN(this.skinLevel)) this.skinLevel = skinTarget;
    else {
      const tau = worn && this.skinLevel < skinTarget - 2 && skinOverride === undefined ? SKIN_WARMUP_TAU_MS : SKIN_TAU_MS;
      this.skinLevel += (skinTarget - this.skinLevel) * (1 - Math.exp(-dt / tau));
    }
    const skinTemp = Math.round(r.normal(this.skinLevel, 0.05) * 10) / 10;

    const charging = mode === 'charger';
    if (lowBattery) {
      const k = clamp((ts - lowBattery.startTs) / Math.max(1, lowBattery.endTs - lowBattery.startTs), 0, 1);
      this.battery = lowBattery.param + (LOW_BATTERY_TO - lowBattery.param) * k;
    } else {
      this.battery = clamp(this.battery + (charging ? CHARGE_PER_MS : -DRAIN_PER_MS) * dt, 1, 100);
    }

    const cadence = asleep && mode === 'walking' ? p.cadence * 0.8 : p.cadence; // a shuffle to the bathroom at night
    const moving = mode === 'walking' || mode === 'outdoor' || mode === 'wandering';
    const steps = moving ? Math.round(((cadence * dt) / 1000) * r.uniform(0.85, 1)) : 0;

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
      location: this.locate(mode, minute, plan, dt),
    };

    this.ts += dt;
    this.seq++;
    return reading;
  }

  /** What changes once a scenario is over. */
  private ended(s: Scenario): void {
    switch (s.name) {
      case 'LOW_BATTERY':
        this.recharging = true; // the resident finally notices and puts the band on its charger
        break;
      case 'WANDERING':
        this.wander = undefined; // brought back home
        this.east = this.north = 0;
        this.getUp = true;
        break;
      case 'FALL':
      case 'FALL_SILENT':
      case 'SEDENTARY':
      case 'NOT_WORN':
        this.getUp = true; // helped up / gets up / puts the band back on: moves about first
        break;
      default:
        break;
    }
  }

  /** Awake and wearing the band at home: seated bouts (never past 80 min) between short walks, and maybe a walk outside. */
  private daytimeMode(ts: number, minute: number, plan: DayPlan): Mode {
    const r = this.rng;
    const o = plan.outing;
    if (o && minute >= o.start && minute < o.end) {
      this.bout = 'walking';
      this.boutEndTs = 0; // back home, a rest comes next
      return 'outdoor';
    }
    const last = this.lastMode;
    if (this.getUp || last === 'sleep' || last === 'fallen' || last === 'sedentary' || last === 'table' || last === 'wandering') {
      // Getting out of bed (or up from the floor, the chair): a few minutes on foot.
      this.getUp = false;
      this.bout = 'walking';
      this.boutEndTs = ts + r.uniform(2, 5) * MINUTE;
    } else if (ts >= this.boutEndTs) {
      if (this.bout === 'seated') {
        this.bout = 'walking';
        this.boutEndTs = ts + r.uniform(1, 3) * MINUTE;
      } else {
        const busy = (minute >= 540 && minute < 720) || (minute >= 870 && minute < 1080); // 9–12 h, 14:30–18 h
        const meanMs = ((busy ? 25 : 60) * MINUTE) / this.profile.activity;
        this.bout = 'seated';
        this.boutEndTs = ts + clamp(-meanMs * Math.log(1 - r.float()), MIN_SEATED_MS, MAX_SEATED_MS);
        this.seatShift = true;
      }
    }
    return this.bout;
  }

  private accelerometer(mode: Mode, impact: boolean, cadence: number): acc.Vec3[] {
    const { rng: r, samplesPerReading: n, accHz: hz } = this;
    const lying = acc.POSTURES.lying;
    const seats = acc.POSTURES.seated;
    switch (mode) {
      case 'charger':
        return acc.still(r, n, acc.POSTURES.charger, 0.002);
      case 'table':
        return acc.still(r, n, acc.POSTURES.table, 0.002);
      case 'seated': {
        // Now and then the resident shifts in the chair: a real change of wrist angle.
        if (!this.seatShift && !r.chance(1 - Math.exp(-this.intervalMs / SEATED_SHIFT_MS))) return acc.seated(r, n, hz, seats[this.seatPosture]);
        this.seatShift = false;
        const from = seats[this.seatPosture];
        this.seatPosture = (this.seatPosture + r.int(1, seats.length - 1)) % seats.length;
        if (!this.seenByBurst()) return acc.seated(r, n, hz, seats[this.seatPosture]);
        return acc.turnOver(r, n, hz, from, seats[this.seatPosture]);
      }
      case 'sedentary':
        // Awake but motionless: more than a band on a table (pulse, breathing), no gesture.
        return acc.still(r, n, seats[this.seatPosture], 0.008);
      case 'walking':
      case 'outdoor':
      case 'wandering':
        return acc.walking(r, n, hz, cadence);
      case 'fallen':
        return impact ? acc.fall(r, n, hz, acc.POSTURES.fallen) : acc.still(r, n, acc.POSTURES.fallen, 0.006);
      case 'sleep': {
        // Sleepers turn over every hour or two; between turns the wrist is nearly still.
        if (!r.chance(1 - Math.exp(-this.intervalMs / (80 * MINUTE)))) return acc.still(r, n, lying[this.posture], 0.004);
        const from = lying[this.posture];
        this.posture = (this.posture + r.int(1, lying.length - 1)) % lying.length;
        if (!this.seenByBurst()) return acc.still(r, n, lying[this.posture], 0.004);
        return acc.turnOver(r, n, hz, from, lying[this.posture]);
      }
    }
  }

  /** A movement made somewhere in the window falls inside a duty-cycled burst with the chance the burst covers of it. */
  private seenByBurst(): boolean {
    return this.accWindowMs >= this.intervalMs || this.rng.chance(this.accWindowMs / this.intervalMs);
  }

  /** The phone's fix: at home (indoor accuracy), on the walk round the block, or wherever wandering led. */
  private locate(mode: Mode, minute: number, plan: DayPlan, dt: number): WireLocation {
    const r = this.rng;
    let outdoors = this.east !== 0 || this.north !== 0; // fallen where they were
    if (mode === 'wandering') {
      outdoors = true;
      // Away from home on a bearing, meandering a little but never turning back.
      const w = (this.wander ??= (() => {
        const bearing = r.uniform(0, 2 * Math.PI);
        return { bearing, heading: bearing, speed: this.profile.speed };
      })());
      w.heading += 0.05 * (w.bearing - w.heading) + r.normal(0, 0.03);
      const d = (w.speed * dt) / 1000;
      this.east += d * Math.sin(w.heading);
      this.north += d * Math.cos(w.heading);
    } else if (mode === 'outdoor' && plan.outing) {
      outdoors = true;
      // Round a circle through home: at most 2·radius (≤ 160 m) away.
      const o = plan.outing;
      const a = (this.profile.speed * (minute - o.start) * 60) / o.radiusM;
      const ux = Math.sin(o.bearing);
      const uy = Math.cos(o.bearing);
      this.east = o.radiusM * (ux - Math.cos(a) * ux + Math.sin(a) * uy);
      this.north = o.radiusM * (uy - Math.cos(a) * uy - Math.sin(a) * ux);
    } else if (mode !== 'fallen') {
      this.east = this.north = 0;
      outdoors = false;
    }
    // Indoors a phone's fix wanders ~10–25 m; outside GPS does better.
    const sd = outdoors ? 3 : 6;
    const cap = outdoors ? 10 : 25;
    let je = r.normal(0, sd);
    let jn = r.normal(0, sd);
    const j = Math.hypot(je, jn);
    if (j > cap) {
      je *= cap / j;
      jn *= cap / j;
    }
    return {
      lat: round6(this.home.lat + (this.north + jn) / M_PER_DEG_LAT),
      lon: round6(this.home.lon + (this.east + je) / this.mPerDegLon),
      accuracyM: Math.round(outdoors ? r.uniform(4, 10) : r.uniform(10, 25)),
    };
  }

  private onCharger(day: number, minute: number): boolean {
    const today = this.planFor(day).charge;
    if (minute >= today.start && minute < today.end) return true;
    const yesterday = this.planFor(day - 1).charge;
    return minute + 1440 >= yesterday.start && minute + 1440 < yesterday.end;
  }

  /** Per-day jitter comes from its own seed, so it does not depend on how many readings came before. */
  private planFor(day: number): DayPlan {
    const cached = this.plans.get(day);
    if (cached) return cached;
    const r = new Random(mixSeeds(this.seed, day));
    const p = this.profile;
    const wake = 390 + p.wakeShift + r.uniform(-10, 10); // ~06:30
    const bed = 1350 + p.bedShift + r.uniform(-10, 10); // ~22:30
    let charge: DayPlan['charge'];
    if (p.chargeAt === 'morning') {
      const start = wake + r.uniform(40, 70);
      charge = { start, end: start + r.uniform(25, 40) };
    } else {
      const start = bed - r.uniform(10, 40); // off the wrist getting ready for bed, back on an hour or two later
      charge = { start, end: start + r.uniform(60, 120) };
    }
    const plan: DayPlan = { wake, bed, charge, room: r.uniform(24, 26) };
    if (r.chance(0.6)) {
      const start = r.uniform(60, 270); // between 01:00 and 04:30
      plan.bathroom = { start, end: start + r.uniform(2, 4) };
    }
    if (r.chance(p.outings)) {
      const start = r.chance(0.5) ? r.uniform(600, 690) : r.uniform(900, 1020); // 10:00–11:30 or 15:00–17:00
      plan.outing = { start, end: start + r.uniform(15, 35), bearing: r.uniform(0, 2 * Math.PI), radiusM: r.uniform(40, 80) };
    }
    if (this.plans.size >= 4) this.plans.delete(this.plans.keys().next().value as number);
    this.plans.set(day, plan);
    return plan;
  }

  /**
   * Starts where the charge cycle would be at this time of day, not always at 100 %: full at
   * the end of the previous charge, drained since, charged since the current one began.
   */
  private initialBattery(): number {
    const { day, minute } = this.clock.at(this.ts);
    const windows = [-3, -2, -1, 0].map((d) => {
      const c = this.planFor(day + d).charge;
      return { start: c.start + d * 1440, end: c.end + d * 1440 }; // minutes from today's midnight
    });
    let k = windows.length - 1;
    while (k > 1 && windows[k].start > minute) k--;
    const drained = (from: number, to: number) => 100 - (to - from) * MINUTE * DRAIN_PER_MS;
    const w = windows[k];
    if (minute >= w.end) return clamp(drained(w.end, minute), 1, 100);
    return clamp(drained(windows[k - 1].end, w.start) + (minute - w.start) * MINUTE * CHARGE_PER_MS, 1, 100);
  }
}
