import { describe, expect, it } from 'vitest';
import { sanitizeReading } from '../ingest/sanitize.js';
import { ResidentModel, type ResidentModelOptions, type WireReading } from './resident-model.js';

/** Local midnight in Paris on a summer day (CEST, UTC+2, no DST change in the next days). */
const MIDNIGHT = Date.parse('2024-06-10T00:00:00+02:00');
const HOUR = 3_600_000;

const model = (o: Partial<ResidentModelOptions> = {}) => new ResidentModel({ deviceId: 'band-0001', seed: 7, startTs: MIDNIGHT, ...o });

function run(m: ResidentModel, ms: number): WireReading[] {
  const out: WireReading[] = [];
  for (let n = ms / m.intervalMs; n > 0; n--) out.push(m.next());
  return out;
}

const magnitude = ([x, y, z]: number[]) => Math.hypot(x, y, z);
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const localHour = (r: WireReading) => Math.floor((Date.parse(r.ts) - MIDNIGHT) / HOUR) % 24;
const angleDeg = (a: number[], b: number[]) =>
  (Math.acos((a[0] * b[0] + a[1] * b[1] + a[2] * b[2]) / (magnitude(a) * magnitude(b))) * 180) / Math.PI;
const meanVector = (s: number[][]) => [0, 1, 2].map((k) => mean(s.map((v) => v[k])));

