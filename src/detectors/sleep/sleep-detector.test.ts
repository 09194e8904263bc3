import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { accumulateMovement, type MoveFilter } from './movement.js';
import {
  COUNTS_PER_G_S,
  feedSleep,
  newSleepState,
  openSession,
  settleSleep,
  type ScoredEpoch,
  type SleepInput,
  type SleepSession,
  type SleepState,
} from './sleep-detector.js';
import { at, HOUR, MIN, readingsFor, type Segment } from './testing/signals.js';
import { wedaFallDir } from '../../testing/datasets.js';

interface Run {
  epochs: ScoredEpoch[];
  sessions: SleepSession[];
  st: SleepState;
}

function run(readings: readonly SleepInput[], tz: string, settleAt?: number, st = newSleepState()): Run {
  const epochs: ScoredEpoch[] = [];
  const sessions: SleepSession[] = [];
  for (const r of readings) {
    const o = feedSleep(st, r, tz);
    epochs.push(...o.epochs);
    sessions.push(...o.sessions);
  }
  if (settleAt !== undefined) {
    const o = settleSleep(st, settleAt, tz);
    epochs.push(...o.epochs);
    sessions.push(...o.sessions);
  }
  return { epochs, sessions, st };
}

/** An evening of TV, a night in bed with two awakenings (15 min awake, 5 min to the bathroom), a morning. */
function nightWithAwakenings(): Segment[] {
  const t = (s: string) => at(`${s}+02:00`);
  return [
    { from: t('2026-06-10T19:00:00'), to: t('2026-06-10T23:00:00'), what: 'seated' },
    { from: t('2026-06-10T23:00:00'), to: t('2026-06-11T02:00:00'), what: 'sleep' },
    { from: t('2026-06-11T02:00:00'), to: t('2026-06-11T02:15:00'), what: 'seated' },
    { from: t('2026-06-11T02:15:00'), to: t('2026-06-11T04:30:00'), what: 'sleep' },
    { from: t('2026-06-11T04:30:00'), to: t('2026-06-11T04:35:00'), what: 'walking' },
    { from: t('2026-06-11T04:35:00'), to: t('2026-06-11T07:00:00'), what: 'sleep' },
    { from: t('2026-06-11T07:00:00'), to: t('2026-06-11T07:20:00'), what: 'walking' },
    { from: t('2026-06-11T07:20:00'), to: t('2026-06-11T08:00:00'), what: 'seated' },
    { from: t('2026-06-11T08:00:00'), to: t('2026-06-11T08:30:00'), what: 'charger' },
    { from: t('2026-06-11T08:30:00'), to: t('2026-06-11T10:00:00'), what: 'seated' },
  ];
}

/** Seated from `evening`, asleep from `bed` to `rise`, seated for two hours after: times with their offsets. */
function plainNight(evening: string, bed: string, rise: string): Segment[] {
  return [
    { from: at(evening), to: at(bed), what: 'seated' },
    { from: at(bed), to: at(rise), what: 'sleep' },
    { from: at(rise), to: at(rise) + 2 * HOUR, what: 'seated' },
  ];
}

const near = (actual: number, expected: number, tolMs: number) => expect(Math.abs(actual - expected)).toBeLessThanOrEqual(tolMs);

