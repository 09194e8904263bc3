/**
 * The simulator itself must not produce abnormal days: a normal week of 6 residents, checked
 * against every detector's trigger by its raw values, raises nothing (the 20-resident week
 * through the real detectors is src/detectors/simulated-days.test.ts). At 20 Hz, the rate the detector
 * tests use; the time it takes is printed.
 */
import { describe, expect, it } from 'vitest';
import { LocalClock } from '../core/local-time.js';
import { generateReadings, simulatedResidents } from './offline.js';
import { distanceM } from './testing/geo.js';

const RESIDENTS = 6;
const MONDAY = Date.parse('2024-06-10T00:00:00+02:00');
const DAY = 86_400_000;
const WEEK = 7 * DAY;
const range = (s: number[][], k: number) => {
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of s) {
    if (v[k] < lo) lo = v[k];
    if (v[k] > hi) hi = v[k];
  }
  return hi - lo;
};

describe('a normal week', () => {
  it('of 6 residents at 20 Hz raises no alert by construction', () => {
    const clock = new LocalClock('Europe/Paris');
    const problems: string[] = [];
    const started = performance.now();
    let readings = 0;
    let generationMs = 0;
    for (const resident of simulatedResidents(RESIDENTS, { startTs: MONDAY, accHz: 20 })) {
      const { deviceId, homeLocation } = resident;
      const problem = (ts: string, what: string) => problems.length < 50 && problems.push(`${deviceId} ${ts}: ${what}`);
      let stillSince: string | undefined;
      let stillCount = 0;
      let flatCount = 0;
      let wornSince = -Infinity;
      let prevSeq = -1;
      const chargedOn = new Set<number>();
      const stepsOn = new Map<number, number>();
      let t = performance.now();
      for (const r of generateReadings(resident.model, MONDAY, MONDAY + WEEK)) {
        generationMs += performance.now() - t;
        readings++;
        const ts = Date.parse(r.ts);
        const { day, minute } = clock.at(ts);
        const daytime = minute >= 450 && minute < 1290; // 07:30–21:30: everyone is up
        if (r.seq !== prevSeq + 1) problem(r.ts, `seq ${r.seq} after ${prevSeq}`);
        prevSeq = r.seq;
        if (r.battery <= 15) problem(r.ts, `battery ${r.battery} %`); // BATTERY_LOW
        if (r.events) problem(r.ts, `events ${r.events.join()}`); // SOS, FALL
        if (!r.worn && !r.charging) problem(r.ts, 'off the wrist, not charging'); // NOT_WORN
        if (r.worn && !r.charging) {
          if (wornSince < 0) wornSince = ts;
          if (r.hr === undefined || r.hr < 50 || r.hr > 100) problem(r.ts, `hr ${r.hr}`); // HR_HIGH / HR_LOW
          if (r.spo2 === undefined || r.spo2 < 94) problem(r.ts, `spo2 ${r.spo2}`); // SPO2_LOW
          // TEMP_HIGH / TEMP_LOW (a band just put back on has a few minutes to warm up).
          if (ts - wornSince > 5 * 60_000 && (r.skinTemp < 30 || r.skinTemp > 36)) problem(r.ts, `skin ${r.skinTemp} °C`);
        } else {
          wornSince = -1;
          if (r.hr !== undefined) problem(r.ts, 'hr off the wrist');
        }
        if (r.charging) chargedOn.add(day);
        stepsOn.set(day, (stepsOn.get(day) ?? 0) + r.steps);
        // INACTIVITY: worn, not charging, awake, no step for 2 h by day.
        if (daytime && r.worn && !r.charging && r.steps === 0) {
          stillSince ??= r.ts;
          if (++stillCount === (2 * 3_600_000) / 5000) problem(stillSince, 'still for 2 h');
        } else {
          stillSince = undefined;
          stillCount = 0;
        }
        // NOT_WORN (flat signal): worn by day, yet no axis moves 0.02 g for 15 min.
        const flat = range(r.acc.samples, 0) < 0.02 && range(r.acc.samples, 1) < 0.02 && range(r.acc.samples, 2) < 0.02;
        if (daytime && r.worn && flat) {
          if (++flatCount === (15 * 60_000) / 5000) problem(r.ts, 'flat for 15 min on the wrist');
        } else flatCount = 0;
        // Asleep on the wrist after 01:00 (a bedtime charge is over by then).
        if (minute >= 60 && minute < 300 && !r.worn) problem(r.ts, 'not worn at night');
        // WANDERING: the phone stays within the 200-m geofence.
        if (!r.location) problem(r.ts, 'no location');
        else if (distanceM(r.location, homeLocation) > homeLocation.radiusM) problem(r.ts, `${Math.round(distanceM(r.location, homeLocation))} m from home`);
        t = performance.now();
      }
      if (prevSeq !== WEEK / 5000 - 1) problem('end', `${prevSeq + 1} readings`);
      if (chargedOn.size < 7) problem('week', `charged on ${chargedOn.size} days`);
      for (const [day, steps] of stepsOn) if (steps < 2000 || steps > 15_000) problem(String(day), `${steps} steps`);
    }
    const totalS = (performance.now() - started) / 1000;
    console.log(
      `normal week: ${readings} readings of ${RESIDENTS} residents at 20 Hz generated in ${(generationMs / 1000).toFixed(1)} s ` +
        `(${Math.round(readings / (generationMs / 1000))} readings/s), checked in ${totalS.toFixed(1)} s`,
    );
    expect(problems).toEqual([]);
    expect(readings).toBe((RESIDENTS * WEEK) / 5000);
  }, 300_000);
});
