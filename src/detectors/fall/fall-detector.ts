/**
 * Fall detection on raw wrist accelerometer bursts, in event time, one state per device.
 *
 * A fall seen from the wrist (DESIGN §4; Bourke et al. 2007, Kangas et al. 2008): an impact
 * (peak |a|), then the wrist lies still in a new orientation. Peak |a| alone cannot work on the
 * wrist — clapping, hitting a table, jogging reach 4–6 g (WEDA-FALL, Marques & Moreno, Sensors
 * 2023, 23(3), 1146) — so each candidate impact is judged on four pieces of evidence:
 *
 *   1. the impact: log2 of the peak |a|;
 *   2. what came before: the mean ||a| − 1 g| from 5 s to 1 s before the impact — falls
 *      interrupt ordinary activity (walking, standing, sitting), the look-alikes come within
 *      vigorous, repeated movement (clapping, jogging);
 *   3. the change of posture: the angle between the gravity direction before the fall (3 s to
 *      1 s before the impact) and the one the wrist rests in afterwards (Kangas 2008's "posture
 *      after the fall", made relative because the wrist's own orientation says little);
 *   4. the stillness: how long the wrist has lain still after the impact (counted up to 3 s).
 *
 * They combine into a logistic score whose weights `npm run eval:falls` fits on WEDA-FALL with
 * participants held out (FALL_MODEL, docs/detection.md). A candidate whose score reaches 0
 * while the wrist lies still is a fall; it is dropped when the stillness breaks first, when no
 * stillness begins within 2.5 s, or when a stronger impact comes first. The free-fall dip is not
 * used: on the wrist it does not separate falls from daily activity (WEDA-FALL: median minimum
 * |a| in the second before the impact 0.52 g for falls, 0.55 g for look-alike activities that
 * also ended still; docs/detection.md).
 *
 * Rate independence: samples (any rate, 20–100 Hz) are averaged into 50-ms bins on a grid
 * centred on the first sample, i.e. resampled to 20 Hz behind a box anti-aliasing filter; every
 * window is a number of bins, so every constant below is in seconds or g, never in samples.
 * Hot path: per sample, one bin index and four additions; per 50-ms bin, a few ring updates; no
 * allocation except a decision.
 *
 * State invariants: plain JSON (numbers, arrays of numbers, null — never Infinity/NaN, which
 * JSON cannot carry); history kept as 0.25-s block means rounded to 1e-4 (~1.3 KB serialized);
 * times in epoch ms.
 */

/** Internal bin: 50 ms = 20 Hz, the lowest input rate accepted, so no input is ever upsampled. */
const BIN_MS = 50;
/** History block: 5 bins = 0.25 s, the resolution of the "before the impact" windows. */
const BLOCK_BINS = 5;
/** History kept: 24 blocks = 6 s, covering the 5-s pre-impact window plus the 1-s impact cluster. */
const HISTORY_BLOCKS = 24;

/**
 * A bin with |a| at or above this opens a candidate. DESIGN §4 puts wrist impacts at 2.5–3.5 g;
 * 2 g is just below the smallest peak of any WEDA-FALL fall after 20-Hz binning (2.12 g), so the
 * gate only removes what could never be a fall; the score weighs the peak above it.
 */
const IMPACT_MIN_G = 2;
/** Peaks within 1 s of the first crossing are one impact (hand, then hip or trunk: Kangas 2008 looks for the impact within ~1 s of the fall's start). */
const CLUSTER_MS = 1000;
/**
 * Window lengths, fixed from the fall's physics (the last second before the impact is the fall
 * itself, so it is excluded from "before") and checked in the exploratory analysis on U01–U14:
 * pre-activity 4–1 s or 6–1 s and posture 2–1 s or 4–1 s moved held-out sensitivity and
 * specificity by < 2 points each, in opposite directions, so they are not tuned by the evaluation.
 */
