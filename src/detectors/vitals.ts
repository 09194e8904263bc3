/**
 * Vital-sign alerts in event time: a value beyond its band for `sustainMs` opens the alert;
 * it resolves when the value has been back past a hysteresis margin for as long, so a value
 * hovering at the threshold does not flap.
 *
 * Bands (DESIGN §4): NEWS2 (Royal College of Physicians, 2017) scores pulse ≤ 40 or ≥ 131 and
 * SpO2 ≤ 91 (scale 1) with 3 — a single red parameter that calls for an urgent response.
 * Clearing margins: pulse back to ≤ 120 / ≥ 46 and SpO2 ≥ 94 are NEWS2 scores 0-1.
 */
import { alertId } from '../core/ids.js';
import type { Reading } from '../core/reading.js';
import type { AlertChange, Severity } from '../store/types.js';
import type { DetectionContext } from './device-events.js';

export interface VitalRule {
  type: 'HR_HIGH' | 'HR_LOW' | 'SPO2_LOW';
  field: 'hr' | 'spo2';
  /** Opens at or beyond this value. */
  threshold: number;
  /** Clears at or back beyond this value. */
  clearAt: number;
  direction: 'above' | 'below';
  severity: Severity;
}

export const VITAL_RULES: readonly VitalRule[] = [
  { type: 'HR_HIGH', field: 'hr', threshold: 131, clearAt: 120, direction: 'above', severity: 'high' },
  { type: 'HR_LOW', field: 'hr', threshold: 40, clearAt: 46, direction: 'below', severity: 'high' },
  { type: 'SPO2_LOW', field: 'spo2', threshold: 91, clearAt: 94, direction: 'below', severity: 'high' },
];

/** A gap in the readings longer than this breaks a "sustained" run: we do not know what happened. */
export const MAX_GAP_MS = 60_000;

export interface VitalState {
  /** Event time of the first reading of the current abnormal (or, when active, normal) run. */
  runStart: number | null;
  runStartSeq: number;
  lastTs: number;
  peak: number | null;
  active: boolean;
}

export const newVitalState = (): VitalState => ({ runStart: null, runStartSeq: 0, lastTs: 0, peak: null, active: false });

const beyond = (r: VitalRule, v: number, limit: number) => (r.direction === 'above' ? v >= limit : v <= limit);
const worse = (r: VitalRule, a: number, b: number) => (r.direction === 'above' ? Math.max(a, b) : Math.min(a, b));

/** Advances one rule's state with one reading (in event-time order); returns the change, if any. */
export function stepVital(rule: VitalRule, st: VitalState, reading: Reading, sustainMs: number, ctx: DetectionContext): AlertChange | null {
  const value = reading[rule.field];
  if (value === undefined) return null;
  if (st.runStart !== null && reading.ts - st.lastTs > MAX_GAP_MS) st.runStart = null;
  st.lastTs = reading.ts;

  // While inactive we look for a run beyond the threshold; while active, for a run back inside the clearing margin.
  const inRun = st.active ? beyond(rule, value, rule.clearAt) === false : beyond(rule, value, rule.threshold);
  if (!inRun) {
    st.runStart = null;
    if (st.active) st.peak = worse(rule, st.peak ?? value, value);
    return null;
  }
  if (st.runStart === null) {
    st.runStart = reading.ts;
    st.runStartSeq = reading.seq;
    if (!st.active) st.peak = value;
  }
  if (!st.active) st.peak = worse(rule, st.peak ?? value, value);
  if (reading.ts - st.runStart < sustainMs) return null;

  const runStart = st.runStart;
  st.runStart = null;
  if (!st.active) {
    st.active = true;
    return {
      kind: 'raise',
      alert: {
        id: alertId(ctx.residentId, rule.type, ctx.deviceId, st.runStartSeq),
        residentId: ctx.residentId,
        deviceId: ctx.deviceId,
        type: rule.type,
        severity: rule.severity,
        openedAt: runStart,
        detectedAt: ctx.now,
        delayMs: Math.max(0, ctx.now - reading.ts),
        evidence: { [rule.field]: value, peak: st.peak, threshold: rule.threshold, sustainedMs: reading.ts - runStart, seq: reading.seq },
      },
    };
  }
  st.active = false;
  const peak = st.peak;
  st.peak = null;
  return { kind: 'resolve', residentId: ctx.residentId, type: rule.type, at: reading.ts, evidence: { [rule.field]: value, peak, clearAt: rule.clearAt } };
}
