/**
 * Synthetic wrist accelerometer bursts, in g, for one reading's window. Shapes follow what
 * threshold fall detectors and actigraphy look for (DESIGN §4): a still wrist reads gravity
 * (|a| ≈ 1 g) along its orientation plus sensor noise; walking adds a bounce at the step
 * frequency and an arm swing at half of it; a fall is a free-fall dip (|a| well below 1 g),
 * an impact of about 3 g, then stillness in a new orientation.
 */
import type { Random } from './prng.js';

export type Vec3 = [number, number, number];

const unit = (v: Vec3): Vec3 => {
  const n = Math.hypot(v[0], v[1], v[2]);
  return [v[0] / n, v[1] / n, v[2] / n];
};

/** Gravity as the band sees it, x along the forearm towards the hand, z out of the face. */
export const POSTURES = {
  charger: unit([0.02, 0.01, 1]),
  armHanging: unit([-0.95, 0.15, 0.25]),
  forearmOnTable: unit([0.1, 0.15, 0.98]),
  /** Sleeping positions a resident turns between during the night. */
  lying: [unit([0.2, -0.1, 0.97]), unit([0.1, -0.97, 0.2]), unit([-0.2, 0.95, 0.2]), unit([0.1, 0.2, -0.97])],
  /** Wrist after a fall: face down, far (> 100°) from an arm hanging while standing. */
  fallen: unit([0.15, -0.25, -0.95]),
  /** Band taken off and left on a table, lying on its side (strap closed). */
  table: unit([0.05, 0.97, 0.22]),
  /**
   * Ways a seated resident rests the forearm (on a table, in the lap, on an armrest): each at
   * least 15° from the others, so a shift between them is a real change of wrist angle (the
   * 5° of van Hees 2015, DESIGN §4), not just noise.
   */
  seated: [unit([0.1, 0.15, 0.98]), unit([0.45, -0.3, 0.84]), unit([-0.25, 0.5, 0.83])],
} as const;

/** Samples are sent rounded to 3 decimals (1 mg): finer than a wrist sensor resolves. */
const r3 = (v: number): number => Math.round(v * 1000) / 1000;

const sample = (x: number, y: number, z: number): Vec3 => [r3(x), r3(y), r3(z)];

const noisy = (rng: Random, g: Vec3, sd: number): Vec3 =>
  sample(g[0] + rng.normal(0, sd), g[1] + rng.normal(0, sd), g[2] + rng.normal(0, sd));

/**
 * Inverse of the standard normal CDF (Acklam's rational approximation, relative error
 * < 1.2e-9), for the noise table below.
 */