const PRE_ACT_FROM_MS = 5000;
const PRE_ACT_TO_MS = 1000;
const PRE_ORI_FROM_MS = 3000;
const PRE_ORI_TO_MS = 1000;
/** Without 1.5 s of continuous signal before the impact there is no "before" posture to compare: no candidate. Every WEDA-FALL fall has ≥ 2.2 s. */
const MIN_HISTORY_MS = 1500;
/** Stillness is looked for from 0.2 s after the impact (the impact bins themselves are never still) ... */
const STILL_SEARCH_FROM_MS = 200;
/**
 * ... and must begin within 2.5 s of it: on WEDA-FALL 90 % of falls settle within 1.9 s, 95 %
 * within 2.2 s (the body and a mattress bounce for ~1 s). Checked in the exploratory analysis against 2 and 3 s (2 s
 * cost 4 points of sensitivity, 3 s 3 points of specificity); not tuned by the evaluation.
 */
const STILL_ONSET_MAX_MS = 2500;
/** Stillness is judged on 0.5-s windows (10 bins): long enough for a standard deviation, short enough to catch a brief lie. */
const STILL_WINDOW_BINS = 10;
/** A fall needs at least 0.5 s of stillness (one full window). */
const STILL_MIN_MS = 500;
/** Stillness counts in the score up to 3 s: WEDA-FALL participants mostly lay still for 2–4 s before getting up, and the decision must come within a few seconds. */
const STILL_CAP_MS = 3000;
/**
 * A score of 1 (confidence 0.73) decides at once; a score between 0 and 1 waits for the
 * stillness to reach its 3-s cap (or to end). A latency/confidence trade-off, with no effect on
 * which falls are decided (see consider()): strong falls are reported as soon as the wrist has
 * been still for 0.5 s, marginal ones with 3 s of stillness as evidence.
 */
const EARLY_SCORE = 1;
/** A burst starting more than 1 s after the previous one ended breaks the signal (FallState contract). */
const GAP_MS = 1000;

/**
 * "I'm OK" movement: a 1-s block is walking-like when sd(|a|) ≥ 0.05 g and |a| crosses its
 * previous block's mean (±0.05 g hysteresis) 1–4 times — steps at 1–4 Hz. On WEDA-FALL walking
 * (D01) 97 % of the young and 89 % of the older participants' seconds qualify (sitting down,
 * D04: 34–41 %). Four such seconds among the last six downgrade the fall. Values chosen on that
 * analysis, not by the held-out evaluation (which scores falls, not recoveries).
 */
const WALK_BLOCK_BINS = 20;
const WALK_MIN_SD_G = 0.05;
const WALK_HYSTERESIS_G = 0.05;
const WALK_MIN_CROSSINGS = 1;
const WALK_MAX_CROSSINGS = 4;
const WALK_WINDOW_BLOCKS = 6;
const WALK_NEEDED_BLOCKS = 4;

export interface FallSettings {
  /** "I'm OK" window: normal movement within this time after the fall decision downgrades it. Default 30_000. */
  imOkWindowMs: number;
}

/** 30 s: long enough to get up and walk a few steps, short enough that caregivers are not kept waiting for the downgrade. */
export const DEFAULT_FALL_SETTINGS: FallSettings = { imOkWindowMs: 30_000 };

/**
 * The fitted part of the detector: stillness threshold and score weights. Frozen values in
 * FALL_MODEL; the evaluation passes its own per fold through the `*With` functions.
 */
export interface FallModel {
  /**
   * A 0.5-s window (and a run of windows) is still when the acceleration vector's standard
   * deviation (root of the summed per-axis variances, g) is below this: both the magnitude and
   * the orientation stay put (van Hees 2015 judges stillness by the wrist angle).
   */
  stillSdG: number;
  /** Score = wPeak·log2(peak g) + wPreActivity·(mean ||a|−1| before, g) + wOrientation·(angle/90°) + wStillness·(still s, ≤ 3) + bias. */
  wPeak: number;
  wPreActivity: number;
  wOrientation: number;
  wStillness: number;
  bias: number;
}

