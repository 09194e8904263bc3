/**
 * Every detector of one device, run in event time on its readings in `seq` order (DESIGN
 * §3.3): the `alerts` group keeps one DeviceState per device and snapshots it whole with the
 * checkpoint, so a restart resumes every window where it was.
 *
 * Per reading, in this order:
 * - at admission (before reordering, so nothing urgent waits for a gap): device events —
 *   SOS, on-device FALL, SOS_CANCEL (which also resolves a fall still in its "I'm OK" window);
 * - in seq order (reorder.ts): the fall detector on the continuous accelerometer signal,
 *   vitals, the resting baseline and HR_RISE, daily activity and its drop insight,
 *   inactivity, device health, the home geofence;
 * - late readings (their gap was given up on): a fall inside their own burst, their steps;
 *   the windows have moved on without them.
 * On processing time (`tickDevice`, only while the group is caught up): DEVICE_OFFLINE,
 * gaps given up on, and a fall followed by silence decided on what arrived.
 */
import type { Reading } from '../core/reading.js';
import { clockFor } from '../core/local-time.js';
import type { AlertChange, GeoPoint } from '../store/types.js';
import { raise, resolve, type DetectionContext } from './alert-changes.js';
import type { DetectionSettings } from './detection-settings.js';
import { deviceEventChanges } from './device-events.js';
import { backOnline, checkOffline, newHealthState, stepHealth, type HealthState } from './device-health.js';
import { feedFall, newFallState, settleFall, type FallDecision, type FallState } from './fall/fall-detector.js';
import { newGeofenceState, stepGeofence, type GeofenceState } from './geofence.js';
import { newInactivityState, stepInactivity, type InactivityState } from './inactivity.js';
import { burstMotion, STILL_MAG_SD_G } from './motion.js';
import { admit, expire, newReorderState, type ReorderState } from './reorder.js';
import { addSleepingPulse, newBaselineState, restingHr, type BaselineState } from './resting-baseline.js';
import { feedSleep, newSleepState, type SleepState } from './sleep/sleep-detector.js';
import { feedActivity, newActivityState, type ActivityState } from './activity/daily-activity.js';
import { HR_RISE_RULE, newVitalState, stepVital, VITAL_RULES, type VitalLimits, type VitalState } from './vitals.js';

/** What the detectors need to know about the resident wearing the device. */
export interface ResidentContext {
  residentId: string;
  /** A zone the runtime knows (core/local-time.ts knownTimeZone). */
  timezone: string;
  home: GeoPoint | null;
  settings: DetectionSettings;
}

export interface DeviceState {
  v: 2;
  reorder: ReorderState;
  /** Event time and seq of the last reading processed in order. */
  lastTs: number;
  lastSeq: number;
  /** Latest server receive time seen: when we last heard from the band. */
  lastReceivedAt: number;
  /** [seq, ts] of the last few bursts, flat: tells which reading a fall's impact was in. */
  bursts: number[];
  /** The fall detector was settled on the device's silence (until its next burst). */
  fallSettled: boolean;
  fall: FallState;
  /** The last fall detected and when it was decided: SOS_CANCEL within the window resolves it. */
  lastFall: { impactTs: number; decidedTs: number } | null;
  vitals: Record<string, VitalState>;
  rise: VitalState;
  sleep: SleepState;
  baseline: BaselineState;
  activity: ActivityState;
  inactivity: InactivityState;
  health: HealthState;
  geofence: GeofenceState;
}

export function newDeviceState(): DeviceState {
  return {
    v: 2,
    reorder: newReorderState(),
    lastTs: 0,
    lastSeq: -1,
    lastReceivedAt: 0,
    bursts: [],
    fallSettled: false,
    fall: newFallState(),
    lastFall: null,
    vitals: {},
    rise: newVitalState(),
    sleep: newSleepState(),
    baseline: newBaselineState(),
    activity: newActivityState(),
    inactivity: newInactivityState(),
    health: newHealthState(),
    geofence: newGeofenceState(),
  };
}

/** A snapshot from before this version (only vital windows) starts afresh. */
export const restoreDeviceState = (saved: unknown): DeviceState =>
  (saved as DeviceState | undefined)?.v === 2 ? (saved as DeviceState) : newDeviceState();

/** Silence after which a pending fall is decided on what arrived (processing time). */
export const FALL_SILENCE_MS = 15_000;
const BURSTS_KEPT = 6;