describe('ResidentModel', () => {
  it('is deterministic for a seed', () => {
    expect(run(model(), 10 * 60_000)).toEqual(run(model(), 10 * 60_000));
    expect(run(model({ seed: 8 }), 60_000)).not.toEqual(run(model(), 60_000));
  });

  it('makes a day of readings that ingest accepts without a flag', () => {
    // Problems are collected and compared once: an expect() per sample would take a minute.
    const problems: string[] = [];
    run(model(), 26 * HOUR).forEach((r, i) => {
      const wire = JSON.parse(JSON.stringify(r)) as unknown;
      const result = sanitizeReading(wire, { now: Date.parse(r.ts), maxFutureSkewMs: 300_000 });
      if (result.error !== undefined) problems.push(`seq ${i}: ${result.error}`);
      else if (result.reading.flags) problems.push(`seq ${i}: ${result.reading.flags.join()}`);
      if (r.seq !== i || Date.parse(r.ts) !== MIDNIGHT + i * 5000) problems.push(`seq ${i}: seq ${r.seq} at ${r.ts}`);
      if (r.acc.hz !== 25 || r.acc.samples.length !== 125) problems.push(`seq ${i}: ${r.acc.samples.length} samples at ${r.acc.hz} Hz`);
      if (!r.acc.samples.every((s) => s.every((v) => Math.round(v * 1000) / 1000 === v))) problems.push(`seq ${i}: unrounded sample`);
    });
    expect(problems).toEqual([]);
  });

  it('sleeps at night and is active by day', () => {
    for (const seed of [1, 2, 3]) {
      const readings = run(model({ seed, accHz: 10 }), 24 * HOUR); // 10 Hz: lighter, still shows motion
      const night = readings.filter((r) => localHour(r) < 5);
      const day = readings.filter((r) => localHour(r) >= 10 && localHour(r) < 18);
      const hr = (rs: WireReading[]) => mean(rs.flatMap((r) => (r.hr === undefined ? [] : [r.hr])));
      const steps = (rs: WireReading[]) => rs.reduce((a, r) => a + r.steps, 0);
      expect(hr(night)).toBeLessThan(62);
      expect(hr(night)).toBeGreaterThanOrEqual(55);
      expect(hr(day)).toBeGreaterThan(66);
      expect(hr(day)).toBeLessThan(90);
      expect(steps(night)).toBeLessThan(400); // at most a trip to the bathroom
      expect(steps(day)).toBeGreaterThan(1000);
      // Asleep the wrist is nearly still; by day it walks and gestures.
      const motion = (rs: WireReading[]) => mean(rs.map((r) => Math.max(...r.acc.samples.map(magnitude)) - Math.min(...r.acc.samples.map(magnitude))));
      expect(motion(night)).toBeLessThan(0.1);
      expect(motion(day)).toBeGreaterThan(motion(night) * 2);
    }
  });

  it('spends about half an hour on the charger each morning and drains about 1 % per 15 min', () => {
    const readings = run(model({ accHz: 1 }), 24 * HOUR);
    const charging = readings.filter((r) => r.charging);
    expect(charging.length * 5).toBeGreaterThan(20 * 60);
    expect(charging.length * 5).toBeLessThan(40 * 60);
    for (const r of charging) {
      expect(r.worn).toBe(false);
      expect(r.hr).toBeUndefined();
      expect(localHour(r)).toBeGreaterThanOrEqual(6);
      expect(localHour(r)).toBeLessThan(9);
    }
    expect(charging.at(-1)!.battery).toBeGreaterThan(90);
    const at = (h: number) => readings[(h * HOUR) / 5000].battery;
    expect(at(12) - at(20)).toBeGreaterThanOrEqual(31);
    expect(at(12) - at(20)).toBeLessThanOrEqual(33);
  });

  it('follows the interval and accelerometer rate it is given', () => {
    const [r] = run(model({ intervalMs: 1000, accHz: 50 }), 1000);
    expect(r.acc).toMatchObject({ hz: 50 });
    expect(r.acc.samples).toHaveLength(50);
    expect(() => model({ accHz: 1000, intervalMs: 5000 })).toThrow(RangeError);
  });

  describe('scenarios', () => {
    const NOON = MIDNIGHT + 12 * HOUR;
    const scenario = (name: Parameters<ResidentModel['inject']>[0], at = NOON + 60_000) => {
      const m = model({ startTs: NOON });
      m.inject(name, at);
      return run(m, 6 * 60_000);
    };
    const during = (rs: WireReading[], from: number, to: number) =>
      rs.filter((r) => Date.parse(r.ts) >= from && Date.parse(r.ts) < to);

    it('SOS: one SOS event, on the first reading from its start', () => {
      const readings = scenario('SOS', NOON + 62_000);
      const sos = readings.filter((r) => r.events?.includes('SOS'));
      expect(sos).toHaveLength(1);
      expect(sos[0].ts).toBe(new Date(NOON + 65_000).toISOString());
    });

    it('FALL: free fall, ~3 g impact, then still in a new orientation, with one FALL event', () => {
      const readings = scenario('FALL');
      const falls = readings.filter((r) => r.events?.includes('FALL'));
      expect(falls).toHaveLength(1);
      const samples = falls[0].acc.samples;
      const mags = samples.map(magnitude);
      const peak = mags.indexOf(Math.max(...mags));
      expect(mags[peak]).toBeGreaterThan(2.5);
      expect(mags[peak]).toBeLessThan(3.5);
      const before = mags.slice(Math.max(0, peak - 25), peak); // within 1 s at 25 Hz
      expect(Math.min(...before)).toBeLessThan(0.5);
      const upright = meanVector(samples.slice(0, 5));
      const after = meanVector(samples.slice(-25));
      expect(angleDeg(upright, after)).toBeGreaterThan(45);

      const lying = during(readings, Date.parse(falls[0].ts) + 1, NOON + 60_000 + 3 * 60_000);
      expect(lying.length).toBeGreaterThan(30);
      for (const r of lying) {
        expect(r.steps).toBe(0);
        expect(r.worn).toBe(true);
        const m = r.acc.samples.map(magnitude);
        expect(Math.max(...m) - Math.min(...m)).toBeLessThan(0.1);
        expect(angleDeg(meanVector(r.acc.samples), after)).toBeLessThan(5);
      }
    });

    it.each([
      ['TACHYCARDIA', 'hr', 140, 155],
      ['BRADYCARDIA', 'hr', 35, 38],
      ['HYPOXIA', 'spo2', 86, 89],
    ] as const)('%s: %s within %i–%i for 2 min, then back to normal', (name, field, lo, hi) => {
      const readings = scenario(name);
      const start = NOON + 60_000;
      const abnormal = during(readings, start, start + 120_000);
      expect(abnormal).toHaveLength(24);
      for (const r of abnormal) {
        expect(r[field]).toBeGreaterThanOrEqual(lo);
        expect(r[field]).toBeLessThanOrEqual(hi);
      }
      for (const r of [...during(readings, 0, start), ...during(readings, start + 120_000, Infinity)]) {
        if (field === 'hr') expect(r.hr).toBeGreaterThanOrEqual(55);
        if (field === 'hr') expect(r.hr).toBeLessThanOrEqual(95);
        else expect(r.spo2).toBeGreaterThanOrEqual(94);
      }
      for (const r of readings) expect(sanitizeReading(JSON.parse(JSON.stringify(r)), { now: NOON, maxFutureSkewMs: HOUR }).reading?.flags).toBeUndefined();
    });

    it('puts the band on the wrist for a scenario that starts while it charges', () => {
      const first = run(model({ accHz: 1 }), 12 * HOUR).find((r) => r.charging)!;
      const m = model({ accHz: 1 });
      m.inject('TACHYCARDIA', Date.parse(first.ts));
      const same = run(m, 12 * HOUR).find((r) => r.ts === first.ts)!;
      expect(same).toMatchObject({ worn: true, charging: false });
      expect(same.hr).toBeGreaterThanOrEqual(140);
    });
  });
});