/**
 * Frozen from `npm run eval:falls`: logistic regression (class-balanced, L2 1e-2 on standardized
 * features) fitted on all WEDA-FALL participants with falls (U01–U14); stillSdG chosen among
 * 0.06, 0.1 and 0.14 g (and a score offset among −1…+1, which stayed 0) by the Youden index on
 * the training participants — every leave-one-participant-out fold chose the same threshold,
 * the same offset but one (+0.5), and weights within 13 % of these. The grid stops at 0.14 g:
 * beyond it the wrist is moving, not lying still (WEDA-FALL walking over 0.5 s: median 0.19 g
 * for the young, 0.15 g for the older participants).
 * Units: per doubling of the peak (g), per g of pre-impact activity, per 90° of posture change,
 * per second of stillness. In words, after calm activity (0.05 g) and 3 s of stillness a fall
 * needs a 2.0-g impact with a 90° change of posture, 2.8 g with 45°, 3.8 g with none.
 */
export const FALL_MODEL: FallModel = {
  stillSdG: 0.14,
  wPeak: 3.44,
  wPreActivity: -5.39,
  wOrientation: 3.14,
  wStillness: 1.01,
  bias: -9.45,
};

export type FallDecision =
  | { kind: 'fall'; impactTs: number; decidedTs: number; peakG: number; confidence: number; stillnessMs: number; orientationChangeDeg: number }
  | { kind: 'recovered'; impactTs: number; at: number }; // normal movement (e.g. walking) within imOkWindowMs after a fall decision

/** Evidence of one candidate when it was settled (evaluation only: see FallRunOptions.trace). */
export interface FallCandidateTrace {
  impactTs: number;
  peakG: number;
  preActivityG: number;
  orientationChangeDeg: number;
  stillnessMs: number;
  score: number;
}

export interface FallRunOptions {
  model: FallModel;
  /**
   * Evaluation only: when set, candidates are not decided early but followed until their
   * stillness breaks or reaches its cap, and their full evidence is reported here (a fall is
   * still decided then if the score allows).
   */
  trace?: (c: FallCandidateTrace) => void;
}

/** A candidate impact being judged. */
interface Candidate {
  /** Bin index (in the current segment) and event time of the peak. */
  k: number;
  ts: number;
  peak: number;
  /** Last bin index that still belongs to this impact's cluster. */
  clusterEndK: number;
  preAct: number;
  /** Mean gravity direction before the fall (not normalized). */
  px: number;
  py: number;
  pz: number;
  /** First bin index a stillness window may start at. */
  searchFromK: number;
  /** Best score seen during the still run (−1000 before any). */
  best: number;
  /** Still run: first bin, bins, sums of |a|², x, y, z; runN = 0 while none. */
  runK: number;
  runN: number;
  rmm: number;
  rx: number;
  ry: number;
  rz: number;
}

/** JSON-serializable (plain objects, arrays of numbers; it is snapshotted with the checkpoint as JSON), small: keep only the last few seconds of signal, at most ~2 KB serialized in steady state. */
export interface FallState {
  v: 1;
  /** Origin of the current continuous segment's bin grid (ms); null before any signal. */
  origin: number | null;
  /** End (ms) of the last accepted burst: a sample before it is an overlap. */
  endTs: number | null;
  /** Open bin: index and sums [k, x, y, z, n]. */
  bin: [number, number, number, number, number];
  /** First bin index of the segment with signal, and the last bin closed. */
  firstK: number;
  lastK: number;
  /** History ring: HISTORY_BLOCKS blocks × [mean dev, mean x, mean y, mean z, bins]; slot = block index mod HISTORY_BLOCKS. */
  blocks: number[];
  /** Block index of the newest closed block (−1: none). */
  headBlock: number;
  /** Open block sums [dev, x, y, z, n]. */
  blk: [number, number, number, number, number];
  /** Last STILL_WINDOW_BINS bins [x, y, z] (ring, slot = k mod STILL_WINDOW_BINS). */
  win: number[];
  cand: Candidate | null;
  /** "I'm OK" watch after a fall decision; null when none. */
  imOk: {
    impactTs: number;
    until: number;
    /** Open 1-s block: bins, Σ|a|, Σ|a|², crossings, hysteresis side (−1/0/1), reference mean. */
    n: number;
    sm: number;
    smm: number;
    cross: number;
    side: number;
    ref: number;
    /** Walking-like flags of the last blocks, newest in bit 0. */
    bits: number;
  } | null;
}

