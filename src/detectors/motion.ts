/**
 * What one accelerometer burst says about movement, in two numbers the condition detectors
 * share: the mean gravity direction (how the wrist is oriented) and how much the magnitude
 * varies (how much it moves). van Hees et al. (2015, PLoS ONE 10(11): e0142533) detect
 * sustained inactivity as no change of wrist angle above 5° for 5 min; the same angle test
 * tells stillness here.
 */
import type { Accelerometer } from '../core/reading.js';

export interface BurstMotion {
  /** Mean acceleration vector (g): gravity direction when the wrist is still. */
  x: number;
  y: number;
  z: number;
  /** Standard deviation of |a| over the burst (g). */
  magSd: number;
}

export function burstMotion(acc: Accelerometer | undefined): BurstMotion | null {
  const samples = acc?.samples;
  if (!samples || samples.length === 0) return null;
  let sx = 0, sy = 0, sz = 0, sm = 0, smm = 0;
  for (let i = 0; i < samples.length; i++) {
    const s = samples[i];
    const m = Math.sqrt(s[0] * s[0] + s[1] * s[1] + s[2] * s[2]);
    sx += s[0];
    sy += s[1];
    sz += s[2];
    sm += m;
    smm += m * m;
  }
  const n = samples.length;
  const mean = sm / n;
  return { x: sx / n, y: sy / n, z: sz / n, magSd: Math.sqrt(Math.max(0, smm / n - mean * mean)) };
}

/** Angle between two mean vectors, in degrees. */
export function angleDeg(a: { x: number; y: number; z: number }, b: { x: number; y: number; z: number }): number {
  const na = Math.hypot(a.x, a.y, a.z);
  const nb = Math.hypot(b.x, b.y, b.z);
  if (na === 0 || nb === 0) return 0;
  const cos = (a.x * b.x + a.y * b.y + a.z * b.z) / (na * nb);
  return (Math.acos(Math.max(-1, Math.min(1, cos))) * 180) / Math.PI;
}

/** van Hees 2015: a wrist angle change above 5° is movement. */
export const STILL_ANGLE_DEG = 5;
/**
 * Above this SD of |a| within a burst the wrist moved (gestures, walking: > 0.1 g). A still wrist
 * shows sensor noise and pulse, a few mg; 0.03 g leaves room for tremor.
 */
export const STILL_MAG_SD_G = 0.03;
/** Below this SD the signal is flat: a band lying on a table (MEMS noise floor ~1–3 mg). */
export const FLAT_MAG_SD_G = 0.004;
