/**
 * Sleep from the wrist accelerometer, in event time, one device at a time.
 *
 * Three stages, each streaming and O(1) per reading:
 *
 * 1. **Epochs.** Readings are grouped into 60-s epochs aligned on the UTC minute (local
 *    minutes coincide: zone offsets are whole quarter hours). Each epoch gets an activity count
 *    from the raw accelerometer (./movement.ts): the integral of the high-passed, dead-banded
 *    acceleration magnitude, in g·s, times COUNTS_PER_G_S, extrapolated to the full minute.
 *
 * 2. **Scoring.** Cole, Kripke et al. (1992, Sleep 15(5):461–469), 1-min epochs:
 *    D = 0.00001·(404A₋₄ + 598A₋₃ + 326A₋₂ + 441A₋₁ + 1408A₀ + 508A₊₁ + 350A₊₂), asleep when D < 1.
 *    An epoch is scored once the two that follow it are known (received, or known to be
 *    missing). Epochs with no data count as A = 0 in a neighbour's window, as ActiLife pads the
 *    ends of a recording; they are never scored themselves. An epoch in which the band reported
 *    itself not worn or charging is "off-wrist": never asleep.
 *
 * 3. **Sessions** (rules and their sources below): Tudor-Locke et al. (2014) sleep periods —
 *    open at the first of 5 consecutive sleep minutes, close at the first of 10 consecutive
 *    non-sleep minutes — merged into one session when less than 60 min apart (van Hees et al.
 *    2018), kept when the session spans at least 160 min (Tudor-Locke 2014). A session is final
 *    once 60 min have passed after its last sleep epoch with no new period begun, whether that
 *    time was awake, off the wrist or silent (a gap).
 *
 * Scaling of the counts (why COUNTS_PER_G_S = 100). Cole–Kripke's weights were fitted on the
 * counts of one actigraph of the 1990s; counts of another sensor have no fixed conversion to
 * them (te Lindert & Van Someren 2013 had to regress theirs onto an Actiwatch's), so we anchor
 * the scale on the decision boundary instead. With every epoch of the window at the same count
 * A, D = 0.04035·A, so a sustained ~25 counts/min is the sleep/wake boundary; an isolated burst
 * of A₀ alone turns its own epoch to wake from 71 counts. Measured with ./movement.ts (20–100 Hz):
 *   - still wrist (sleep between turns; the simulator, and WEDA-FALL's quietest real 2-s stretches): 0–1;
 *   - turning over in bed (simulator, 2 s of rotation by 90–180°): 75–140 in that one minute →
 *     at most that minute scores awake; its neighbours stay asleep (largest other weight:
 *     0.00598·140 = 0.84 < 1);
 *   - seated, awake, hands resting with a gesture now and then (simulator's TV evening): 29–100
 *     per minute, median 57 (5th–95th percentile 40–78), i.e. D ≈ 2.3 sustained: awake;
 *   - walking: ~1,200 (simulator), 650–2,100 over whole real recordings (WEDA-FALL D01, young
 *     and 77–95-year-old wearers — ../shared/datasets/weda-fall), against 0–1 in the still 2-s
 *     stretches of its sit-and-wait recordings (D04).
 * Limits: a person lying awake without moving, or sitting motionless (not fidgeting at all),
 * scores as asleep — the known weakness of every actigraphy algorithm (low specificity for
 * quiet wake); the simulator's INACTIVITY scenario (awake, motionless) reads ~1 count/min. The
 * session rules bound the effect: a still spell shorter than 5 min opens nothing, and a
 * session must span 160 min to be reported. Heart rate (hrMean, per epoch) against a personal
 * resting baseline is the obvious complement; it is not used yet.
 *
 * State: plain JSON (numbers, booleans, null, small arrays); at most ~8 epochs of window plus a
 * fixed set of counters, whatever the length of the stream.
 */
import { isoDay, localDay, localMinute } from './local-day.js';
import { accumulateMovement, type MoveFilter } from './movement.js';

