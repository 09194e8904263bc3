/**
 * INACTIVITY: the band is worn and not charging, the resident is awake (waking hours), and
 * the wrist has not moved — no steps, no angle change beyond 5° (van Hees 2015), little
 * magnitude variation — for longer than their limit (2 h by default, 15 min in the 2 h after
 * a fall: someone lying still then needs help sooner).
 *
 * Distinct from device health (DESIGN §4): no data is "offline", worn=false is "not worn",
 * charging is neither; none of them counts as stillness, and a gap over 5 min breaks the run —
 * a band that says nothing is not a person who does not move.
 */
import type { Reading } from '../core/reading.js';
import type { AlertChange } from '../store/types.js';
import { raise, resolve, type DetectionContext } from './alert-changes.js';
import type { DetectionSettings } from './detection-settings.js';
import { angleDeg, STILL_ANGLE_DEG, STILL_MAG_SD_G, type BurstMotion } from './motion.js';

export interface InactivityState {
  /** Event time and seq of the first still reading of the run, and the orientation it started in. */
  since: number | null;
  sinceSeq: number;
  anchor: { x: number; y: number; z: number } | null;
  lastTs: number;
  active: boolean;
}

export const newInactivityState = (): InactivityState => ({ since: null, sinceSeq: 0, anchor: null, lastTs: 0, active: false });

const MAX_GAP_MS = 5 * 60_000;
const AFTER_FALL_MS = 2 * 3_600_000;

export interface InactivityInput {
  reading: Reading;
  motion: BurstMotion | null;
  awake: boolean;
  /** Event time of the last fall detected, if any. */
  lastFallTs: number | null;
}

export function stepInactivity(st: InactivityState, input: InactivityInput, s: DetectionSettings, ctx: DetectionContext): AlertChange | null {
  const { reading, motion } = input;
  if (st.since !== null && reading.ts - st.lastTs > MAX_GAP_MS) st.since = null;
  st.lastTs = reading.ts;
  const observable = reading.worn !== false && reading.charging !== true && motion !== null;
  const still =
    observable &&
    (reading.steps ?? 0) === 0 &&
    motion.magSd < STILL_MAG_SD_G &&
    (st.anchor === null || st.since === null || angleDeg(st.anchor, motion) <= STILL_ANGLE_DEG);

  if (!still) {
    st.since = null;
    st.anchor = null;
    if (st.active && observable) {
      st.active = false;
      return resolve(ctx, 'INACTIVITY', reading.ts, { seq: reading.seq, reason: 'moved' });
    }
    return null;
  }
  if (st.since === null) {
    st.since = reading.ts;
    st.sinceSeq = reading.seq;
    st.anchor = { x: motion.x, y: motion.y, z: motion.z };
  }
  if (st.active || !input.awake) return null;
  const afterFall = input.lastFallTs !== null && reading.ts - input.lastFallTs < AFTER_FALL_MS;
  const limit = afterFall ? Math.min(s.inactivityAfterFallMs, s.inactivityMs) : s.inactivityMs;
  const stillFor = reading.ts - st.since;
  if (stillFor < limit) return null;
  st.active = true;
  return raise(ctx, 'INACTIVITY', afterFall ? 'high' : 'medium', st.sinceSeq, st.since, reading.ts, { stillForMs: stillFor, limitMs: limit, afterFall, seq: reading.seq });
}
