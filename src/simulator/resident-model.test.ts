import { describe, expect, it } from 'vitest';
import { sanitizeReading } from '../ingest/sanitize.js';
import { ResidentModel, SCENARIO_NAMES, type ResidentModelOptions, type WireReading } from './resident-model.js';
import { distanceM } from './testing/geo.js';

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
  (Math.acos(Math.min(1, (a[0] * b[0] + a[1] * b[1] + a[2] * b[2]) / (magnitude(a) * magnitude(b)))) * 180) / Math.PI;
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

  it('charges once a day, ~30 min in the morning or 1–2 h from bedtime, and drains ~2.5 %/h', () => {
    const habits = new Set<string>();
    for (const seed of [1, 2, 3, 4, 5, 6, 7, 8]) {
      const readings = run(model({ seed, accHz: 1 }), 48 * HOUR).slice((24 * HOUR) / 5000); // the second day
      const charging = readings.filter((r) => r.charging);
      const minutes = (charging.length * 5) / 60;
      for (const r of charging) {
        expect(r.worn).toBe(false);
        expect(r.hr).toBeUndefined();
      }
      const hours = new Set(charging.map(localHour));
      const morning = [...hours].every((h) => h >= 6 && h < 9);
      const bedtime = [...hours].every((h) => h >= 20 || h < 2);
      expect(morning || bedtime).toBe(true);
      habits.add(morning ? 'morning' : 'bedtime');
      expect(minutes).toBeGreaterThan(morning ? 20 : 50);
      expect(minutes).toBeLessThan(morning ? 45 : 130);
      expect(Math.max(...charging.map((r) => r.battery))).toBeGreaterThan(95);
      expect(Math.min(...readings.map((r) => r.battery))).toBeGreaterThan(30);
      const at = (h: number) => readings[(h * HOUR) / 5000].battery;
      expect(at(12) - at(18)).toBeGreaterThanOrEqual(14);
      expect(at(12) - at(18)).toBeLessThanOrEqual(16);
    }
    expect(habits).toEqual(new Set(['morning', 'bedtime']));
  });

  it('locates the phone at home, within ~25 m, with an accuracy', () => {
    const home = { lat: 48.85, lon: 2.35 };
    const readings = run(model({ accHz: 1, home }), 6 * HOUR); // the night
    for (const r of readings) {
      expect(distanceM(r.location!, home)).toBeLessThan(26);
      expect(r.location!.accuracyM).toBeGreaterThanOrEqual(4);
      expect(r.location!.accuracyM).toBeLessThanOrEqual(25);
    }
    expect(model().home).toEqual(model().home); // without a home, one drawn from the seed
    expect(distanceM(model().home, { lat: 48.8566, lon: 2.3522 })).toBeLessThan(8100);
  });

  it('follows the interval and accelerometer rate it is given', () => {
    const [r] = run(model({ intervalMs: 1000, accHz: 50 }), 1000);
    expect(r.acc).toMatchObject({ hz: 50 });
    expect(r.acc.samples).toHaveLength(50);
    expect(() => model({ accHz: 1000, intervalMs: 5000 })).toThrow(RangeError);
    // A duty-cycled accelerometer: a 15-s burst at the start of each minute.
    const [m] = run(model({ intervalMs: 60_000, accHz: 10, accWindowMs: 15_000 }), 60_000);
    expect(m.acc).toMatchObject({ hz: 10 });
    expect(m.acc.samples).toHaveLength(150);
    expect(() => model({ intervalMs: 5000, accWindowMs: 6000 })).toThrow(RangeError);
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

    const MIN = 60_000;
    const play = (name: Parameters<ResidentModel['inject']>[0], runMs: number, o: Partial<ResidentModelOptions> & { at?: number } = {}) => {
      const m = model({ startTs: NOON, ...o });
      m.inject(name, o.at ?? NOON + MIN);
      return run(m, runMs);
    };
    const range = (xs: number[]) => Math.max(...xs) - Math.min(...xs);

    it('FALL_SILENT: free fall and an impact > 2 g, then a 30-min long lie, without a FALL event', () => {
      const readings = play('FALL_SILENT', 45 * MIN);
      expect(readings.filter((r) => r.events !== undefined)).toEqual([]);
      const [first, ...rest] = during(readings, NOON + MIN, Infinity);
      const mags = first.acc.samples.map(magnitude);
      const peak = mags.indexOf(Math.max(...mags));
      expect(mags[peak]).toBeGreaterThan(2);
      expect(Math.min(...mags.slice(Math.max(0, peak - 25), peak))).toBeLessThan(0.5);
      const after = meanVector(first.acc.samples.slice(-25));
      expect(angleDeg(meanVector(first.acc.samples.slice(0, 5)), after)).toBeGreaterThan(45);

      const lie = rest.filter((r) => Date.parse(r.ts) < NOON + 31 * MIN);
      expect(lie).toHaveLength(30 * 12 - 1);
      for (const r of lie) {
        expect(r).toMatchObject({ steps: 0, worn: true, charging: false });
        expect(r.hr).toBeGreaterThanOrEqual(65);
        expect(range(r.acc.samples.map(magnitude))).toBeLessThan(0.1);
        expect(angleDeg(meanVector(r.acc.samples), after)).toBeLessThan(5);
      }
      // Then up and about again.
      expect(during(readings, NOON + 31 * MIN, NOON + 36 * MIN).some((r) => r.steps > 0)).toBe(true);
    });

    it('NOT_WORN: off the wrist and off the charger, flat, no hr/spo2, skin at room temperature', () => {
      const readings = play('NOT_WORN', 70 * MIN);
      const off = during(readings, NOON + MIN, NOON + 61 * MIN);
      expect(off).toHaveLength(720);
      for (const r of off) {
        expect(r).toMatchObject({ worn: false, charging: false, steps: 0 });
        expect(r.hr).toBeUndefined();
        expect(r.spo2).toBeUndefined();
        for (const k of [0, 1, 2]) expect(range(r.acc.samples.map((v) => v[k]))).toBeLessThan(0.02);
      }
      expect(off[0].skinTemp).toBeGreaterThan(31);
      for (const r of off.slice(-180)) {
        expect(r.skinTemp).toBeGreaterThanOrEqual(23.5);
        expect(r.skinTemp).toBeLessThanOrEqual(26.5);
      }
      for (const r of during(readings, NOON + 61 * MIN, Infinity)) expect(r.worn).toBe(true);
    });

    it('SEDENTARY: 3 h awake on the wrist without a step or a gesture, then up', () => {
      const readings = play('SEDENTARY', 3 * 60 * MIN + 10 * MIN, { accHz: 5 });
      const sitting = during(readings, NOON + MIN, NOON + MIN + 3 * 60 * MIN);
      expect(sitting).toHaveLength(3 * 720);
      const posture = meanVector(sitting[0].acc.samples);
      for (const r of sitting) {
        expect(r).toMatchObject({ steps: 0, worn: true, charging: false });
        expect(r.hr).toBeGreaterThanOrEqual(65);
        expect(r.hr).toBeLessThanOrEqual(95);
        expect(range(r.acc.samples.map(magnitude))).toBeLessThan(0.1);
        expect(angleDeg(meanVector(r.acc.samples), posture)).toBeLessThan(3);
      }
      expect(during(readings, NOON + 181 * MIN, NOON + 186 * MIN).some((r) => r.steps > 0)).toBe(true);
    });

    it('LOW_BATTERY: from 20 % to 8 % off the charger, then charged', () => {
      const readings = play('LOW_BATTERY', 3 * 60 * MIN, { accHz: 1 });
      const low = during(readings, NOON + MIN, NOON + 121 * MIN);
      expect(low[0].battery).toBeLessThanOrEqual(20);
      expect(low.at(-1)!.battery).toBeLessThanOrEqual(8);
      low.slice(1).forEach((r, i) => expect(r.battery).toBeLessThanOrEqual(low[i].battery));
      for (const r of low) expect(r.charging).toBe(false);
      expect(low.filter((r) => r.battery <= 15).length * 5).toBeGreaterThan(60 * 60);
      const after = during(readings, NOON + 121 * MIN, Infinity);
      expect(after[0]).toMatchObject({ charging: true, worn: false });
      expect(Math.max(...after.map((r) => r.battery))).toBeGreaterThan(95);
      expect(after.at(-1)).toMatchObject({ charging: false, worn: true });
    });

    it('FEVER: skin ≥ 37.5 °C sustained (~38), hr 10–15 bpm up', () => {
      const TWO_AM = MIDNIGHT + 2 * HOUR; // asleep: a steady heart rate to compare with
      const readings = play('FEVER', 2 * HOUR, { startTs: TWO_AM - HOUR, at: TWO_AM, accHz: 1 });
      const before = during(readings, 0, TWO_AM);
      const hot = during(readings, TWO_AM + 20 * MIN, TWO_AM + HOUR);
      for (const r of hot) {
        expect(r.skinTemp).toBeGreaterThanOrEqual(37.5);
        expect(r.skinTemp).toBeLessThanOrEqual(38.5);
      }
      const hr = (rs: WireReading[]) => mean(rs.map((r) => r.hr!));
      expect(hr(hot) - hr(before)).toBeGreaterThan(8);
      expect(hr(hot) - hr(before)).toBeLessThan(18);
      expect(during(readings, TWO_AM + HOUR + 30 * MIN, Infinity).every((r) => r.skinTemp < 36)).toBe(true);
    });

    it('HYPOTHERMIA: skin ≤ 28 °C sustained (~27), on the wrist', () => {
      const readings = play('HYPOTHERMIA', 70 * MIN, { accHz: 1 });
      const cold = during(readings, NOON + 16 * MIN, NOON + 61 * MIN);
      for (const r of cold) {
        expect(r.skinTemp).toBeLessThanOrEqual(28);
        expect(r.skinTemp).toBeGreaterThanOrEqual(26.5);
        expect(r.worn).toBe(true);
      }
    });

    it('WANDERING: walks away from home, past 500 m, and is back home when it ends', () => {
      const home = { lat: 48.84, lon: 2.3 };
      const readings = play('WANDERING', 50 * MIN, { accHz: 1, home });
      const away = during(readings, NOON + MIN, NOON + 46 * MIN);
      const d = away.map((r) => distanceM(r.location!, home));
      expect(d[12 * 15]).toBeGreaterThan(500); // within 15 min
      expect(d.at(-1)!).toBeGreaterThan(2000);
      for (let i = 12; i < d.length; i += 12) expect(d[i]).toBeGreaterThan(d[i - 12]); // further every minute
      expect(away.filter((r) => r.steps > 0).length).toBe(away.length);
      for (const r of during(readings, NOON + 46 * MIN, Infinity)) expect(distanceM(r.location!, home)).toBeLessThan(30);
    });

    it('OUT_OF_RANGE: readings unchanged, but marked as held until it ends', () => {
      const m = model({ startTs: NOON, accHz: 1 });
      m.inject('OUT_OF_RANGE', NOON + MIN, 10 * MIN);
      const held: (number | undefined)[] = [];
      const readings: WireReading[] = [];
      for (let i = 0; i < 12 * 15; i++) {
        const ts = m.nextTs;
        readings.push(m.next());
        held.push(m.outOfRangeUntil(ts));
      }
      expect(readings).toEqual(run(model({ startTs: NOON, accHz: 1 }), 15 * MIN));
      readings.forEach((r, i) => {
        const inside = Date.parse(r.ts) >= NOON + MIN && Date.parse(r.ts) < NOON + 11 * MIN;
        expect(held[i]).toBe(inside ? NOON + 11 * MIN : undefined);
      });
    });

    it('every scenario makes readings that ingest accepts without a flag', () => {
      const problems: string[] = [];
      for (const name of SCENARIO_NAMES) {
        for (const r of play(name, 20 * MIN, { accHz: 5 })) {
          const result = sanitizeReading(JSON.parse(JSON.stringify(r)), { now: Date.parse(r.ts), maxFutureSkewMs: 300_000 });
          if (result.error !== undefined || result.reading.flags) problems.push(`${name} seq ${r.seq}: ${result.error ?? result.reading.flags}`);
        }
      }
      expect(problems).toEqual([]);
    });

    it('places a scenario at a local time of a simulated day', () => {
      const m = model({ accHz: 5 });
      const at = m.scheduleScenario('FALL_SILENT', { day: 2, at: '10:00' });
      expect(at).toBe(Date.parse('2024-06-12T10:00:00+02:00'));
      const readings = run(m, 2 * 24 * HOUR + 10 * HOUR + 5 * MIN);
      const impact = readings.filter((r) => Math.max(...r.acc.samples.map(magnitude)) > 2);
      expect(impact.map((r) => r.ts)).toEqual([new Date(at).toISOString()]);
      // Local time follows DST: Paris moves to UTC+2 on 31 March 2024 at 02:00.
      const spring = model({ startTs: Date.parse('2024-03-30T12:00:00Z') });
      expect(spring.localTs(0, '12:00')).toBe(Date.parse('2024-03-30T12:00:00+01:00'));
      expect(spring.localTs(1, 3 * 60 + 30)).toBe(Date.parse('2024-03-31T03:30:00+02:00'));
      expect(() => spring.localTs(0, '24:00')).toThrow(RangeError);
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