export function newFallState(): FallState {
  return {
    v: 1,
    origin: null,
    endTs: null,
    bin: [0, 0, 0, 0, 0],
    firstK: 0,
    lastK: -1,
    blocks: new Array<number>(HISTORY_BLOCKS * 5).fill(0),
    headBlock: -1,
    blk: [0, 0, 0, 0, 0],
    win: new Array<number>(STILL_WINDOW_BINS * 3).fill(0),
    cand: null,
    imOk: null,
  };
}

const DEFAULT_OPTIONS: FallRunOptions = { model: FALL_MODEL };

/** Feeds one burst whose first sample is at event time startTs (ms); samples evenly spaced at 1000/hz ms. A burst starting more than ~1 s after the previous one ended is a discontinuity (settle what is pending first). Returns decisions made. Bursts with startTs before the previous burst's end are overlapping/late: ignore the overlapping part. */
export function feedFall(st: FallState, acc: { hz: number; samples: readonly (readonly number[])[] }, startTs: number, settings: FallSettings): FallDecision[] {
  return feedFallWith(st, acc, startTs, settings, DEFAULT_OPTIONS);
}

/** Event time advanced to `ts` with no more acceleration (a reading without acc, or the stream went silent; ts = Infinity at end of a file): decide pending candidates on what arrived — a fall followed by silence must still be decided, not wait forever. */
export function settleFall(st: FallState, ts: number, settings: FallSettings): FallDecision[] {
  return settleFallWith(st, ts, settings, DEFAULT_OPTIONS);
}

/** feedFall with an explicit model (evaluation). */
export function feedFallWith(
  st: FallState,
  acc: { hz: number; samples: readonly (readonly number[])[] },
  startTs: number,
  settings: FallSettings,
  opts: FallRunOptions,
): FallDecision[] {
  const out: FallDecision[] = [];
  const samples = acc.samples;
  const hz = acc.hz;
  if (!(hz > 0) || !Number.isFinite(startTs) || samples.length === 0) return out;
  const period = 1000 / hz;

  if (st.endTs !== null && startTs > st.endTs + GAP_MS) {
    // Discontinuity: decide on what arrived, then start a new segment (no history across the gap).
    settleAt(st, settings, opts, out);
    resetSegment(st);
  }
  // Overlap: skip samples before the previous end (half a period of tolerance for clock jitter).
  let i0 = 0;
  if (st.endTs !== null && startTs < st.endTs - period / 2) {
    i0 = Math.ceil((st.endTs - period / 2 - startTs) / period);
    if (i0 >= samples.length) return out;
  }
  if (st.origin === null) {
    // Centre the 20-Hz grid on the samples so a 20-Hz stream puts exactly one sample in each bin.
    st.origin = startTs + i0 * period - BIN_MS / 2;
    st.bin[0] = 0;
    st.firstK = 0;
    st.lastK = -1;
  }
  const origin = st.origin;
  const bin = st.bin;
  for (let i = i0; i < samples.length; i++) {
    const s = samples[i];
    const k = Math.floor((startTs + i * period - origin) / BIN_MS);
    if (k !== bin[0]) {
      // A bin already closed (settled mid-bin, then the signal went on): too late for it.
      if (k < bin[0] || k <= st.lastK) continue;
      if (bin[4] > 0) closeBin(st, settings, opts, out);
      bin[0] = k;
      bin[1] = bin[2] = bin[3] = bin[4] = 0;
    }
    bin[1] += s[0];
    bin[2] += s[1];
    bin[3] += s[2];
    bin[4]++;
  }
  const end = startTs + samples.length * period;
  if (st.endTs === null || end > st.endTs) st.endTs = end;
  return out;
}