function normalQuantile(p: number): number {
  const a = [-39.69683028665376, 220.9460984245205, -275.9285104469687, 138.357751867269, -30.66479806614716, 2.506628277459239];
  const b = [-54.47609879822406, 161.5858368580409, -155.6989798598866, 66.80131188771972, -13.28068155288572];
  const c = [-0.007784894002430293, -0.3223964580411365, -2.400758277161838, -2.549732539343734, 4.374664141464968, 2.938163982698783];
  const d = [0.007784695709041462, 0.3224671290700398, 2.445134137142996, 3.754408661907416];
  const tail = (q: number) =>
    (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) / ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
  if (p < 0.02425) return tail(Math.sqrt(-2 * Math.log(p)));
  if (p > 1 - 0.02425) return -tail(Math.sqrt(-2 * Math.log(1 - p)));
  const q = p - 0.5;
  const r = q * q;
  return ((((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q) / (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1);
}

/**
 * 1024 evenly spaced quantiles of N(0, 1). Sensor noise for a whole sample comes from one
 * 32-bit draw (three 10-bit indices): three times faster than Box–Muller, which matters when a
 * test simulates weeks of 20 Hz readings, and indistinguishable as noise (|z| ≤ 3.3).
 */
const NOISE = Float64Array.from({ length: 1024 }, (_, i) => normalQuantile((i + 0.5) / 1024));

/** g plus independent N(0, sd) noise on each axis, from the table. */
function fastNoisy(rng: Random, g: Vec3, sd: number): Vec3 {
  const u = rng.uint32();
  return sample(g[0] + sd * NOISE[u & 1023], g[1] + sd * NOISE[(u >>> 10) & 1023], g[2] + sd * NOISE[(u >>> 20) & 1023]);
}

export function still(rng: Random, n: number, g: Vec3, noiseSd: number): Vec3[] {
  const out: Vec3[] = new Array(n);
  for (let i = 0; i < n; i++) out[i] = fastNoisy(rng, g, noiseSd);
  return out;
}

/** A seated hand gesture every ~17 s: a 30 % chance in each 5 s of signal. */
const GESTURE_CHANCE = 0.3;
const GESTURE_SPAN_S = 5;

/**
 * Seated: forearm resting, small tremor, and now and then a hand gesture of about a second
 * (a 30 % chance per 5 s of signal, so a longer burst gets proportionally more of them).
 */
export function seated(rng: Random, n: number, hz: number, g: Vec3): Vec3[] {
  const out = still(rng, n, g, 0.015);
  const spans = Math.max(1, Math.round(n / (GESTURE_SPAN_S * hz)));
  for (let k = 0; k < spans; k++) {
    if (!rng.chance(GESTURE_CHANCE)) continue;
    const from = Math.floor((k * n) / spans);
    const to = Math.floor(((k + 1) * n) / spans);
    const len = Math.min(to - from, Math.max(1, Math.round(hz)));
    const start = from + rng.int(0, to - from - len);
    const amp = rng.uniform(0.15, 0.35);
    for (let i = 0; i < len; i++) {
      const hann = Math.sin((Math.PI * (i + 0.5)) / len) ** 2;
      const s = amp * hann * Math.sin((2 * Math.PI * 2 * i) / hz);
      const [x, y, z] = out[start + i];
      out[start + i] = sample(x, y + s, z + 0.5 * s);
    }
  }
  return out;
}

/** Walking at `cadence` steps/s: vertical bounce at the step frequency, arm swing at half. */
export function walking(rng: Random, n: number, hz: number, cadence: number): Vec3[] {
  const g = POSTURES.armHanging;
  const phase = rng.uniform(0, 2 * Math.PI);
  const bounce = rng.uniform(0.18, 0.28);
  const swing = rng.uniform(0.15, 0.3);
  const out: Vec3[] = new Array(n);
  for (let i = 0; i < n; i++) {
    const t = i / hz;
    const b = bounce * Math.sin(2 * Math.PI * cadence * t + phase);
    const s = swing * Math.sin(Math.PI * cadence * t + phase);
    out[i] = fastNoisy(rng, [g[0] + b, g[1] + s, g[2] + 0.3 * s], 0.04);
  }
  return out;
}

/**
 * A change of posture: a couple of seconds of movement from one orientation to another
 * (turning over in bed, shifting in a chair).
 */
export function turnOver(rng: Random, n: number, hz: number, from: Vec3, to: Vec3): Vec3[] {
  const out = still(rng, n, to, 0.004);
  const len = Math.min(n, Math.max(1, Math.round(2 * hz)));
  const start = rng.int(0, n - len);
  for (let i = 0; i < start; i++) out[i] = fastNoisy(rng, from, 0.004);
  for (let i = 0; i < len; i++) {
    const k = (i + 1) / len;
    out[start + i] = fastNoisy(rng, unit([from[0] * (1 - k) + to[0] * k, from[1] * (1 - k) + to[1] * k, from[2] * (1 - k) + to[2] * k]), 0.08);
  }
  return out;
}

/**
 * A fall inside one window: upright, ~0.4 s of free fall (|a| ≈ 0.3 g) while the wrist turns
 * towards the floor, an impact of 3.0–3.3 g lasting ~150 ms (a half-sine: body impacts last
 * 0.1–0.2 s, so every rate from 20 to 100 Hz sees it over several samples), ~0.3 s of damped
 * rebound, then lying still in the `after` posture for the rest.
 */
export function fall(rng: Random, n: number, hz: number, after: Vec3): Vec3[] {
  const freeFall = Math.max(1, Math.round(0.4 * hz));
  const impact = Math.max(1, Math.round(0.15 * hz));
  const rebound = Math.max(1, Math.round(0.3 * hz));
  const start = Math.max(0, Math.min(Math.floor(n * 0.3), n - freeFall - impact - 1));
  const g = POSTURES.armHanging;
  const out: Vec3[] = new Array(n);
  let i = 0;
  for (; i < start; i++) out[i] = noisy(rng, g, 0.03);
  for (let k = 0; i < n && k < freeFall; k++, i++) {
    // Free fall: what is left of gravity shrinks to ~0.3 g and turns from `g` towards `after`.
    const f = (k + 1) / freeFall;
    const d = unit([g[0] * (1 - f) + after[0] * f, g[1] * (1 - f) + after[1] * f, g[2] * (1 - f) + after[2] * f]);
    out[i] = noisy(rng, [0.3 * d[0], 0.3 * d[1], 0.3 * d[2]], 0.03);
  }
  const dir = unit([after[0] - g[0], after[1] - g[1], after[2] - g[2]]);
  const peak = rng.uniform(3.0, 3.3);
  for (let k = 0; i < n && k < impact; k++, i++) {
    const m = 0.3 + (peak - 0.3) * Math.sin((Math.PI * (k + 0.5)) / impact);
    out[i] = sample(dir[0] * m, dir[1] * m, dir[2] * m);
  }
  for (let k = 0; i < n && k < rebound; k++, i++) {
    const t = k / hz;
    const m = 1 + 0.5 * Math.exp(-t / 0.1) * Math.cos(2 * Math.PI * 6 * t);
    out[i] = noisy(rng, [after[0] * m, after[1] * m, after[2] * m], 0.05);
  }
  for (; i < n; i++) out[i] = noisy(rng, after, 0.006);
  return out;
}