/** Cole–Kripke's 1-min version. */
export const EPOCH_MS = 60_000;
/** Cole–Kripke (1992), 1-min epochs: scale factor P and weights for A₋₄ … A₊₂. */
const CK_P = 0.00001;
const CK_WEIGHTS = [404, 598, 326, 441, 1408, 508, 350] as const;
/** Window offsets of CK_WEIGHTS, in epochs: four before, two after. */
const CK_BEFORE = 4;
const CK_AFTER = 2;
/** Counts per g·s of dead-banded, high-passed acceleration: anchored on Cole–Kripke's boundary (header). */
export const COUNTS_PER_G_S = 100;
/**
 * An epoch needs a quarter of its minute covered by accelerometer data (3 of its 12 readings)
 * to get a count; with less, the extrapolation to 60 s is noise and the minute counts as missing.
 */
const MIN_COVERAGE_S = 15;
/** Tudor-Locke et al. 2014 (Appl Physiol Nutr Metab 39:53–57; defaults of ActiLife and actigraph.sleepr): bedtime = first of 5 consecutive sleep minutes. */
const ONSET_RUN = 5;
/** Tudor-Locke 2014: wake time = first of 10 consecutive awake minutes, which ends a sleep period. */
const PERIOD_END_RUN = 10;
/**
 * van Hees et al. 2018 (Sci Rep 8:12975, HDCZA): sleep blocks less than 60 min apart belong to
 * one sleep period time window. A night-time awakening (bathroom, a spell of insomnia) stays
 * inside the night; a separate nap or a new night does not.
 */
const MERGE_GAP_MS = 60 * 60_000;
/** Tudor-Locke 2014: minimum sleep period length 160 min. Shorter sessions are naps or quiet spells and are not reported. */
const MIN_SESSION_MS = 160 * 60_000;
/**
 * A wake bout inside a session counts as an awakening from 3 observed minutes. One or two
 * minutes is what a posture change leaves after Cole–Kripke's window smears it; 3 min and
 * more is time spent awake. Our choice (no standard exists: software counts anything from
 * 1 min up), documented in docs/detection.md (Sleep).
 */
const AWAKENING_MIN_EPOCHS = 3;
/** A night runs from local noon to local noon: a session belongs to the date of the evening it began. */
const NIGHT_SPLIT_MIN = 12 * 60;

export interface SleepInput {
  ts: number;
  acc?: { hz: number; samples: readonly (readonly number[])[] };
  worn?: boolean;
  charging?: boolean;
  hr?: number;
}

export interface ScoredEpoch {
  start: number;
  asleep: boolean;
  offWrist: boolean;
  count: number;
  hrMean: number | null;
}

export interface SleepSession {
  /** YYYY-MM-DD: local date of the evening the session began (noon-to-noon day). */
  night: string;
  start: number;
  end: number;
  totalSleepMin: number;
  /** TST / (end − start). */
  efficiency: number;
  /** Observed non-sleep minutes (awake or off-wrist) between start and end; minutes without data are in neither TST nor WASO. */
  wasoMin: number;
  awakenings: number;
  /** Not measured: nothing tells when the resident went to bed (no diary, no event marker). Always absent for now. */
  onsetLatencyMin?: number;
}

/** The epoch being accumulated. */
interface EpochAcc {
  s: number;
  /** Movement integral (g·s) and the accelerometer seconds it covers. */
  g: number;
  c: number;
  off: boolean;
  hs: number;
  hn: number;
}

/** A closed epoch that had data. */
interface WinEpoch {
  s: number;
  c: number;
  o: boolean;
  h: number | null;
}

/** The session being built. Fields prefixed p are pending: after the last sleep epoch of a period, committed when a period (re)opens. */
interface Session {
  start: number;
  /** End of the last committed sleep epoch. */
  end: number;
  tst: number;
  waso: number;
  awk: number;
  pTst: number;
  pWaso: number;
  pAwk: number;
}