/** A resident's settings with a resting rate, built once per (settings, rate) rather than per reading. */
const limitsCache = new WeakMap<DetectionSettings, Map<number | null, VitalLimits>>();
function limitsFor(rc: ResidentContext, resting: number | null): VitalLimits {
  let byRate = limitsCache.get(rc.settings);
  if (!byRate) {
    byRate = new Map();
    limitsCache.set(rc.settings, byRate);
  }
  let limits = byRate.get(resting);
  if (!limits) {
    limits = { ...rc.settings, restingHr: resting };
    byRate.set(resting, limits);
  }
  return limits;
}

/** Takes one reading of the device (any order, duplicates included) and appends the alert changes it causes. */
export function admitReading(st: DeviceState, reading: Reading, rc: ResidentContext, now: number, out: AlertChange[]): void {
  const ctx: DetectionContext = { residentId: rc.residentId, deviceId: reading.deviceId, now };
  const inOrder: Reading[] = [];
  const admission = admit(st.reorder, reading, inOrder);
  if (admission === 'duplicate') return;
  if (reading.receivedAt > st.lastReceivedAt) st.lastReceivedAt = reading.receivedAt;
  const back = backOnline(st.health, reading, ctx);
  if (back) out.push(back);
  deviceEvents(st, reading, rc, ctx, out);
  if (admission === 'late') lateReading(st, reading, rc, ctx, out);
  for (const r of inOrder) inOrderReading(st, r, rc, ctx, out);
}

/**
 * Processing-time duties of a device, called while the group is caught up. `watchingSince`
 * is when this worker took the partition: silence before it is not the band's. Returns
 * whether the state changed (only changed states are written with the next checkpoint).
 */
export function tickDevice(st: DeviceState, deviceId: string, rc: ResidentContext, now: number, watchingSince: number, out: AlertChange[]): boolean {
  const ctx: DetectionContext = { residentId: rc.residentId, deviceId, now };
  const inOrder: Reading[] = [];
  expire(st.reorder, now, inOrder);
  for (const r of inOrder) inOrderReading(st, r, rc, ctx, out);
  let changed = inOrder.length > 0;
  const lastHeardAt = Math.max(st.lastReceivedAt, watchingSince);
  if (!st.fallSettled && now - lastHeardAt >= FALL_SILENCE_MS && st.lastSeq >= 0) {
    st.fallSettled = true;
    fallDecisions(st, settleFall(st.fall, st.lastTs + FALL_SILENCE_MS, rc.settings), rc, ctx, st.lastTs, out);
    changed = true;
  }
  if (st.lastSeq < 0) return changed;
  const offline = checkOffline(st.health, now, lastHeardAt, { seq: st.lastSeq, ts: st.lastTs }, rc.settings, ctx);
  if (offline) out.push(offline);
  return changed || offline !== null;
}

function deviceEvents(st: DeviceState, reading: Reading, rc: ResidentContext, ctx: DetectionContext, out: AlertChange[]): void {
  if (!reading.events) return;
  out.push(...deviceEventChanges(reading, ctx));
  const fall = st.lastFall;
  if (fall && reading.events.includes('SOS_CANCEL') && reading.ts >= fall.impactTs && reading.ts - fall.decidedTs <= rc.settings.imOkWindowMs) {
    out.push(resolve(ctx, 'FALL', reading.ts, { by: 'resident', reason: 'SOS_CANCEL', seq: reading.seq }));
    st.lastFall = null;
  }
}