/** settleFall with an explicit model (evaluation). */
export function settleFallWith(st: FallState, ts: number, settings: FallSettings, opts: FallRunOptions): FallDecision[] {
  const out: FallDecision[] = [];
  settleAt(st, settings, opts, out);
  // The I'm-OK watch ends with its window; at the end of a file (Infinity) it ends now.
  if (st.imOk && ts >= st.imOk.until) st.imOk = null;
  return out;
}

function resetSegment(st: FallState): void {
  st.origin = null;
  st.bin[0] = st.bin[1] = st.bin[2] = st.bin[3] = st.bin[4] = 0;
  st.firstK = 0;
  st.lastK = -1;
  st.blocks.fill(0);
  st.headBlock = -1;
  st.blk[0] = st.blk[1] = st.blk[2] = st.blk[3] = st.blk[4] = 0;
  st.win.fill(0);
  if (st.imOk) {
    st.imOk.n = st.imOk.sm = st.imOk.smm = st.imOk.cross = st.imOk.side = 0;
  }
}

function settleAt(st: FallState, settings: FallSettings, opts: FallRunOptions, out: FallDecision[]): void {
  if (st.origin !== null && st.bin[4] > 0) {
    closeBin(st, settings, opts, out);
    st.bin[1] = st.bin[2] = st.bin[3] = st.bin[4] = 0;
    st.bin[0]++;
  }
  const c = st.cand;
  if (c === null) return;
  st.cand = null;
  // decidedTs is the event time of the last signal the decision rests on (as in closeBin), not
  // `ts`: the caller knows when it settled.
  finish(st, c, (st.origin as number) + (st.lastK + 1) * BIN_MS, settings, opts, out);
}

/** Score of a candidate with its still run so far; NaN-free. */
function evidence(c: Candidate, model: FallModel): { score: number; angle: number; stillMs: number } {
  const stillMs = c.runN * BIN_MS;
  const angle = angleDeg(c.px, c.py, c.pz, c.rx, c.ry, c.rz);
  const score =
    model.wPeak * Math.log2(c.peak) +
    model.wPreActivity * c.preAct +
    model.wOrientation * (angle / 90) +
    model.wStillness * (Math.min(stillMs, STILL_CAP_MS) / 1000) +
    model.bias;
  return { score, angle, stillMs };
}

/** Final judgement of a candidate that will see no more stillness. */
function finish(st: FallState, c: Candidate, at: number, settings: FallSettings, opts: FallRunOptions, out: FallDecision[]): void {
  if (c.runN * BIN_MS < STILL_MIN_MS) {
    opts.trace?.({ impactTs: c.ts, peakG: c.peak, preActivityG: c.preAct, orientationChangeDeg: 0, stillnessMs: 0, score: -Infinity });
    return;
  }
  const e = evidence(c, opts.model);
  opts.trace?.({ impactTs: c.ts, peakG: c.peak, preActivityG: c.preAct, orientationChangeDeg: e.angle, stillnessMs: e.stillMs, score: e.score });
  // The best score of the run decides (the posture estimate moves a little as the run grows).
  if (e.score >= c.best) c.best = e.score;
  if (c.best >= 0) decide(st, c, at, { score: c.best, angle: e.angle, stillMs: e.stillMs }, settings, out);
}

/**
 * Scores a candidate during its still run: a fall is decided at once when the score reaches
 * EARLY_SCORE; between 0 and that it waits for more stillness (finish decides with the best
 * score). Either way the decided set is that of "score ≥ 0 at any point of the run"; only the
 * latency and the confidence depend on EARLY_SCORE.
 */
