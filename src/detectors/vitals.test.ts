import { describe, expect, it } from 'vitest';
import type { Reading } from '../core/reading.js';
import { DEFAULT_DETECTION_SETTINGS } from './detection-settings.js';
import { HR_RISE_RULE, newVitalState, stepVital, VITAL_RULES } from './vitals.js';

const S = { ...DEFAULT_DETECTION_SETTINGS, restingHr: null };
const rule = (type: string) => VITAL_RULES.find((r) => r.type === type)!;
const ctx = { residentId: 'res-1', deviceId: 'band-1', now: 1_000_000_000_000 };
const at = (seq: number, fields: Partial<Reading>): Reading => ({ deviceId: 'band-1', seq, ts: 1_700_000_000_000 + seq * 5000, receivedAt: 0, ...fields });

function run(type: string, values: (number | undefined)[], field: 'hr' | 'spo2') {
  const st = newVitalState();
  return values.map((v, i) => stepVital(rule(type), st, at(i, v === undefined ? {} : { [field]: v }), S, ctx));
}

describe('vital rules', () => {
  it('uses the NEWS2 score-3 bands', () => {
    expect(VITAL_RULES.slice(0, 3).map((r) => [r.type, r.threshold(S)])).toEqual([['HR_HIGH', 131], ['HR_LOW', 40], ['SPO2_LOW', 91]]);
  });

  it('opens only after 30 s beyond the band, with an id from the first abnormal reading', () => {
    const out = run('SPO2_LOW', [97, 91, 90, 89, 90, 90, 91, 90, 97], 'spo2');
    expect(out.slice(0, 7).every((c) => c === null)).toBe(true);
    expect(out[7]).toMatchObject({ kind: 'raise', alert: { type: 'SPO2_LOW', openedAt: 1_700_000_000_000 + 5000, evidence: { peak: 89, threshold: 91 } } });
    const again = run('SPO2_LOW', [97, 91, 90, 89, 90, 90, 91, 90], 'spo2');
    expect(again[7]!.kind === 'raise' && out[7]!.kind === 'raise' && again[7]!.alert.id === out[7]!.alert.id).toBe(true);
  });

  it('resets when the value comes back before 30 s, or when readings stop for over a minute', () => {
    expect(run('HR_LOW', [38, 38, 38, 38, 38, 50, 38, 38, 38], 'hr').every((c) => c === null)).toBe(true);
    const st = newVitalState();
    const r = rule('HR_HIGH');
    expect(stepVital(r, st, at(0, { hr: 140 }), S, ctx)).toBeNull();
    expect(stepVital(r, st, { ...at(1, { hr: 140 }), ts: at(0, {}).ts + 120_000 }, S, ctx)).toBeNull();
  });

  it('ignores readings without the value', () => {
    const out = run('HR_HIGH', [140, undefined, 140, undefined, 140, 140, 140, 140], 'hr');
    expect(out.slice(0, 6).every((c) => c === null)).toBe(true);
    expect(out[6]).toMatchObject({ kind: 'raise' }); // 30 s after the first, gaps of 10 s included
  });

  it('resolves only after 30 s back past the clearing margin (hysteresis)', () => {
    const values = [135, 135, 135, 135, 135, 135, 135, /* open */ 125, 125, 125, 125, 125, 125, 125, 125, 119, 119, 119, 119, 119, 119, 119];
    const out = run('HR_HIGH', values, 'hr');
    expect(out[6]).toMatchObject({ kind: 'raise' });
    expect(out.slice(7, 21).every((c) => c === null)).toBe(true);
    expect(out[21]).toMatchObject({ kind: 'resolve', type: 'HR_HIGH', at: 1_700_000_000_000 + 21 * 5000 });
  });
});

describe('skin temperature and the personal baseline', () => {
  const rise = (type: string) => VITAL_RULES.find((r) => r.type === type)!;

  it('raises TEMP_HIGH after 10 min at or above 37.5 °C on the wrist, never off it', () => {
    const st = newVitalState();
    const out = Array.from({ length: 130 }, (_, i) => stepVital(rise('TEMP_HIGH'), st, at(i, { skinTemp: 37.8, worn: true }), S, ctx));
    expect(out.findIndex((c) => c !== null)).toBe(120);
    const off = newVitalState();
    const none = Array.from({ length: 200 }, (_, i) => stepVital(rise('TEMP_LOW'), off, at(i, { skinTemp: 24, worn: false }), S, ctx));
    expect(none.every((c) => c === null)).toBe(true);
  });

  it('raises HR_RISE only once a baseline exists, from the resident’s own resting rate', () => {
    const run = (restingHr: number | null) => {
      const st = newVitalState();
      return Array.from({ length: 200 }, (_, i) => stepVital(HR_RISE_RULE, st, at(i, { hr: 92 }), { ...S, restingHr }, ctx)).find((c) => c !== null);
    };
    expect(run(null)).toBeUndefined();
    expect(run(70)).toBeUndefined(); // 92 < 70 + 30
    expect(run(58)).toMatchObject({ kind: 'raise', alert: { type: 'HR_RISE', evidence: { restingHr: 58, threshold: 88 } } });
  });

  it('takes a resident’s override of a threshold', () => {
    const st = newVitalState();
    const limits = { ...S, hrHigh: 100, hrHighClear: 90 };
    const out = Array.from({ length: 8 }, (_, i) => stepVital(rule('HR_HIGH'), st, at(i, { hr: 105 }), limits, ctx));
    expect(out[6]).toMatchObject({ kind: 'raise', alert: { evidence: { threshold: 100 } } });
  });
});