export interface SleepState {
  v: 1;
  mv: MoveFilter | null;
  cur: EpochAcc | null;
  /** Every epoch starting before this is closed (had data or is known missing). */
  known: number | null;
  /** First epoch not yet scored. */
  next: number | null;
  /** Closed epochs with data, from next − 4 epochs on, oldest first. */
  win: WinEpoch[];
  /** Current run of sleep epochs and where it began. */
  sleepRun: number;
  sleepRunStart: number;
  /** Current run of non-sleep epochs (any kind), and how many of them were observed (not missing). */
  wakeRun: number;
  wakeSeen: number;
  /** A sleep period is open: a sleep epoch extends the session at once. */
  open: boolean;
  sess: Session | null;
}

export function newSleepState(): SleepState {
  return { v: 1, mv: null, cur: null, known: null, next: null, win: [], sleepRun: 0, sleepRunStart: 0, wakeRun: 0, wakeSeen: 0, open: false, sess: null };
}

interface Out {
  epochs: ScoredEpoch[];
  sessions: SleepSession[];
}

/** Feeds one reading (event-time order). Returns epochs scored by this call and sessions that are now complete (final). */
export function feedSleep(st: SleepState, input: SleepInput, timezone: string): Out {
  const out: Out = { epochs: [], sessions: [] };
  const ts = input.ts;
  if (!Number.isFinite(ts)) return out;
  const e = Math.floor(ts / EPOCH_MS) * EPOCH_MS;
  if (st.known !== null && e < st.known) return out; // older than the current epoch: ignored
  if (st.cur === null || e > st.cur.s) {
    if (st.cur !== null) closeEpoch(st);
    st.cur = { s: e, g: 0, c: 0, off: false, hs: 0, hn: 0 };
    st.known = e;
    if (st.next === null) st.next = e;
  }
  const cur = st.cur;
  if (input.acc) accumulateMovement(st, ts, input.acc, cur);
  if (input.worn === false || input.charging === true) cur.off = true;
  if (typeof input.hr === 'number' && Number.isFinite(input.hr)) {
    cur.hs += input.hr;
    cur.hn++;
  }
  drain(st, out, timezone);
  return out;
}

/** Event time advanced to ts with no data (gap / silence): close epochs and sessions that can be closed. */
export function settleSleep(st: SleepState, ts: number, timezone: string): Out {
  const out: Out = { epochs: [], sessions: [] };
  if (st.known === null || !Number.isFinite(ts)) return out;
  const e = Math.floor(ts / EPOCH_MS) * EPOCH_MS;
  if (st.cur !== null && e > st.cur.s) {
    closeEpoch(st);
    st.cur = null;
  }
  if (e > st.known) st.known = e;
  drain(st, out, timezone);
  return out;
}

/** The session in progress, if any (for a live view), not final. */
export function openSession(st: SleepState, timezone: string): SleepSession | null {
  return st.sess === null ? null : toSession(st.sess, timezone);
}

function closeEpoch(st: SleepState): void {
  const x = st.cur as EpochAcc;
  const h = x.hn > 0 ? Math.round((x.hs / x.hn) * 10) / 10 : null;
  if (x.off) {
    st.win.push({ s: x.s, c: x.c > 0 ? countOf(x) : 0, o: true, h });
  } else if (x.c >= MIN_COVERAGE_S) {
    st.win.push({ s: x.s, c: countOf(x), o: false, h });
  } // else: too little data, the minute is missing
}

const countOf = (x: EpochAcc): number => Math.round((COUNTS_PER_G_S * x.g * 60) / x.c);

