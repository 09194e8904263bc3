/**
 * Daily activity per local day (the resident's IANA zone, DST included), in event time, one
 * device at a time, and a weekly insight when the step count drops well below its own recent
 * normal.
 *
 * Minutes are aligned on the UTC minute (local minutes coincide: zone offsets are whole quarter
 * hours) and belong to the local day of their start. A day is complete — returned once, final —
 * when the first reading of a later local day arrives.
 *
 * Per day:
 *  - steps: sum of the readings' `steps` (steps since the previous reading);
 *  - activeMinutes: minutes with ≥ 60 steps — cadence below 60 steps/min is incidental
 *    movement, 60 and over is purposeful walking, and ~100 steps/min is moderate intensity in
 *    adults (Tudor-Locke et al. 2018, Br J Sports Med 52:776–788). We count from 60: older
 *    adults' self-paced walking often stays under 100 steps/min;
 *  - wornMinutes: minutes whose readings all say worn (an absent `worn` counts as worn) and not charging;
 *  - longestSedentaryMin: longest run of worn minutes with no step and low movement, excluding
 *    sustained stillness (see below), split at local midnight.
 *
 * Sedentary vs resting. "Worn, no step, low movement" alone would make the night's sleep the
 * longest sedentary bout of every day, which tells a caregiver nothing. Sedentary behaviour is
 * waking behaviour, and accelerometry studies remove the sleep window before counting bouts.
 * Without the sleep detector's output at hand (it lags by minutes and is another state), we use
 * its signal: 30 minutes in a row whose movement count is below Cole–Kripke's sustained sleep
 * level (STILL_MAX_COUNT, same counts as ../sleep/movement.ts) start a rest (van Hees et al.
 * 2018 take such > 30-min blocks of sustained inactivity as sleep candidates); those minutes
 * are not sedentary and end the bout before them. A rest lasts through the odd turn in bed and
 * ends after 10 minutes in a row that are not still (Tudor-Locke et al. 2014's wake-time rule,
 * as in the sleep detector) — those 10 minutes start a sedentary bout — or at once with a step,
 * a movement above the sedentary ceiling, the band taken off, or a gap in the data. Shorter
 * still stretches (reading, watching TV very still) stay sedentary. Minutes without
 * accelerometer data fall back on steps alone.
 *
 * Late readings. Readings arrive in event-time order per device, but a reading whose minute is
 * older than the minute being accumulated can still come (a clock correction, a late flush).
 * Its steps count into its own day — the current one, or a completed day still in the history,
 * which is then returned again with the corrected total (the warehouse upserts by device and
 * day) — but it never touches the minute-based statistics (active, worn, sedentary).
 *
 * Weekly drop. Each completed day is kept (≤ 35 days: the week just ended plus the four before
 * it). When a day completes: weekSteps = mean daily steps over the valid days of the last 7
 * days × 7, baseline = median of the four previous weeks' figures, computed the same way. A
 * week counts when it has ≥ 4 valid days, a valid day being ≥ 10 h of wear (Troiano et al.
 * 2008, MSSE 40(1):181–188): a band left on the charger is not a resident who stopped walking
 * (DESIGN §4). Weekly totals smooth day-of-week routines (market day, a weekly visit); the
 * median of four weeks ignores one unusual week (a holiday, a cold). The insight is raised
 * when weekSteps < 50 % of the baseline, once: it re-arms when the ratio is back at ≥ 75 %.
 *
 * State: plain JSON, ≤ 35 day records of 5 numbers plus a fixed set of counters.
 */
import { isoDay, localDay } from '../sleep/local-day.js';
import { accumulateMovement, type MoveFilter } from '../sleep/movement.js';
import { COUNTS_PER_G_S } from '../sleep/sleep-detector.js';

const MINUTE_MS = 60_000;
/** Tudor-Locke et al. 2018: ≥ 60 steps/min is purposeful walking, below it incidental movement. */
const ACTIVE_STEPS_PER_MIN = 60;
/**
 * Sedentary movement ceiling, in counts/min of ../sleep/movement.ts: above seated gesturing
 * (29–100 measured on the simulator's seated mode) and a turn in bed (75–140), well below walking
 * (~1,200 simulated, 650–2,100 on WEDA-FALL's real walking recordings).
 */
const SEDENTARY_MAX_COUNT = 200;
/**
 * Stillness ceiling: the count below which Cole–Kripke scores a sustained run as sleep
 * (1 / (0.00001 × Σweights) = 1 / 0.04035 ≈ 25 counts/min; see ../sleep/sleep-detector.ts).
 */