function consider(st: FallState, c: Candidate, binEnd: number, settings: FallSettings, opts: FallRunOptions, out: FallDecision[]): void {
  const e = evidence(c, opts.model);
  if (e.score > c.best) c.best = e.score;
  if (!opts.trace && e.score >= EARLY_SCORE) {
    st.cand = null;
    decide(st, c, binEnd, e, settings, out);
  }
}

function decide(st: FallState, c: Candidate, at: number, e: { score: number; angle: number; stillMs: number }, settings: FallSettings, out: FallDecision[]): void {
  out.push({
    kind: 'fall',
    impactTs: Math.round(c.ts),
    decidedTs: Math.round(at),
    peakG: round(c.peak, 2),
    confidence: round(1 / (1 + Math.exp(-e.score)), 2),
    stillnessMs: e.stillMs,
    orientationChangeDeg: Math.round(e.angle),
  });
  st.imOk = { impactTs: Math.round(c.ts), until: at + settings.imOkWindowMs, n: 0, sm: 0, smm: 0, cross: 0, side: 0, ref: 1, bits: 0 };
}

/** Processes the open bin (its sums are in st.bin). */
function closeBin(st: FallState, settings: FallSettings, opts: FallRunOptions, out: FallDecision[]): void {
  const bin = st.bin;
  const k = bin[0];
  const n = bin[4];
  const x = bin[1] / n;
  const y = bin[2] / n;
  const z = bin[3] / n;
  const m = Math.sqrt(x * x + y * y + z * z);
  const origin = st.origin as number;
  const binEnd = origin + (k + 1) * BIN_MS;
  if (st.lastK < 0) st.firstK = k;
  st.lastK = k;

  // History: 0.25-s blocks of mean |m − 1| and mean vector.
  const b = Math.floor(k / BLOCK_BINS);
  if (b > st.headBlock + 1) {
    // The open block ended without its last bins (short gap): close it, leave skipped blocks empty.
    if (st.blk[4] > 0) pushBlock(st, st.headBlock + 1);
    for (let e = st.headBlock + 1; e < b && e <= st.headBlock + HISTORY_BLOCKS; e++) {
      const o = (e % HISTORY_BLOCKS) * 5;
      st.blocks[o] = st.blocks[o + 1] = st.blocks[o + 2] = st.blocks[o + 3] = st.blocks[o + 4] = 0;
    }
    st.headBlock = b - 1;
  }
  const blk = st.blk;
  blk[0] += Math.abs(m - 1);
  blk[1] += x;
  blk[2] += y;
  blk[3] += z;
  blk[4]++;
  if ((k + 1) % BLOCK_BINS === 0) pushBlock(st, b);

  // Last 0.5 s of bins for the stillness window.
  const wo = (k % STILL_WINDOW_BINS) * 3;
  st.win[wo] = round(x, 4);
  st.win[wo + 1] = round(y, 4);
  st.win[wo + 2] = round(z, 4);

  if (st.imOk) watchImOk(st, m, binEnd, out);

  const c = st.cand;
  if (c !== null) {
    if (k <= c.clusterEndK) {
      if (m > c.peak) {
        // A higher peak of the same impact: judge from there.
        c.k = k;
        c.ts = origin + k * BIN_MS + BIN_MS / 2;
        c.peak = m;
        c.runN = 0;
        c.best = -1000;
        c.searchFromK = k + STILL_SEARCH_FROM_MS / BIN_MS;
        if (!preFeatures(st, c)) st.cand = null;
        return;
      }
    }
    if (c.runN > 0) {
      // Extend the still run, or end it.
      const rmm = c.rmm + m * m;
      const rn = c.runN + 1;
      const rx = c.rx + x, ry = c.ry + y, rz = c.rz + z;
      if (rmm / rn - (rx * rx + ry * ry + rz * rz) / (rn * rn) >= opts.model.stillSdG * opts.model.stillSdG) {
        st.cand = null;
        finish(st, c, binEnd, settings, opts, out);
      } else {
        c.rmm = rmm;
        c.runN = rn;
        c.rx = rx;
        c.ry = ry;
        c.rz = rz;
        if (c.runN * BIN_MS >= STILL_CAP_MS) {
          st.cand = null;
          finish(st, c, binEnd, settings, opts, out);
        } else if (c.runN * BIN_MS >= STILL_MIN_MS) {
          consider(st, c, binEnd, settings, opts, out);
        }
      }
    } else if (k > c.clusterEndK && m > c.peak) {
      // A stronger impact before any stillness: judge that one instead (a weaker one is the
      // same fall's aftermath, or more of the same activity: it only delays the stillness).
      st.cand = null;
      finish(st, c, binEnd, settings, opts, out);
    } else {
      const startK = k - STILL_WINDOW_BINS + 1;
      if (startK >= c.searchFromK && startK >= st.firstK) {
        if (windowStill(st, opts.model.stillSdG)) {
          c.runK = startK;
          c.runN = STILL_WINDOW_BINS;
          let smm = 0, sx = 0, sy = 0, sz = 0;
          for (let j = 0; j < STILL_WINDOW_BINS * 3; j += 3) {
            const wx = st.win[j], wy = st.win[j + 1], wz = st.win[j + 2];
            smm += wx * wx + wy * wy + wz * wz;
            sx += wx;
            sy += wy;
            sz += wz;
          }
          c.rmm = smm;
          c.rx = sx;
          c.ry = sy;
          c.rz = sz;
          consider(st, c, binEnd, settings, opts, out);
          return;
        }
        if ((startK - c.k) * BIN_MS > STILL_ONSET_MAX_MS) {
          st.cand = null;
          finish(st, c, binEnd, settings, opts, out);
        }
      }
    }
  }
  if (st.cand === null && m >= IMPACT_MIN_G) {
    if ((k - st.firstK) * BIN_MS < MIN_HISTORY_MS) return;
    const nc: Candidate = {
      k,
      ts: origin + k * BIN_MS + BIN_MS / 2,
      peak: m,
      clusterEndK: k + CLUSTER_MS / BIN_MS - 1,
      preAct: 0,
      px: 0,
      py: 0,
      pz: 0,
      searchFromK: k + STILL_SEARCH_FROM_MS / BIN_MS,
      best: -1000,
      runK: 0,
      runN: 0,
      rmm: 0,
      rx: 0,
      ry: 0,
      rz: 0,
    };
    if (preFeatures(st, nc)) st.cand = nc;
  }
}

