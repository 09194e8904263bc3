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
} as const;

/** Samples are sent rounded to 3 decimals (1 mg): finer than a wrist sensor resolves. */
const r3 = (v: number): number => Math.round(v * 1000) / 1000;

const sample = (x: number, y: number, z: number): Vec3 => [r3(x), r3(y), r3(z)];

const noisy = (rng: Random, g: Vec3, sd: number): Vec3 =>
  sample(g[0] + rng.normal(0, sd), g[1] + rng.normal(0, sd), g[2] + rng.normal(0, sd));

export function still(rng: Random, n: number, g: Vec3, noiseSd: number): Vec3[] {
  const out: Vec3[] = new Array(n);
  for (let i = 0; i < n; i++) out[i] = noisy(rng, g, noiseSd);
  return out;
}

/** Seated: forearm resting, small tremor, and now and then a hand gesture of about a second. */
export function seated(rng: Random, n: number, hz: number, g: Vec3): Vec3[] {
  const out = still(rng, n, g, 0.015);
  if (!rng.chance(0.3)) return out;
  const len = Math.min(n, Math.max(1, Math.round(hz)));
  const start = rng.int(0, n - len);
  const amp = rng.uniform(0.15, 0.35);
  for (let i = 0; i < len; i++) {
    const hann = Math.sin((Math.PI * (i + 0.5)) / len) ** 2;
    const s = amp * hann * Math.sin((2 * Math.PI * 2 * i) / hz);
    const [x, y, z] = out[start + i];
    out[start + i] = sample(x, y + s, z + 0.5 * s);
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
    out[i] = sample(g[0] + b + rng.normal(0, 0.04), g[1] + s + rng.normal(0, 0.04), g[2] + 0.3 * s + rng.normal(0, 0.04));
  }
  return out;
}

/** Turning over in bed: a couple of seconds of movement from one lying posture to another. */
export function turnOver(rng: Random, n: number, hz: number, from: Vec3, to: Vec3): Vec3[] {
  const out = still(rng, n, to, 0.004);
  const len = Math.min(n, Math.max(1, Math.round(2 * hz)));
  const start = rng.int(0, n - len);
  for (let i = 0; i < start; i++) out[i] = noisy(rng, from, 0.004);
  for (let i = 0; i < len; i++) {
    const k = (i + 1) / len;
    out[start + i] = noisy(rng, unit([from[0] * (1 - k) + to[0] * k, from[1] * (1 - k) + to[1] * k, from[2] * (1 - k) + to[2] * k]), 0.08);
  }
  return out;
}

/**
 * A fall inside one window: upright, ~0.3 s of free fall (|a| < 0.45 g), one impact sample of
 * 2.8–3.2 g, ~0.2 s of rebound, then lying still in the `after` posture for the rest.
 */
export function fall(rng: Random, n: number, hz: number, after: Vec3): Vec3[] {
  const freeFall = Math.max(1, Math.round(0.3 * hz));
  const rebound = Math.max(1, Math.round(0.2 * hz));
  const start = Math.max(0, Math.min(Math.floor(n * 0.3), n - freeFall - 1));
  const g = POSTURES.armHanging;
  const out: Vec3[] = new Array(n);
  let i = 0;
  for (; i < start; i++) out[i] = noisy(rng, g, 0.05);
  for (const end = Math.min(n, start + freeFall); i < end; i++) {
    let v: Vec3 = [0.15 * g[0] + rng.normal(0, 0.03), 0.15 * g[1] + rng.normal(0, 0.03), 0.15 * g[2] + rng.normal(0, 0.03)];
    const m = Math.hypot(...v);
    if (m > 0.45) v = [(v[0] * 0.4) / m, (v[1] * 0.4) / m, (v[2] * 0.4) / m];
    out[i] = sample(...v);
  }
  if (i < n) {
    const d = unit([after[0] - g[0], after[1] - g[1], after[2] - g[2]]);
    const peak = rng.uniform(2.8, 3.2);
    out[i++] = sample(d[0] * peak, d[1] * peak, d[2] * peak);
  }
  for (let k = 0; i < n && k < rebound; k++, i++) {
    const m = 1.6 - (0.5 * k) / rebound;
    out[i] = noisy(rng, [after[0] * m, after[1] * m, after[2] * m], 0.1);
  }
  for (; i < n; i++) out[i] = noisy(rng, after, 0.006);
  return out;
}