function inOrderReading(st: DeviceState, reading: Reading, rc: ResidentContext, ctx: DetectionContext, out: AlertChange[]): void {
  const s = rc.settings;
  st.lastTs = reading.ts;
  st.lastSeq = reading.seq;
  const clock = clockFor(rc.timezone);
  const local = clock.at(reading.ts);
  const hour = local.minute / 60;
  const awake = hour >= s.dayStartHour && hour < s.dayEndHour;
  const motion = burstMotion(reading.acc);

  // Falls on the continuous signal.
  let decisions: FallDecision[];
  if (reading.acc && reading.acc.samples.length > 0) {
    st.fallSettled = false;
    st.bursts.push(reading.seq, reading.ts);
    if (st.bursts.length > BURSTS_KEPT * 2) st.bursts.splice(0, 2);
    decisions = feedFall(st.fall, reading.acc, reading.ts, s);
  } else {
    decisions = settleFall(st.fall, reading.ts, s);
  }
  fallDecisions(st, decisions, rc, ctx, reading.ts, out);

  // Vitals, and the pulse at rest against the resident's own baseline.
  const limits = limitsFor(rc, restingHr(st.baseline));
  for (const rule of VITAL_RULES) {
    const change = stepVital(rule, (st.vitals[rule.type] ??= newVitalState()), reading, limits, ctx);
    if (change) out.push(change);
  }
  const atRest = awake && reading.worn !== false && (reading.steps ?? 0) === 0 && motion !== null && motion.magSd < STILL_MAG_SD_G;
  if (limits.restingHr !== null && (atRest || st.rise.active)) {
    const change = stepVital(HR_RISE_RULE, st.rise, reading, limits, ctx);
    if (change) out.push(change);
  }

  // Sleep epochs teach the baseline; the sessions themselves are the warehouse group's.
  const sleep = feedSleep(st.sleep, reading, rc.timezone);
  for (const epoch of sleep.epochs) {
    if (epoch.asleep && epoch.hrMean !== null) addSleepingPulse(st.baseline, clock.at(epoch.start - 12 * 3_600_000).day, epoch.hrMean);
  }

  activity(st, reading, rc, ctx, out);

  const inactivity = stepInactivity(st.inactivity, { reading, motion, awake, lastFallTs: st.lastFall?.impactTs ?? null }, s, ctx);
  if (inactivity) out.push(inactivity);
  const wakingMinutes = awake ? local.minute - s.dayStartHour * 60 : 0;
  stepHealth(st.health, { reading, motion, wakingMinutes }, s, ctx, out);
  if (reading.location && rc.home) {
    const change = stepGeofence(st.geofence, reading as Reading & { location: NonNullable<Reading['location']> }, rc.home, !awake, s, ctx);
    if (change) out.push(change);
  }
}

/** A reading whose gap was given up on: what can still be learned from it alone. */
function lateReading(st: DeviceState, reading: Reading, rc: ResidentContext, ctx: DetectionContext, out: AlertChange[]): void {
  if (reading.acc && reading.acc.samples.length > 0) {
    const alone = newFallState();
    const decisions = [...feedFall(alone, reading.acc, reading.ts, rc.settings), ...settleFall(alone, reading.ts + FALL_SILENCE_MS, rc.settings)];
    for (const d of decisions) if (d.kind === 'fall') out.push(fallRaise(d, reading.seq, reading.ts, ctx));
  }
  activity(st, reading, rc, ctx, out);
}

function activity(st: DeviceState, reading: Reading, rc: ResidentContext, ctx: DetectionContext, out: AlertChange[]): void {
  const { drop } = feedActivity(st.activity, reading, rc.timezone);
  if (drop) out.push(raise(ctx, 'ACTIVITY_DROP', 'low', reading.seq, reading.ts, reading.ts, { ...drop, seq: reading.seq }));
}

function fallDecisions(st: DeviceState, decisions: FallDecision[], rc: ResidentContext, ctx: DetectionContext, dataTs: number, out: AlertChange[]): void {
  for (const d of decisions) {
    if (d.kind === 'fall') {
      st.lastFall = { impactTs: d.impactTs, decidedTs: d.decidedTs };
      out.push(fallRaise(d, seqOfImpact(st, d.impactTs), dataTs, ctx));
    } else if (st.lastFall && st.lastFall.impactTs === d.impactTs) {
      out.push(resolve(ctx, 'FALL', d.at, { by: 'resident', reason: 'moving normally', impactAt: new Date(d.impactTs).toISOString() }));
      st.lastFall = null;
    }
  }
}

function fallRaise(d: Extract<FallDecision, { kind: 'fall' }>, seq: number, dataTs: number, ctx: DetectionContext): AlertChange {
  return raise(ctx, 'FALL', 'critical', seq, d.impactTs, dataTs, {
    source: 'accelerometer',
    peakG: round(d.peakG, 2),
    confidence: round(d.confidence, 2),
    stillnessMs: Math.round(d.stillnessMs),
    orientationChangeDeg: Math.round(d.orientationChangeDeg),
    impactAt: new Date(d.impactTs).toISOString(),
    seq,
  });
}

/** The seq of the burst the impact fell in: the alert id does not depend on when the fall was decided. */
function seqOfImpact(st: DeviceState, impactTs: number): number {
  for (let i = st.bursts.length - 2; i >= 0; i -= 2) if (st.bursts[i + 1] <= impactTs) return st.bursts[i];
  return st.bursts[0] ?? st.lastSeq;
}

const round = (x: number, digits: number) => Math.round(x * 10 ** digits) / 10 ** digits;