describe('sleep detector: sessions', () => {
  it('finds one session on the right night, with its sleep time, efficiency and awakenings', () => {
    const tz = 'Europe/Paris';
    for (const hz of [20, 50, 100]) {
      const { epochs, sessions, st } = run(readingsFor(nightWithAwakenings(), { hz, seed: 3, turnEveryMs: 45 * MIN }), tz);
      // Final without settling: the morning's hour awake closes it.
      expect(sessions).toHaveLength(1);
      const s = sessions[0];
      expect(s.night).toBe('2026-06-10');
      near(s.start, at('2026-06-10T23:00:00+02:00'), 5 * MIN);
      near(s.end, at('2026-06-11T07:00:00+02:00'), 5 * MIN);
      // 480 min in bed, 20 of them awake; Cole–Kripke's window widens each wake bout by a few minutes.
      expect(s.totalSleepMin).toBeGreaterThanOrEqual(430);
      expect(s.totalSleepMin).toBeLessThanOrEqual(460);
      expect(s.efficiency).toBeGreaterThan(0.9);
      expect(s.efficiency).toBeLessThanOrEqual(0.96);
      expect(s.efficiency).toBeCloseTo(s.totalSleepMin / ((s.end - s.start) / MIN), 3);
      expect(s.awakenings).toBe(2);
      expect(s.wasoMin).toBeGreaterThanOrEqual(20);
      expect(s.wasoMin).toBeLessThanOrEqual(40);
      expect(s.onsetLatencyMin).toBeUndefined();
      // The evening of TV before it: awake throughout.
      const evening = epochs.filter((e) => e.start < at('2026-06-10T23:00:00+02:00'));
      expect(evening.length).toBe(240);
      expect(evening.filter((e) => e.asleep)).toEqual([]);
      expect(openSession(st, tz)).toBeNull();
    }
  });

  it('shows the session in progress before it is final', () => {
    const tz = 'Europe/Paris';
    const readings = readingsFor(nightWithAwakenings(), { seed: 3 });
    const until = at('2026-06-11T03:00:00+02:00');
    const { sessions, st } = run(
      readings.filter((r) => r.ts < until),
      tz,
    );
    expect(sessions).toEqual([]);
    const live = openSession(st, tz);
    expect(live).not.toBeNull();
    expect(live!.night).toBe('2026-06-10');
    near(live!.start, at('2026-06-10T23:00:00+02:00'), 5 * MIN);
    expect(live!.end).toBeLessThanOrEqual(until);
    expect(live!.end).toBeGreaterThan(until - 10 * MIN);
  });

  it('assigns the night by local noon-to-noon day across a DST change (Europe/Paris, spring forward)', () => {
    // 2026-03-29 02:00 CET → 03:00 CEST: 23:00 to 07:00 local is 7 hours.
    const segs = plainNight('2026-03-28T20:00:00+01:00', '2026-03-28T23:00:00+01:00', '2026-03-29T07:00:00+02:00');
    const { sessions } = run(readingsFor(segs, { seed: 5 }), 'Europe/Paris');
    expect(sessions).toHaveLength(1);
    const s = sessions[0];
    expect(s.night).toBe('2026-03-28');
    near(s.start, at('2026-03-28T23:00:00+01:00'), 5 * MIN);
    near(s.end, at('2026-03-29T07:00:00+02:00'), 5 * MIN);
    near(s.end - s.start, 7 * HOUR, 10 * MIN);
    expect(s.totalSleepMin).toBeGreaterThanOrEqual(405);
    expect(s.totalSleepMin).toBeLessThanOrEqual(421);
    expect(s.awakenings).toBe(0);
  });

  it('assigns the night by local noon-to-noon day across a DST change (America/New_York, fall back)', () => {
    // 2026-11-01 02:00 EDT → 01:00 EST: 23:00 to 07:00 local is 9 hours.
    const segs = plainNight('2026-10-31T20:00:00-04:00', '2026-10-31T23:00:00-04:00', '2026-11-01T07:00:00-05:00');
    const { sessions } = run(readingsFor(segs, { seed: 6 }), 'America/New_York');
    expect(sessions).toHaveLength(1);
    expect(sessions[0].night).toBe('2026-10-31');
    near(sessions[0].end - sessions[0].start, 9 * HOUR, 10 * MIN);
    expect(sessions[0].totalSleepMin).toBeGreaterThanOrEqual(525);
  });

  it('gives a night begun after midnight to the evening before, in the resident’s zone', () => {
    const segs = plainNight('2026-06-10T21:00:00+09:00', '2026-06-11T00:30:00+09:00', '2026-06-11T08:00:00+09:00');
    const readings = readingsFor(segs, { seed: 7 });
    expect(run(readings, 'Asia/Tokyo').sessions.map((s) => s.night)).toEqual(['2026-06-10']);
    // The same instants for a resident in Los Angeles: from 08:30 on 2026-06-10, before local noon → the night of 06-09.
    expect(run(readings, 'America/Los_Angeles').sessions.map((s) => s.night)).toEqual(['2026-06-09']);
    // In Paris: from 17:30 on 2026-06-10 → that evening's night.
    expect(run(readings, 'Europe/Paris').sessions.map((s) => s.night)).toEqual(['2026-06-10']);
  });

  it('does not take a quiet evening of TV with small gestures for sleep', () => {
    const segs: Segment[] = [{ from: at('2026-06-10T18:00:00+02:00'), to: at('2026-06-10T22:00:00+02:00'), what: 'seated' }];
    for (const hz of [20, 25, 50, 100]) {
      for (const seed of [1, 2, 3]) {
        const { epochs, sessions, st } = run(readingsFor(segs, { hz, seed }), 'Europe/Paris', at('2026-06-11T12:00:00+02:00'));
        expect(epochs).toHaveLength(240);
        expect(epochs.filter((e) => e.asleep)).toEqual([]);
        expect(Math.min(...epochs.map((e) => e.count))).toBeGreaterThan(25);
        expect(sessions).toEqual([]);
        expect(openSession(st, 'Europe/Paris')).toBeNull();
      }
    }
  });

  it('never scores an off-wrist epoch as sleep', () => {
    for (const what of ['charger', 'table'] as const) {
      const segs: Segment[] = [{ from: at('2026-06-10T23:00:00+02:00'), to: at('2026-06-11T07:00:00+02:00'), what }];
      const { epochs, sessions } = run(readingsFor(segs), 'Europe/Paris', at('2026-06-11T12:00:00+02:00'));
      expect(epochs).toHaveLength(480);
      expect(epochs.every((e) => e.offWrist && !e.asleep && e.hrMean === null)).toBe(true);
      expect(sessions).toEqual([]);
    }
    // Taken off at 03:00 and left on the table: the session ends there.
    const segs: Segment[] = [
      { from: at('2026-06-10T23:00:00+02:00'), to: at('2026-06-11T03:00:00+02:00'), what: 'sleep' },
      { from: at('2026-06-11T03:00:00+02:00'), to: at('2026-06-11T07:00:00+02:00'), what: 'table' },
    ];
    const { sessions } = run(readingsFor(segs), 'Europe/Paris');
    expect(sessions).toHaveLength(1);
    near(sessions[0].end, at('2026-06-11T03:00:00+02:00'), 3 * MIN);
    expect(sessions[0].end).toBeLessThanOrEqual(at('2026-06-11T03:00:00+02:00'));
  });

  it('keeps one session across a short gap, counting the silent minutes as neither sleep nor wake', () => {
    const segs = plainNight('2026-06-10T20:00:00+02:00', '2026-06-10T23:00:00+02:00', '2026-06-11T07:00:00+02:00');
    const gapFrom = at('2026-06-11T01:00:00+02:00');
    const gapTo = gapFrom + 20 * MIN;
    const readings = readingsFor(segs, { seed: 9 }).filter((r) => r.ts < gapFrom || r.ts >= gapTo);
    const { sessions, epochs } = run(readings, 'Europe/Paris');
    expect(epochs.some((e) => e.start >= gapFrom && e.start < gapTo)).toBe(false);
    expect(sessions).toHaveLength(1);
    const s = sessions[0];
    near(s.end - s.start, 8 * HOUR, 5 * MIN);
    expect(s.totalSleepMin).toBeGreaterThanOrEqual(450);
    expect(s.totalSleepMin).toBeLessThanOrEqual(460);
    expect(s.wasoMin).toBeLessThanOrEqual(10); // a turn in bed now and then, not the 20 silent minutes
    expect(s.awakenings).toBe(0);
  });

  it('closes a session on a long silence when event time is settled, and ignores readings from before', () => {
    const tz = 'Europe/Paris';
    const segs = plainNight('2026-06-10T20:00:00+02:00', '2026-06-10T23:00:00+02:00', '2026-06-11T03:00:00+02:00').slice(0, 2);
    const { sessions, st } = run(readingsFor(segs, { seed: 4 }), tz);
    expect(sessions).toEqual([]); // the band went silent at 03:00: nothing says the night is over
    expect(settleSleep(st, at('2026-06-11T03:30:00+02:00'), tz).sessions).toEqual([]);
    const settled = settleSleep(st, at('2026-06-11T04:10:00+02:00'), tz);
    expect(settled.sessions).toHaveLength(1);
    near(settled.sessions[0].end, at('2026-06-11T03:00:00+02:00'), 3 * MIN);
    expect(settled.sessions[0].totalSleepMin).toBeGreaterThanOrEqual(235);
    expect(openSession(st, tz)).toBeNull();
    // Settling again, or a reading from before the settled time, changes nothing.
    const before = JSON.stringify(st);
    expect(settleSleep(st, at('2026-06-11T04:10:00+02:00'), tz)).toEqual({ epochs: [], sessions: [] });
    expect(feedSleep(st, { ts: at('2026-06-11T04:05:00+02:00'), worn: true, hr: 60 }, tz)).toEqual({ epochs: [], sessions: [] });
    expect(JSON.stringify(st)).toBe(before);
  });

  it('drops a short still spell: a session must span 160 min', () => {
    const segs: Segment[] = [
      { from: at('2026-06-10T13:00:00+02:00'), to: at('2026-06-10T14:00:00+02:00'), what: 'seated' },
      { from: at('2026-06-10T14:00:00+02:00'), to: at('2026-06-10T15:30:00+02:00'), what: 'sleep' },
      { from: at('2026-06-10T15:30:00+02:00'), to: at('2026-06-10T17:30:00+02:00'), what: 'seated' },
    ];
    const tz = 'Europe/Paris';
    const { epochs, sessions, st } = run(readingsFor(segs), tz);
    expect(epochs.filter((e) => e.asleep).length).toBeGreaterThan(80);
    expect(sessions).toEqual([]);
    expect(openSession(st, tz)).toBeNull();
  });
});

