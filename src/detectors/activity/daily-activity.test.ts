import { describe, expect, it } from 'vitest';
import { at, HOUR, MIN, readingsFor, type Segment } from '../sleep/testing/signals.js';
import {
  currentDay,
  feedActivity,
  newActivityState,
  type ActivityDrop,
  type ActivityInput,
  type ActivityState,
  type DailyActivity,
} from './daily-activity.js';

const PARIS = 'Europe/Paris';

function run(readings: readonly ActivityInput[], tz = PARIS, st = newActivityState()) {
  const days: DailyActivity[] = [];
  const drops: ActivityDrop[] = [];
  for (const r of readings) {
    const o = feedActivity(st, r, tz);
    days.push(...o.days);
    if (o.drop) drops.push(o.drop);
  }
  return { days, drops, st };
}

/** Local date of an instant, computed independently of the detector. */
const localDate = (ts: number, tz: string) => new Date(ts).toLocaleDateString('sv-SE', { timeZone: tz });

describe('daily activity', () => {
  it('sums steps per local day across midnight', () => {
    for (const [tz, off] of [
      [PARIS, '+02:00'],
      ['America/New_York', '-04:00'],
    ] as const) {
      const segs: Segment[] = [
        { from: at(`2026-06-10T23:40:00${off}`), to: at(`2026-06-11T00:20:00${off}`), what: 'walking' },
        { from: at(`2026-06-11T00:20:00${off}`), to: at(`2026-06-11T01:00:00${off}`), what: 'seated' },
      ];
      const readings = readingsFor(segs);
      const { days, st } = run(readings, tz);
      const sum = (d: string) => readings.filter((r) => localDate(r.ts, tz) === d).reduce((a, r) => a + r.steps, 0);
      expect(sum('2026-06-10')).toBeGreaterThan(150);
      expect(days).toEqual([{ day: '2026-06-10', steps: sum('2026-06-10'), activeMinutes: 20, longestSedentaryMin: 0, wornMinutes: 20 }]);
      const today = currentDay(st)!;
      expect(today.day).toBe('2026-06-11');
      expect(today.steps).toBe(sum('2026-06-11'));
      expect(today.activeMinutes).toBe(20);
    }
  });

  it('counts the minutes of a 23-hour day (Europe/Paris, spring forward)', () => {
    const segs: Segment[] = [{ from: at('2026-03-29T00:00:00+01:00'), to: at('2026-03-30T00:05:00+02:00'), what: 'seated' }];
    const { days } = run(readingsFor(segs, { hz: 1 }));
    expect(days).toHaveLength(1);
    expect(days[0].day).toBe('2026-03-29');
    expect(days[0].wornMinutes).toBe(23 * 60);
  });

  it('counts active minutes from 60 steps per minute', () => {
    const t0 = at('2026-06-10T10:00:00+02:00');
    const readings: ActivityInput[] = [];
    for (let i = 0; i < 60 * 12; i++) {
      const minute = Math.floor(i / 12);
      // 10 min brisk (9 steps / 5 s = 108/min), 10 min at 60/min exactly, 10 min shuffling (4 / 5 s = 48/min), then none.
      const steps = minute < 10 ? 9 : minute < 20 ? 5 : minute < 30 ? 4 : 0;
      readings.push({ ts: t0 + i * 5000, steps, worn: true });
    }
    readings.push({ ts: t0 + 24 * HOUR, steps: 0, worn: true });
    const { days } = run(readings);
    expect(days[0].activeMinutes).toBe(20);
    expect(days[0].steps).toBe(10 * 108 + 10 * 60 + 10 * 48);
  });

  it('finds the longest sedentary bout, leaving out the night’s sleep and breaking at the charger', () => {
    const t = (s: string) => at(`2026-06-10T${s}+02:00`);
    const segs: Segment[] = [
      { from: t('00:00:00'), to: t('07:00:00'), what: 'sleep' }, // 7 h still, turns in bed: rest, not sedentary
      { from: t('07:00:00'), to: t('08:00:00'), what: 'seated' }, // 60
      { from: t('08:00:00'), to: t('08:30:00'), what: 'charger' },
      { from: t('08:30:00'), to: t('09:40:00'), what: 'seated' }, // 70
      { from: t('09:40:00'), to: t('09:45:00'), what: 'walking' },
      { from: t('09:45:00'), to: t('11:15:00'), what: 'seated' }, // 90: the longest
      { from: t('11:15:00'), to: t('11:20:00'), what: 'walking' },
      { from: t('11:20:00'), to: t('12:00:00'), what: 'seated' }, // 40
      { from: t('12:00:00'), to: t('12:20:00'), what: 'sleep' }, // a still 20 min in the armchair: still sedentary
      { from: t('12:20:00'), to: t('12:30:00'), what: 'seated' }, // 40 + 20 + 10 = 70
      { from: t('12:30:00'), to: t('12:35:00'), what: 'walking' },
      { from: t('12:35:00'), to: t('12:36:00'), what: 'seated' }, // closes the 12:34 minute
    ];
    const { st } = run(readingsFor(segs, { turnEveryMs: 40 * MIN }));
    const today = currentDay(st)!;
    expect(today.longestSedentaryMin).toBe(90);
    expect(today.wornMinutes).toBe(12 * 60 + 35 - 30);
    expect(today.activeMinutes).toBe(15);

    // Without the walk at 09:40 the two seated stretches join: 70 + 5 seated + 90.
    const joined = segs.map((s) => (s.from === t('09:40:00') ? { ...s, what: 'seated' as const } : s));
    expect(currentDay(run(readingsFor(joined, { turnEveryMs: 40 * MIN })).st)!.longestSedentaryMin).toBe(165);
  });

  it('counts a late reading’s steps into its day without touching minute statistics', () => {
    const segs: Segment[] = [
      { from: at('2026-06-10T22:00:00+02:00'), to: at('2026-06-10T22:30:00+02:00'), what: 'walking' },
      { from: at('2026-06-10T22:30:00+02:00'), to: at('2026-06-11T09:00:00+02:00'), what: 'seated' },
    ];
    const readings = readingsFor(segs);
    const { days, st } = run(readings);
    expect(days).toHaveLength(1);
    const yesterday = days[0];
    const today = currentDay(st)!;

    // Same day, an earlier minute: steps count, minute statistics stay.
    const late = feedActivity(st, { ts: at('2026-06-11T08:00:02+02:00'), steps: 70, worn: true }, PARIS);
    expect(late).toEqual({ days: [], drop: null });
    expect(currentDay(st)).toEqual({ ...today, steps: today.steps + 70 });

    // A completed day: returned again with its corrected total.
    const older = feedActivity(st, { ts: at('2026-06-10T21:00:00+02:00'), steps: 12 }, PARIS);
    expect(older).toEqual({ days: [{ ...yesterday, steps: yesterday.steps + 12 }], drop: null });
    expect(currentDay(st)).toEqual({ ...today, steps: today.steps + 70 });

    // A day with no record yet (the band was silent that day) gets one, steps only.
    expect(feedActivity(st, { ts: at('2026-06-08T12:00:00+02:00'), steps: 5 }, PARIS).days).toEqual([
      { day: '2026-06-08', steps: 5, activeMinutes: 0, longestSedentaryMin: 0, wornMinutes: 0 },
    ]);
  });

  it('gives identical output through a JSON round-trip of its state mid-stream', () => {
    const segs: Segment[] = [];
    const day0 = at('2026-06-10T00:00:00+02:00');
    for (let d = 0; d < 3; d++) {
      const t = day0 + d * 24 * HOUR;
      segs.push(
        { from: t, to: t + 7 * HOUR, what: 'sleep' },
        { from: t + 7 * HOUR, to: t + 8 * HOUR, what: 'walking' },
        { from: t + 8 * HOUR, to: t + 8.5 * HOUR, what: 'charger' },
        { from: t + 8.5 * HOUR, to: t + 20 * HOUR, what: 'seated' },
        { from: t + 20 * HOUR, to: t + 20.5 * HOUR, what: 'walking' },
        { from: t + 20.5 * HOUR, to: t + 24 * HOUR, what: 'seated' },
      );
    }
    const readings = readingsFor(segs, { hz: 20, seed: 4, turns: 'random' });
    const straight = run(readings);
    let st = newActivityState();
    const days: DailyActivity[] = [];
    readings.forEach((r, i) => {
      if (i % 1009 === 0) st = JSON.parse(JSON.stringify(st)) as ActivityState;
      days.push(...feedActivity(st, r, PARIS).days);
    });
    expect(days).toHaveLength(2);
    expect(days).toEqual(straight.days);
    expect(st).toEqual(straight.st);
    expect(currentDay(st)).toEqual(currentDay(straight.st));
  });
});