function pushBlock(st: FallState, b: number): void {
  const blk = st.blk;
  const n = blk[4];
  const o = (b % HISTORY_BLOCKS) * 5;
  if (n > 0) {
    st.blocks[o] = round(blk[0] / n, 4);
    st.blocks[o + 1] = round(blk[1] / n, 4);
    st.blocks[o + 2] = round(blk[2] / n, 4);
    st.blocks[o + 3] = round(blk[3] / n, 4);
  } else {
    st.blocks[o] = st.blocks[o + 1] = st.blocks[o + 2] = st.blocks[o + 3] = 0;
  }
  st.blocks[o + 4] = n;
  st.headBlock = b;
  blk[0] = blk[1] = blk[2] = blk[3] = blk[4] = 0;
}

/** Pre-impact activity and posture from the history blocks; false when there is no posture to compare. */
function preFeatures(st: FallState, c: Candidate): boolean {
  const binsPerBlockMs = BLOCK_BINS * BIN_MS;
  let devSum = 0, devN = 0, px = 0, py = 0, pz = 0, oriN = 0;
  const first = Math.max(st.headBlock - HISTORY_BLOCKS + 1, 0);
  for (let b = st.headBlock; b >= first; b--) {
    const o = (b % HISTORY_BLOCKS) * 5;
    const n = st.blocks[o + 4];
    if (n === 0) continue;
    const blockStartK = b * BLOCK_BINS;
    const blockEndK = blockStartK + BLOCK_BINS; // exclusive
    // Offsets (ms) of the block's start and end before the impact bin.
    const startBefore = (c.k - blockStartK) * BIN_MS;
    const endBefore = (c.k - blockEndK) * BIN_MS;
    if (endBefore >= PRE_ACT_TO_MS && startBefore <= PRE_ACT_FROM_MS) {
      devSum += st.blocks[o] * n;
      devN += n;
    }
    if (endBefore >= PRE_ORI_TO_MS && startBefore <= PRE_ORI_FROM_MS) {
      px += st.blocks[o + 1] * n;
      py += st.blocks[o + 2] * n;
      pz += st.blocks[o + 3] * n;
      oriN += n;
    }
    if (startBefore > PRE_ACT_FROM_MS + binsPerBlockMs) break;
  }
  if (oriN === 0 || px * px + py * py + pz * pz === 0) return false;
  c.preAct = devN > 0 ? devSum / devN : 0;
  c.px = px;
  c.py = py;
  c.pz = pz;
  return true;
}