const STILL_MAX_COUNT = 25;
/** van Hees et al. 2018 (Sci Rep 8:12975): sustained-inactivity blocks over 30 min are sleep candidates. */
const REST_RUN_MIN = 30;
/** Tudor-Locke et al. 2014 (Appl Physiol Nutr Metab 39:53–57): 10 consecutive awake minutes end a sleep period. */
const REST_EXIT_MIN = 10;
/** A minute needs 15 s of accelerometer data (3 of its 12 readings) for a movement count; same rule as the sleep epochs. */
const MIN_COVERAGE_S = 15;
/** Troiano et al. 2008: a valid day has ≥ 10 h of wear. */
const VALID_DAY_WORN_MIN = 600;
/** Troiano et al. 2008: ≥ 4 valid days make a usable week. */
const MIN_VALID_DAYS_PER_WEEK = 4;
/** Weeks compared: the last one and the four before it (the brief: at least 4 weeks of history). */
const BASELINE_WEEKS = 4;
const HISTORY_DAYS = 7 * (BASELINE_WEEKS + 1);
/** Raised below half the usual week: far outside ordinary week-to-week variation of a routine. Our choice, documented. */
const DROP_RATIO = 0.5;
/** Re-armed at three quarters of the usual week: hysteresis so a week hovering near 50 % raises once. */
const REARM_RATIO = 0.75;

export interface ActivityInput {
  ts: number;
  steps?: number;
  acc?: { hz: number; samples: readonly (readonly number[])[] };
  worn?: boolean;
  charging?: boolean;
}

export interface DailyActivity {
  day: string;
  steps: number;
  activeMinutes: number;
  longestSedentaryMin: number;
  wornMinutes: number;
}

export interface ActivityDrop {
  day: string;
  weekSteps: number;
  baselineWeekSteps: number;
  ratio: number;
}

/** A day: local day number, steps, active minutes, longest sedentary bout, worn minutes. */
interface DayRec {
  d: number;
  steps: number;
  active: number;
  longest: number;
  worn: number;
}

/** The minute being accumulated. */
interface MinuteAcc {
  s: number;
  steps: number;
  /** Movement integral (g·s) and accelerometer seconds. */
  g: number;
  c: number;
  n: number;
  off: boolean;
}

export interface ActivityState {
  v: 1;
  mv: MoveFilter | null;
  min: MinuteAcc | null;
  day: DayRec | null;
  /** Current sedentary bout (minutes of the current day) and current run of still minutes (across midnight). */
  bout: number;
  still: number;
  /** Resting (sustained stillness), and the current run of non-still sedentary minutes while resting. */
  rest: boolean;
  stir: number;
  /** Start of the last closed minute. */
  lastMin: number | null;
  /** Completed days, oldest first, ≤ 35. */
  hist: DayRec[];
  /** The drop insight may be raised. */
  armed: boolean;
}

export function newActivityState(): ActivityState {
  return { v: 1, mv: null, min: null, day: null, bout: 0, still: 0, rest: false, stir: 0, lastMin: null, hist: [], armed: true };
}

/** Feeds one reading. Returns days completed by this call (final) and a drop insight when one is raised. */
export function feedActivity(st: ActivityState, input: ActivityInput, timezone: string): { days: DailyActivity[]; drop: ActivityDrop | null } {
  const days: DailyActivity[] = [];
  let drop: ActivityDrop | null = null;
  const ts = input.ts;
  if (!Number.isFinite(ts)) return { days, drop };
  const steps = typeof input.steps === 'number' && Number.isFinite(input.steps) && input.steps > 0 ? input.steps : 0;
  const m = Math.floor(ts / MINUTE_MS) * MINUTE_MS;

  if (st.min !== null && m < st.min.s) {
    if (steps > 0) lateSteps(st, localDay(ts, timezone), steps, days);
    return { days, drop };
  }
  if (st.min === null || m > st.min.s) {
    if (st.min !== null) closeMinute(st);
    const d = localDay(m, timezone);
    if (st.day !== null && d !== st.day.d) {
      const done = st.day.d;
      days.push(completeDay(st));
      drop = weeklyDrop(st, done);
    }
    if (st.day === null || st.day.d !== d) st.day = { d, steps: 0, active: 0, longest: 0, worn: 0 };
    if (st.lastMin !== null && m - st.lastMin > MINUTE_MS) breakBout(st); // minutes without data: we do not know
    st.min = { s: m, steps: 0, g: 0, c: 0, n: 0, off: false };
  }
  const x = st.min;
  x.steps += steps;
  x.n++;
  if (input.worn === false || input.charging === true) x.off = true;
  if (input.acc) accumulateMovement(st, ts, input.acc, x);
  return { days, drop };
}

/** Today's running totals (not final), or null. */
export function currentDay(st: ActivityState): DailyActivity | null {
  if (st.day === null) return null;
  const open = st.min !== null ? st.min.steps : 0;
  return toDaily({ ...st.day, steps: st.day.steps + open, longest: Math.max(st.day.longest, confirmedBout(st)) });
}

