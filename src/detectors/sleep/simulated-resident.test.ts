/**
 * The sleep and daily-activity detectors on the simulator's resident (src/simulator/
 * resident-model.ts): ~22:30–06:30 asleep with turns and now and then a trip to the bathroom,
 * the band on its charger for half an hour each morning, seated and walking by day.
 */
import { describe, expect, it } from 'vitest';
import { currentDay, feedActivity, newActivityState, type DailyActivity } from '../activity/daily-activity.js';
import { ResidentModel } from '../../simulator/resident-model.js';
import { feedSleep, newSleepState, type SleepSession } from './sleep-detector.js';

const TZ = 'Europe/Paris';
const NOON = Date.parse('2024-06-10T12:00:00+02:00');
const READINGS_PER_DAY = 17_280;
/** Local date, computed independently of the detectors (sv-SE formats as YYYY-MM-DD). */
const localDate = new Intl.DateTimeFormat('sv-SE', { timeZone: TZ });

function simulate(seed: number, days: number, onHour?: (sleepJson: number, activityJson: number) => void) {
  const model = new ResidentModel({ deviceId: 'band-0001', seed, startTs: NOON, accHz: 20, timezone: TZ });
  const sleep = newSleepState();
  const activity = newActivityState();
  const sessions: SleepSession[] = [];
  const daily: DailyActivity[] = [];
  const stepsByDay = new Map<string, number>();
  for (let i = 0; i < days * READINGS_PER_DAY; i++) {
    const r = model.next();
    const input = { ts: Date.parse(r.ts), acc: r.acc, worn: r.worn, charging: r.charging, hr: r.hr, steps: r.steps };
    sessions.push(...feedSleep(sleep, input, TZ).sessions);
    daily.push(...feedActivity(activity, input, TZ).days);
    const day = localDate.format(input.ts);
    stepsByDay.set(day, (stepsByDay.get(day) ?? 0) + r.steps);
    if (onHour && i % 720 === 0) onHour(JSON.stringify(sleep).length, JSON.stringify(activity).length);
  }
  return { sessions, daily, today: currentDay(activity), stepsByDay };
}

describe('sleep and activity on the simulated resident', () => {
  it('finds one session per night with a plausible sleep time, and the day’s steps', () => {
    for (const seed of [1, 2]) {
      // Noon to noon, two days, 20 Hz.
      const { sessions, daily, today, stepsByDay } = simulate(seed, 2);
      expect(sessions.map((s) => s.night)).toEqual(['2024-06-10', '2024-06-11']);
      for (const s of sessions) {
        expect(s.totalSleepMin).toBeGreaterThan(6.5 * 60); // the model sleeps ~8 h (06:30 ± 30 min to 22:30 ± 30 min)
        expect(s.totalSleepMin).toBeLessThan(9 * 60);
        expect(s.efficiency).toBeGreaterThan(0.9);
        const hour = Number(new Date(s.start).toLocaleTimeString('en-GB', { timeZone: TZ, hour: '2-digit', hourCycle: 'h23' }));
        expect(hour === 21 || hour === 22 || hour === 23).toBe(true);
        expect(s.awakenings).toBeLessThanOrEqual(3);
      }
      expect(daily.map((d) => d.day)).toEqual(['2024-06-10', '2024-06-11']);
      for (const d of daily) expect(d.steps).toBe(stepsByDay.get(d.day));
      expect(today!.day).toBe('2024-06-12');
      expect(today!.steps).toBe(stepsByDay.get('2024-06-12'));
      const full = daily[1];
      expect(full.wornMinutes).toBeGreaterThan(23 * 60); // all but the half hour on the charger
      expect(full.wornMinutes).toBeLessThan(24 * 60 - 20);
      expect(full.activeMinutes).toBeGreaterThan(20);
      expect(full.longestSedentaryMin).toBeGreaterThan(30);
      expect(full.longestSedentaryMin).toBeLessThan(5 * 60); // not the night
    }
  });

  it('keeps its state small over a simulated week', () => {
    let maxSleep = 0;
    let maxActivity = 0;
    const { sessions } = simulate(3, 7, (s, a) => {
      maxSleep = Math.max(maxSleep, s);
      maxActivity = Math.max(maxActivity, a);
    });
    expect(sessions).toHaveLength(7);
    expect(maxSleep).toBeLessThan(2048);
    expect(maxActivity).toBeLessThan(2048);
  });
});