describe('sleep detector: streaming and state', () => {
  it('scores an epoch once its two following epochs are known', () => {
    const tz = 'Europe/Paris';
    const t0 = at('2026-06-10T23:00:00+02:00');
    const readings = readingsFor([{ from: t0, to: t0 + 10 * MIN, what: 'sleep' }]);
    const st = newSleepState();
    const scoredAt: number[][] = [];
    for (const r of readings) scoredAt.push(feedSleep(st, r, tz).epochs.map((e) => e.start));
    // The first reading of minute 3 scores minute 0, of minute 4 minute 1, and so on.
    for (let i = 0; i < readings.length; i++) {
      const minute = Math.floor((readings[i].ts - t0) / MIN);
      const first = (readings[i].ts - t0) % MIN === 0;
      expect(scoredAt[i]).toEqual(first && minute >= 3 ? [t0 + (minute - 3) * MIN] : []);
    }
    // Silence: settling at the start of minute 12 closes minutes 7–9 (their followers are known to be empty).
    const settled = settleSleep(st, t0 + 12 * MIN, tz).epochs.map((e) => (e.start - t0) / MIN);
    expect(settled).toEqual([7, 8, 9]);
  });

  it('ignores a reading older than the epoch being accumulated', () => {
    const tz = 'Europe/Paris';
    const readings = readingsFor(nightWithAwakenings(), { seed: 2 });
    const { st } = run(readings.slice(0, 2000), tz);
    const before = JSON.stringify(st);
    const late = { ...readings[1990], ts: readings[1999].ts - 2 * MIN };
    expect(feedSleep(st, late, tz)).toEqual({ epochs: [], sessions: [] });
    expect(JSON.stringify(st)).toBe(before);
  });

  it('shrugs off malformed bursts without poisoning its state', () => {
    const tz = 'Europe/Paris';
    const t0 = at('2026-06-10T23:00:00+02:00');
    const clean = readingsFor([{ from: t0, to: t0 + 30 * MIN, what: 'sleep' }]);
    const dirty: SleepInput[] = clean.flatMap((r, i) =>
      i % 50 === 7
        ? [
            r,
            { ts: Number.NaN, worn: true },
            { ts: r.ts + 1, acc: { hz: 0, samples: [[0, 0, 1]] } },
            { ts: r.ts + 2, acc: { hz: 20, samples: [[Number.NaN, 0, 1], [0, 1], [Infinity, 0, 0]] }, hr: Number.NaN },
          ]
        : [r],
    );
    const a = run(clean, tz, t0 + HOUR);
    const b = run(dirty, tz, t0 + HOUR);
    // The bad bursts are skipped whole: same epochs, same counts, same state.
    expect(b.epochs).toEqual(a.epochs);
    expect(b.st).toEqual(a.st);
    expect(JSON.parse(JSON.stringify(b.st))).toEqual(b.st); // no NaN in it (JSON would turn it into null)
  });

  it('gives identical output through a JSON round-trip of its state mid-stream', () => {
    const tz = 'Europe/Paris';
    const readings = readingsFor(nightWithAwakenings(), { seed: 11, turns: 'random' });
    const straight = run(readings, tz, at('2026-06-12T00:00:00+02:00'));
    let st = newSleepState();
    const epochs: ScoredEpoch[] = [];
    const sessions: SleepSession[] = [];
    readings.forEach((r, i) => {
      if (i % 997 === 0) st = JSON.parse(JSON.stringify(st)) as SleepState;
      const o = feedSleep(st, r, tz);
      epochs.push(...o.epochs);
      sessions.push(...o.sessions);
    });
    st = JSON.parse(JSON.stringify(st)) as SleepState;
    const o = settleSleep(st, at('2026-06-12T00:00:00+02:00'), tz);
    epochs.push(...o.epochs);
    sessions.push(...o.sessions);
    expect(sessions).toHaveLength(1);
    expect(sessions).toEqual(straight.sessions);
    expect(epochs).toEqual(straight.epochs);
    expect(st).toEqual(straight.st);
  });
});