function closeMinute(st: ActivityState): void {
  const x = st.min as MinuteAcc;
  const day = st.day as DayRec;
  day.steps += x.steps;
  if (x.steps >= ACTIVE_STEPS_PER_MIN) day.active++;
  st.lastMin = x.s;
  if (x.n === 0 || x.off) {
    breakBout(st);
    return;
  }
  day.worn++;
  const count = x.c >= MIN_COVERAGE_S ? (COUNTS_PER_G_S * x.g * 60) / x.c : null;
  const still = x.steps === 0 && count !== null && count < STILL_MAX_COUNT;
  const sedentary = x.steps === 0 && (count === null || count < SEDENTARY_MAX_COUNT);
  if (st.rest) {
    if (still) {
      st.stir = 0; // a turn in bed, then still again: still resting
    } else if (sedentary) {
      if (++st.stir >= REST_EXIT_MIN) {
        // Up and about (in a chair): those minutes were the start of a sedentary bout.
        st.rest = false;
        st.bout = st.stir;
        st.stir = 0;
        st.still = 0;
        day.longest = Math.max(day.longest, st.bout);
      }
    } else {
      day.longest = Math.max(day.longest, st.stir);
      st.rest = false;
      st.stir = 0;
      st.still = 0;
      st.bout = 0;
    }
    return;
  }
  if (still) {
    st.bout++;
    if (++st.still >= REST_RUN_MIN) {
      // Those still minutes, counted as sedentary so far, are rest after all (bounded by the
      // day's own minutes: the run may have begun before midnight).
      st.bout = Math.max(0, st.bout - REST_RUN_MIN);
      day.longest = Math.max(day.longest, st.bout);
      st.bout = 0;
      st.rest = true;
      st.stir = 0;
    }
  } else if (sedentary) {
    st.still = 0;
    st.bout++;
    day.longest = Math.max(day.longest, st.bout);
  } else {
    st.still = 0;
    day.longest = Math.max(day.longest, st.bout);
    st.bout = 0;
  }
}

/** The current bout without its trailing still minutes, which may yet turn out to be rest. */
function confirmedBout(st: ActivityState): number {
  return st.rest ? 0 : st.bout - Math.min(st.still, st.bout);
}

/** Not worn, charging or no data: the bout ends here; a still stretch shorter than REST_RUN_MIN was sedentary. */
function breakBout(st: ActivityState): void {
  const day = st.day as DayRec;
  if (!st.rest) day.longest = Math.max(day.longest, st.bout);
  st.bout = 0;
  st.still = 0;
  st.rest = false;
  st.stir = 0;
}

function completeDay(st: ActivityState): DailyActivity {
  const day = st.day as DayRec;
  day.longest = Math.max(day.longest, confirmedBout(st));
  // A bout is split at midnight (so is the count of minutes that would end a rest); a still
  // run and a rest carry on: a night spans midnight.
  st.bout = 0;
  st.stir = 0;
  st.hist.push(day);
  const from = day.d - (HISTORY_DAYS - 1);
  let drop = 0;
  while (drop < st.hist.length && st.hist[drop].d < from) drop++;
  if (drop > 0) st.hist.splice(0, drop);
  st.day = null;
  return toDaily(day);
}

function lateSteps(st: ActivityState, d: number, steps: number, days: DailyActivity[]): void {
  const today = st.day as DayRec;
  if (d >= today.d) {
    today.steps += steps;
    return;
  }
  if (d < today.d - (HISTORY_DAYS - 1)) return; // older than anything kept: dropped
  let i = st.hist.length;
  while (i > 0 && st.hist[i - 1].d > d) i--;
  let rec = i > 0 && st.hist[i - 1].d === d ? st.hist[i - 1] : null;
  if (rec === null) {
    rec = { d, steps: 0, active: 0, longest: 0, worn: 0 };
    st.hist.splice(i, 0, rec);
  }
  rec.steps += steps;
  days.push(toDaily(rec));
}

function weeklyDrop(st: ActivityState, d: number): ActivityDrop | null {
  const week = weekSteps(st.hist, d);
  if (week === null) return null;
  const base: number[] = [];
  for (let k = 1; k <= BASELINE_WEEKS; k++) {
    const w = weekSteps(st.hist, d - 7 * k);
    if (w === null) return null; // not 4 usable weeks of history
    base.push(w);
  }
  base.sort((a, b) => a - b);
  const baseline = (base[1] + base[2]) / 2;
  if (!(baseline > 0)) return null;
  const ratio = week / baseline;
  if (st.armed && ratio < DROP_RATIO) {
    st.armed = false;
    return { day: isoDay(d), weekSteps: Math.round(week), baselineWeekSteps: Math.round(baseline), ratio: Math.round(ratio * 1000) / 1000 };
  }
  if (!st.armed && ratio >= REARM_RATIO) st.armed = true;
  return null;
}

/** Mean steps of the valid days in the 7 days ending on `end`, × 7; null with fewer than 4 valid days. */
function weekSteps(hist: readonly DayRec[], end: number): number | null {
  let sum = 0;
  let n = 0;
  for (const r of hist) {
    if (r.d > end - 7 && r.d <= end && r.worn >= VALID_DAY_WORN_MIN) {
      sum += r.steps;
      n++;
    }
  }
  return n >= MIN_VALID_DAYS_PER_WEEK ? (sum / n) * 7 : null;
}

const toDaily = (r: DayRec): DailyActivity => ({
  day: isoDay(r.d),
  steps: r.steps,
  activeMinutes: r.active,
  longestSedentaryMin: r.longest,
  wornMinutes: r.worn,
});
