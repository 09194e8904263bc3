/**
 * Each detector on the simulator's realistic days (issue: a fall with a long lie, a night of
 * sleep, a sedentary day, a band taken off, a phone out of range for an hour, …), and a
 * normal week of 20 residents that must raise no alert at all.
 */
import { describe, expect, it } from 'vitest';
import { simulatedResidents } from '../simulator/offline.js';
import type { ScenarioName } from '../simulator/resident-model.js';
import type { AlertChange } from '../store/types.js';
import { raisedTypes, runResident } from './testing/simulated-days.js';

const MONDAY = Date.parse('2024-06-10T00:00:00+02:00');
const DAY = 86_400_000;

/** Resident n on a two-day run with one scenario on day 1 at `at` (local). */
function scenarioDay(name: ScenarioName, at: string, n = 3, durationMs?: number) {
  const resident = simulatedResidents(n, { startTs: MONDAY, accHz: 20 })[n - 1];
  const startTs = resident.model.scheduleScenario(name, { day: 1, at }, durationMs);
  const run = runResident(resident, MONDAY + 2 * DAY);
  return { ...run, startTs, raised: raisedTypes(run.changes) };
}

const raisesOf = (changes: AlertChange[], type: string) => changes.filter((c): c is Extract<AlertChange, { kind: 'raise' }> => c.kind === 'raise' && c.alert.type === type);

describe('detectors on simulated days', () => {
  it('a fall without the band’s own FALL event, then a long lie: FALL at once, INACTIVITY 15 min later', () => {
    const { changes, startTs, raised } = scenarioDay('FALL_SILENT', '10:00');
    const [fall] = raisesOf(changes, 'FALL');
    expect(fall, raised.join()).toBeDefined();
    expect(fall.alert.openedAt - startTs).toBeLessThan(10_000);
    expect(fall.alert.evidence.source).toBe('accelerometer');
    const [lie] = raisesOf(changes, 'INACTIVITY');
    expect(lie.alert.evidence.afterFall).toBe(true);
    expect(lie.alert.openedAt).toBeGreaterThanOrEqual(fall.alert.openedAt - 10_000);
    expect(raised.filter((t) => t !== 'FALL' && t !== 'INACTIVITY')).toEqual([]);
  });

  it('a sedentary afternoon: INACTIVITY after 2 h, resolved when the resident gets up', () => {
    const { changes, startTs, raised } = scenarioDay('SEDENTARY', '13:00');
    expect(raised).toEqual(['INACTIVITY']);
    const [alert] = raisesOf(changes, 'INACTIVITY');
    expect(alert.alert.evidence.afterFall).toBe(false);
    expect(alert.alert.evidence.stillForMs as number).toBeGreaterThanOrEqual(2 * 3_600_000);
    expect(Math.abs(alert.alert.openedAt - startTs)).toBeLessThan(30 * 60_000); // already seated a little before
    expect(changes.some((c) => c.kind === 'resolve' && c.type === 'INACTIVITY')).toBe(true);
  });

  it('a band taken off by day: NOT_WORN, and no inactivity', () => {
    const { raised } = scenarioDay('NOT_WORN', '11:00');
    expect(raised).toEqual(['NOT_WORN']);
  });

  it('a draining battery: BATTERY_LOW once', () => {
    expect(scenarioDay('LOW_BATTERY', '09:00').raised).toEqual(['BATTERY_LOW']);
  });

  it('fever and cold skin: TEMP_HIGH, TEMP_LOW', () => {
    expect(scenarioDay('FEVER', '15:00').raised).toEqual(['TEMP_HIGH']);
    expect(scenarioDay('HYPOTHERMIA', '15:00').raised).toEqual(['TEMP_LOW']);
  });

  it('a walk away from home: WANDERING, resolved back home', () => {
    const { changes, raised } = scenarioDay('WANDERING', '14:00');
    expect(raised).toEqual(['WANDERING']);
    expect(changes.some((c) => c.kind === 'resolve' && c.type === 'WANDERING')).toBe(true);
  });

  it('a phone out of range for an hour during a fall: the fall arrives late, marked with its delay', () => {
    const resident = simulatedResidents(4, { startTs: MONDAY, accHz: 20 })[3];
    resident.model.scheduleScenario('OUT_OF_RANGE', { day: 1, at: '10:00' }, 3_600_000);
    const fallAt = resident.model.scheduleScenario('FALL_SILENT', { day: 1, at: '10:20' }, 10 * 60_000);
    const { changes } = runResident(resident, MONDAY + 2 * DAY);
    const [fall] = raisesOf(changes, 'FALL');
    expect(fall).toBeDefined();
    expect(fall.alert.openedAt - fallAt).toBeLessThan(10_000);
    expect(fall.alert.delayMs!).toBeGreaterThan(30 * 60_000);
    expect(raisesOf(changes, 'DEVICE_OFFLINE')).toHaveLength(1); // silent for an hour while live
  });

  it('nights of sleep become one session each, on the right night', () => {
    const resident = simulatedResidents(2, { startTs: MONDAY, accHz: 20 })[1];
    const { summaries, changes } = runResident(resident, MONDAY + 3 * DAY);
    expect(raisedTypes(changes)).toEqual([]);
    // The run starts at midnight: the first session is the end of Sunday's night.
    const nights = summaries.sleep.map((s) => s.night);
    expect(nights).toEqual(['2024-06-09', '2024-06-10', '2024-06-11']);
    for (const s of summaries.sleep.slice(1)) {
      expect(s.totalSleepMin).toBeGreaterThan(5 * 60);
      expect(s.efficiency).toBeGreaterThan(0.7);
    }
    expect(summaries.days.map((d) => d.day)).toEqual(['2024-06-10', '2024-06-11']);
    for (const d of summaries.days) expect(d.steps).toBeGreaterThan(500);
  });
});

describe('a normal week', () => {
  it('of 20 residents raises no alert', { timeout: 240_000 }, () => {
    const started = performance.now();
    const raised: string[] = [];
    let readings = 0;
    for (const resident of simulatedResidents(20, { startTs: MONDAY, accHz: 20, seed: 7 })) {
      const run = runResident(resident, MONDAY + 7 * DAY);
      readings += run.readings;
      for (const c of run.changes) if (c.kind === 'raise') raised.push(`${resident.deviceId} ${new Date(c.alert.openedAt).toISOString()} ${c.alert.type} ${JSON.stringify(c.alert.evidence)}`);
    }
    console.log(`normal week: ${readings} readings through every detector in ${((performance.now() - started) / 1000).toFixed(1)} s`);
    expect(raised).toEqual([]);
  });
});