/** Scores every epoch whose two followers are known, and feeds the session rules in time order. */
function drain(st: SleepState, out: Out, timezone: string): void {
  if (st.known === null || st.next === null) return;
  const limit = st.known - CK_AFTER * EPOCH_MS; // epochs before this have both followers known
  let next = st.next;
  const win = st.win;
  while (next < limit) {
    let k = 0;
    while (k < win.length && win[k].s < next) k++;
    const x = k < win.length ? win[k] : null;
    if (x !== null && x.s === next) {
      const asleep = !x.o && coleKripke(win, next) < 1;
      out.epochs.push({ start: x.s, asleep, offWrist: x.o, count: x.c, hrMean: x.h });
      if (asleep) sleepEpoch(st, x.s, out, timezone);
      else wakeEpochs(st, x.s, 1, true, out, timezone);
      next += EPOCH_MS;
    } else {
      const until = x !== null && x.s < limit ? x.s : limit;
      const n = Math.round((until - next) / EPOCH_MS);
      wakeEpochs(st, next, n, false, out, timezone);
      next = until;
    }
  }
  st.next = next;
  const keepFrom = next - CK_BEFORE * EPOCH_MS;
  let drop = 0;
  while (drop < win.length && win[drop].s < keepFrom) drop++;
  if (drop > 0) win.splice(0, drop);
}

function coleKripke(win: readonly WinEpoch[], at: number): number {
  let sum = 0;
  for (const w of win) {
    const k = Math.round((w.s - at) / EPOCH_MS) + CK_BEFORE;
    if (k >= 0 && k < CK_WEIGHTS.length) sum += CK_WEIGHTS[k] * w.c;
  }
  return CK_P * sum;
}

function sleepEpoch(st: SleepState, t: number, out: Out, timezone: string): void {
  const s = st.sess;
  if (st.wakeRun > 0) {
    if (s !== null && st.wakeSeen >= AWAKENING_MIN_EPOCHS) s.pAwk++;
    st.wakeRun = 0;
    st.wakeSeen = 0;
  }
  if (st.sleepRun === 0) st.sleepRunStart = t;
  st.sleepRun++;
  if (s !== null && st.open) {
    s.pTst++;
    commit(s, t + EPOCH_MS);
    return;
  }
  // Defensive: a run that begins an hour or more after the session cannot join it.
  if (s !== null && st.sleepRunStart >= s.end + MERGE_GAP_MS) finish(st, out, timezone);
  const sess = st.sess;
  if (sess !== null) sess.pTst++;
  if (st.sleepRun < ONSET_RUN) return;
  if (sess !== null) {
    commit(sess, t + EPOCH_MS);
  } else {
    st.sess = { start: st.sleepRunStart, end: t + EPOCH_MS, tst: st.sleepRun, waso: 0, awk: 0, pTst: 0, pWaso: 0, pAwk: 0 };
  }
  st.open = true;
}

/** n consecutive non-sleep epochs from t: observed (awake or off-wrist) or missing. */
function wakeEpochs(st: SleepState, t: number, n: number, observed: boolean, out: Out, timezone: string): void {
  if (n <= 0) return;
  st.sleepRun = 0;
  st.wakeRun += n;
  if (observed) st.wakeSeen += n;
  const s = st.sess;
  if (s === null) return;
  if (observed) s.pWaso += n;
  if (st.open && st.wakeRun >= PERIOD_END_RUN) st.open = false;
  // The earliest a new period could begin is the next epoch: too late to merge?
  if (!st.open && t + n * EPOCH_MS >= s.end + MERGE_GAP_MS) finish(st, out, timezone);
}

function commit(s: Session, end: number): void {
  s.tst += s.pTst;
  s.waso += s.pWaso;
  s.awk += s.pAwk;
  s.pTst = s.pWaso = s.pAwk = 0;
  s.end = end;
}

function finish(st: SleepState, out: Out, timezone: string): void {
  const s = st.sess;
  if (s === null) return;
  st.sess = null;
  st.open = false;
  if (s.end - s.start >= MIN_SESSION_MS) out.sessions.push(toSession(s, timezone));
}

function toSession(s: Session, timezone: string): SleepSession {
  const spanMin = (s.end - s.start) / 60_000;
  const day = localDay(s.start, timezone);
  const night = localMinute(s.start, timezone) < NIGHT_SPLIT_MIN ? day - 1 : day;
  return {
    night: isoDay(night),
    start: s.start,
    end: s.end,
    totalSleepMin: s.tst,
    efficiency: spanMin > 0 ? Math.round((s.tst / spanMin) * 1000) / 1000 : 0,
    wasoMin: s.waso,
    awakenings: s.awk,
  };
}