/** WEDA-FALL: real 50 Hz wrist recordings (Fitbit Sense), young and 77–95-year-old wearers. */
const DATASET = wedaFallDir();
const WEDA = DATASET ? `${DATASET}/50Hz/` : '';

describe.skipIf(!DATASET)('movement counts on real wrist recordings (WEDA-FALL)', () => {
  const load = (act: string) =>
    readdirSync(WEDA + act)
      .sort()
      .map((f) =>
        readFileSync(`${WEDA}${act}/${f}`, 'utf8')
          .trim()
          .split('\n')
          .slice(1)
          .map((line) => line.split(',').slice(1).map((v) => Number(v) / 9.81)), // m/s² → g; index by row (≈ 50 Hz)
      );
  /** Counts per minute of a stretch, fed as the phone would: 5-s bursts. */
  const perMinute = (rows: number[][]) => {
    const holder = { mv: null as MoveFilter | null };
    const sum = { g: 0, c: 0 };
    for (let i = 0; i < rows.length; i += 250) accumulateMovement(holder, i * 20, { hz: 50, samples: rows.slice(i, i + 250) }, sum);
    return (COUNTS_PER_G_S * sum.g * 60) / sum.c;
  };

  it('reads walking far above the sleep boundary and a still wrist near zero', () => {
    const walking = load('D01').map(perMinute);
    expect(walking.length).toBeGreaterThan(50);
    expect(Math.min(...walking)).toBeGreaterThan(400); // Cole–Kripke's sustained boundary is ~25 counts/min
    // "Sit on a chair, wait, get up": the quietest 2 s of each recording.
    const quietest = load('D04').map((rows) => {
      let q = Infinity;
      for (let i = 0; i + 100 <= rows.length; i += 25) q = Math.min(q, perMinute(rows.slice(i, i + 100)));
      return q;
    });
    // Many of these recordings never hold still for 2 s; those that do read (nearly) nothing.
    expect(quietest.filter((q) => q < 2).length).toBeGreaterThanOrEqual(15);
  });
});
