/**
 * Vital-sign alerts in event time: a value beyond its band for a sustained time opens the
 * alert; it resolves when the value has been back past a hysteresis margin for as long, so a
 * value hovering at the threshold does not flap. Thresholds and durations come from the
 * resident's detection settings (detection-settings.ts cites the source of each default).
 *
 * Skin temperature is only judged while the band is worn: off the wrist it follows the room.
 */
import type { Reading } from '../core/reading.js';
import type { AlertChange, Severity } from '../store/types.js';
import { raise, resolve, type DetectionContext } from './alert-changes.js';
import type { DetectionSettings } from './detection-settings.js';

/** The resident's settings and, once learned, their resting heart rate (resting-baseline.ts). */
export type VitalLimits = DetectionSettings & { restingHr: number | null };

export interface VitalRule {
  type: 'HR_HIGH' | 'HR_LOW' | 'SPO2_LOW' | 'TEMP_HIGH' | 'TEMP_LOW' | 'HR_RISE';
  field: 'hr' | 'spo2' | 'skinTemp';
  /** Opens at or beyond this value. */
  threshold(l: VitalLimits): number;
  /** Clears at or back beyond this value. */
  clearAt(l: VitalLimits): number;
  sustainMs(l: VitalLimits): number;
  direction: 'above' | 'below';
  severity: Severity;
}

export const VITAL_RULES: readonly VitalRule[] = [
  { type: 'HR_HIGH', field: 'hr', threshold: (l) => l.hrHigh, clearAt: (l) => l.hrHighClear, sustainMs: (l) => l.vitalsSustainMs, direction: 'above', severity: 'high' },
  { type: 'HR_LOW', field: 'hr', threshold: (l) => l.hrLow, clearAt: (l) => l.hrLowClear, sustainMs: (l) => l.vitalsSustainMs, direction: 'below', severity: 'high' },
  { type: 'SPO2_LOW', field: 'spo2', threshold: (l) => l.spo2Low, clearAt: (l) => l.spo2LowClear, sustainMs: (l) => l.vitalsSustainMs, direction: 'below', severity: 'high' },
  { type: 'TEMP_HIGH', field: 'skinTemp', threshold: (l) => l.tempHigh, clearAt: (l) => l.tempHighClear, sustainMs: (l) => l.tempSustainMs, direction: 'above', severity: 'medium' },
  { type: 'TEMP_LOW', field: 'skinTemp', threshold: (l) => l.tempLow, clearAt: (l) => l.tempLowClear, sustainMs: (l) => l.tempSustainMs, direction: 'below', severity: 'medium' },
];

/**
 * A pulse at rest well above the resident's own resting rate (learned in sleep): fed only
 * readings taken at rest, and only once a baseline exists. Clears 10 bpm below its threshold.
 */
export const HR_RISE_RULE: VitalRule = {
  type: 'HR_RISE',
  field: 'hr',
  threshold: (l) => (l.restingHr ?? Infinity) + l.hrRiseBpm,
  clearAt: (l) => (l.restingHr ?? Infinity) + l.hrRiseBpm - 10,
  sustainMs: (l) => l.hrRiseSustainMs,
  direction: 'above',
  severity: 'medium',
};

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
export function stepVital(rule: VitalRule, st: VitalState, reading: Reading, limits: VitalLimits, ctx: DetectionContext): AlertChange | null {
  const value = reading[rule.field];
  if (value === undefined) return null;
  if (rule.field === 'skinTemp' && (reading.worn === false || reading.charging === true)) return null;
  if (st.runStart !== null && reading.ts - st.lastTs > MAX_GAP_MS) st.runStart = null;
  st.lastTs = reading.ts;
  const threshold = rule.threshold(limits);
  const clearAt = rule.clearAt(limits);

  // While inactive we look for a run beyond the threshold; while active, for a run back inside the clearing margin.
  const inRun = st.active ? beyond(rule, value, clearAt) === false : beyond(rule, value, threshold);
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
  if (reading.ts - st.runStart < rule.sustainMs(limits)) return null;

  const runStart = st.runStart;
  st.runStart = null;
  if (!st.active) {
    st.active = true;
    const evidence = { [rule.field]: value, peak: st.peak, threshold, sustainedMs: reading.ts - runStart, seq: reading.seq };
    if (rule === HR_RISE_RULE) evidence.restingHr = limits.restingHr;
    return raise(ctx, rule.type, rule.severity, st.runStartSeq, runStart, reading.ts, evidence);
  }
  st.active = false;
  const peak = st.peak;
  st.peak = null;
  return resolve(ctx, rule.type, reading.ts, { [rule.field]: value, peak, clearAt });
}
