/** Crafted readings for detector tests: a still or moving wrist, worn or not, at 5-s steps. */
import type { Accelerometer, Reading } from '../../core/reading.js';

export const STEP_MS = 5000;

/** A burst of `n` samples around gravity direction `g`, with sinusoidal movement of `amp` g. */
export function burst(g: [number, number, number], amp = 0, n = 25, hz = 5): Accelerometer {
  const samples: [number, number, number][] = [];
  for (let i = 0; i < n; i++) {
    const w = amp * Math.sin(i * 1.3);
    samples.push([g[0] + w, g[1] - w * 0.5, g[2] + w * 0.7]);
  }
  return { hz, samples };
}

export const STILL = burst([0, 0.2, 0.98]);
export const MOVING = burst([0, 0.2, 0.98], 0.3);

/** Readings every 5 s from `t0`, `count` of them, each built by `fields(i)`. */
export function series(deviceId: string, t0: number, count: number, fields: (i: number) => Partial<Reading>, firstSeq = 0): Reading[] {
  return Array.from({ length: count }, (_, i) => ({
    deviceId,
    seq: firstSeq + i,
    ts: t0 + i * STEP_MS,
    receivedAt: t0 + i * STEP_MS + 300,
    ...fields(i),
  }));
}

/**
 * Ten seconds at `hz` around a fall at 3 s: upright arm, 0.3 s of free fall (0.2 g), a 150-ms
 * impact of 3.2 g (real impacts on a wrist last 100–200 ms), a short rebound, then lying still with the wrist turned ~90°. Split it into two
 * 5-s bursts to make a fall straddle two readings.
 */
export function fallSignal(hz: number): [number, number, number][] {
  const n = 10 * hz;
  const out: [number, number, number][] = [];
  const upright: [number, number, number] = [0, -0.98, 0.15];
  const lying: [number, number, number] = [0.97, 0.05, 0.2];
  const impactAt = Math.round(3 * hz);
  const dip = Math.round(0.3 * hz);
  const impact = Math.max(1, Math.round(0.15 * hz));
  const rebound = Math.round(0.3 * hz);
  for (let i = 0; i < n; i++) {
    const jitter = Math.sin(i * 2.1) * 0.01;
    if (i < impactAt - dip) out.push([upright[0] + 0.05 * Math.sin(i * 0.7), upright[1] + jitter, upright[2]]);
    else if (i < impactAt) out.push([0.05, -0.15, 0.1]);
    else if (i < impactAt + impact) out.push([2.4, -1.9, 0.9]);
    else if (i < impactAt + impact + rebound) out.push([lying[0] * 1.4 - 0.3 * Math.sin(i), lying[1] + 0.3, lying[2]]);
    else out.push([lying[0] + jitter, lying[1], lying[2] + jitter]);
  }
  return out;
}
