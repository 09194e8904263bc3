/**
 * Device health (DESIGN §4: offline, not worn, charging and still-while-worn are different
 * states):
 * - NOT_WORN: worn=false — or, for a band without a wear sensor, no pulse and a flat signal —
 *   while not charging, for `notWornMs` of waking hours. Resolves when the band is back on.
 * - BATTERY_LOW: at or below `batteryLowPct` while not charging, once per discharge: it
 *   re-arms (and resolves) when charging starts or the level is back above `batteryRearmPct`.
 * - DEVICE_OFFLINE: no reading for `offlineMs` of processing time, judged by the group only
 *   while it is caught up (`offline` below), resolved by the next reading.
 */
import type { Reading } from '../core/reading.js';
import type { AlertChange } from '../store/types.js';
import { raise, resolve, type DetectionContext } from './alert-changes.js';
import type { DetectionSettings } from './detection-settings.js';
import { FLAT_MAG_SD_G, type BurstMotion } from './motion.js';

export interface HealthState {
  notWornSince: number | null;
  notWornSeq: number;
  notWorn: boolean;
  batteryArmed: boolean;
  batteryLow: boolean;
  offline: boolean;
}

export const newHealthState = (): HealthState => ({ notWornSince: null, notWornSeq: 0, notWorn: false, batteryArmed: true, batteryLow: false, offline: false });

export interface HealthInput {
  reading: Reading;
  motion: BurstMotion | null;
  /** Minutes of waking hours elapsed today at this reading (0 outside them). */
  wakingMinutes: number;
}

export function stepHealth(st: HealthState, input: HealthInput, s: DetectionSettings, ctx: DetectionContext, out: AlertChange[]): void {
  const { reading, motion } = input;
  if (reading.charging !== true) {
    const off = reading.worn === false || (reading.worn === undefined && reading.hr === undefined && motion !== null && motion.magSd < FLAT_MAG_SD_G);
    const on = reading.worn === true || reading.hr !== undefined;
    if (off) {
      if (st.notWornSince === null) {
        st.notWornSince = reading.ts;
        st.notWornSeq = reading.seq;
      }
      const offFor = Math.min(reading.ts - st.notWornSince, input.wakingMinutes * 60_000);
      if (!st.notWorn && offFor >= s.notWornMs) {
        st.notWorn = true;
        out.push(raise(ctx, 'NOT_WORN', 'low', st.notWornSeq, st.notWornSince, reading.ts, { offForMs: reading.ts - st.notWornSince, seq: reading.seq }));
      }
    } else if (on) {
      st.notWornSince = null;
      if (st.notWorn) {
        st.notWorn = false;
        out.push(resolve(ctx, 'NOT_WORN', reading.ts, { seq: reading.seq }));
      }
    }
  } else {
    // On the charger: neither worn nor "not worn" — the run restarts when it comes off.
    st.notWornSince = null;
  }

  const battery = reading.battery;
  if (reading.charging === true || (battery !== undefined && battery > s.batteryRearmPct)) {
    st.batteryArmed = true;
    if (st.batteryLow) {
      st.batteryLow = false;
      out.push(resolve(ctx, 'BATTERY_LOW', reading.ts, { battery, charging: reading.charging === true }));
    }
  } else if (battery !== undefined && battery <= s.batteryLowPct && st.batteryArmed) {
    st.batteryArmed = false;
    st.batteryLow = true;
    out.push(raise(ctx, 'BATTERY_LOW', 'low', reading.seq, reading.ts, reading.ts, { battery, threshold: s.batteryLowPct, seq: reading.seq }));
  }
}

/**
 * Processing-time check of a silent device: `lastHeardAt` is the later of its last reading's
 * receive time and when this worker started watching it (a worker that was itself down
 * must not blame the bands for its own silence).
 */
export function checkOffline(
  st: HealthState,
  now: number,
  lastHeardAt: number,
  last: { seq: number; ts: number },
  s: DetectionSettings,
  ctx: DetectionContext,
): AlertChange | null {
  if (st.offline || now - lastHeardAt < s.offlineMs) return null;
  st.offline = true;
  return raise(ctx, 'DEVICE_OFFLINE', 'medium', last.seq, lastHeardAt + s.offlineMs, lastHeardAt + s.offlineMs, {
    lastReadingAt: new Date(last.ts).toISOString(),
    silentForMs: now - lastHeardAt,
    seq: last.seq,
  });
}

/** Any reading from an offline device brings it back. */
export function backOnline(st: HealthState, reading: Reading, ctx: DetectionContext): AlertChange | null {
  if (!st.offline) return null;
  st.offline = false;
  return resolve(ctx, 'DEVICE_OFFLINE', reading.ts, { seq: reading.seq });
}