describe('daily activity: weekly drop insight', () => {
  const DAY = 24 * HOUR;
  const start = at('2026-01-05T00:00:00+01:00');

  /** One reading a minute, all day (worn unless said otherwise), the day's steps at 10:00. */
  function days(st: ActivityState, from: number, stepsPerDay: readonly number[], wornHours = 24) {
    const raised: { day: number; drop: ActivityDrop }[] = [];
    stepsPerDay.forEach((steps, i) => {
      const t = from + i * DAY;
      for (let m = 0; m < 24 * 60; m++) {
        const o = feedActivity(st, { ts: t + m * MIN, steps: m === 600 ? steps : 0, worn: m < wornHours * 60 }, PARIS);
        if (o.drop) raised.push({ day: Math.round((t + m * MIN - start) / DAY), drop: o.drop });
      }
    });
    return raised;
  }
  const week = (steps: number) => Array<number>(7).fill(steps);

  it('is raised once after four normal weeks and a week at 30 %', () => {
    const st = newActivityState();
    expect(days(st, start, [...week(5000), ...week(5000), ...week(5000), ...week(5000)])).toEqual([]);
    const raised = days(st, start + 28 * DAY, [...week(1500), 5000]);
    expect(raised).toHaveLength(1);
    // The last 7 days fall under half of 35,000 with the 6th low day (day 33), completed by the first reading of day 34.
    const { day, drop } = raised[0];
    expect(day).toBe(34);
    expect(drop.day).toBe('2026-02-07');
    expect(drop.baselineWeekSteps).toBe(35_000);
    expect(drop.weekSteps).toBe(6 * 1500 + 5000);
    expect(drop.ratio).toBeCloseTo(14_000 / 35_000, 3);
    expect(st.hist.length).toBeLessThanOrEqual(35);
    expect(JSON.stringify(st).length).toBeLessThan(4096);
  });

  it('is not raised with less than four weeks of history', () => {
    const st = newActivityState();
    expect(days(st, start, [...week(5000), ...week(5000), ...week(5000), ...week(1000), 5000])).toEqual([]);
  });

  it('is not raised when the band was left off rather than the resident sitting still', () => {
    const st = newActivityState();
    days(st, start, [...week(5000), ...week(5000), ...week(5000), ...week(5000)]);
    // A week with the band on for 6 h a day: few steps recorded, but no valid day to judge from.
    expect(days(st, start + 28 * DAY, [...week(1000), 5000], 6)).toEqual([]);
  });

  it('re-arms once the week has recovered, and is raised again on a new drop', () => {
    const st = newActivityState();
    days(st, start, [...week(5000), ...week(5000), ...week(5000), ...week(5000)]);
    expect(days(st, start + 28 * DAY, week(1500))).toHaveLength(1);
    expect(st.armed).toBe(false);
    expect(days(st, start + 35 * DAY, week(1500))).toEqual([]); // the drop lasts: not repeated
    expect(days(st, start + 42 * DAY, week(5000))).toEqual([]);
    expect(st.armed).toBe(true);
    expect(days(st, start + 49 * DAY, [...week(1000), 5000])).toHaveLength(1);
    expect(st.hist.length).toBeLessThanOrEqual(35);
  });
});