/** Whether the last STILL_WINDOW_BINS bins have a vector sd below the threshold. */
function windowStill(st: FallState, sdG: number): boolean {
  let smm = 0, sx = 0, sy = 0, sz = 0;
  const w = st.win;
  for (let j = 0; j < STILL_WINDOW_BINS * 3; j += 3) {
    smm += w[j] * w[j] + w[j + 1] * w[j + 1] + w[j + 2] * w[j + 2];
    sx += w[j];
    sy += w[j + 1];
    sz += w[j + 2];
  }
  const n = STILL_WINDOW_BINS;
  return smm / n - (sx * sx + sy * sy + sz * sz) / (n * n) < sdG * sdG;
}

/** Follows movement after a fall decision; emits 'recovered' on sustained walking-like movement. */
function watchImOk(st: FallState, m: number, binEnd: number, out: FallDecision[]): void {
  const w = st.imOk!;
  if (binEnd > w.until) {
    st.imOk = null;
    return;
  }
  w.n++;
  w.sm += m;
  w.smm += m * m;
  if (m > w.ref + WALK_HYSTERESIS_G) {
    if (w.side < 0) w.cross++;
    w.side = 1;
  } else if (m < w.ref - WALK_HYSTERESIS_G) {
    w.side = -1;
  }
  if (w.n < WALK_BLOCK_BINS) return;
  const mean = w.sm / w.n;
  const sd = Math.sqrt(Math.max(0, w.smm / w.n - mean * mean));
  const walking = sd >= WALK_MIN_SD_G && w.cross >= WALK_MIN_CROSSINGS && w.cross <= WALK_MAX_CROSSINGS;
  w.bits = ((w.bits << 1) | (walking ? 1 : 0)) & ((1 << WALK_WINDOW_BLOCKS) - 1);
  w.ref = round(mean, 4);
  w.n = w.sm = w.smm = w.cross = 0;
  if (popcount(w.bits) >= WALK_NEEDED_BLOCKS) {
    out.push({ kind: 'recovered', impactTs: w.impactTs, at: Math.round(binEnd) });
    st.imOk = null;
  }
}

function popcount(v: number): number {
  let c = 0;
  for (let x = v; x; x &= x - 1) c++;
  return c;
}

function angleDeg(ax: number, ay: number, az: number, bx: number, by: number, bz: number): number {
  const na = Math.sqrt(ax * ax + ay * ay + az * az);
  const nb = Math.sqrt(bx * bx + by * by + bz * bz);
  if (na === 0 || nb === 0) return 0;
  const cos = (ax * bx + ay * by + az * bz) / (na * nb);
  return (Math.acos(Math.max(-1, Math.min(1, cos))) * 180) / Math.PI;
}

function round(v: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(v * f) / f;
}
