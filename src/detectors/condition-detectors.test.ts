/** Inactivity, device health, geofence and the resting baseline, on crafted signals. */
import { describe, expect, it } from 'vitest';
import type { Reading } from '../core/reading.js';
import type { AlertChange } from '../store/types.js';
import { DEFAULT_DETECTION_SETTINGS as S } from './detection-settings.js';
import { checkOffline, newHealthState, stepHealth } from './device-health.js';
import { distanceM, newGeofenceState, stepGeofence } from './geofence.js';
import { newInactivityState, stepInactivity } from './inactivity.js';
import { burstMotion } from './motion.js';
import { addSleepingPulse, newBaselineState, restingHr } from './resting-baseline.js';
import { burst, MOVING, series, STILL } from './testing/readings.js';

const T0 = Date.UTC(2026, 0, 5, 9); // 09:00 UTC: waking hours in UTC
const ctx = { residentId: 'res-1', deviceId: 'band-1', now: T0 };
const MIN = 60_000;

function runInactivity(readings: Reading[], opts: { awake?: boolean; lastFallTs?: number | null } = {}) {
  const st = newInactivityState();
  const changes: (AlertChange & { i: number })[] = [];
  readings.forEach((reading, i) => {
    const c = stepInactivity(st, { reading, motion: burstMotion(reading.acc), awake: opts.awake ?? true, lastFallTs: opts.lastFallTs ?? null }, S, ctx);
    if (c) changes.push({ ...c, i });
  });
  return changes;
}

describe('inactivity', () => {
  const still2h = series('band-1', T0, (2 * 60 * MIN) / 5000 + 2, () => ({ worn: true, charging: false, steps: 0, acc: STILL }));

  it('opens after 2 h worn, awake and still, once, with the run start as its opening time', () => {
    const changes = runInactivity(still2h);
    expect(changes).toHaveLength(1);
    expect(changes[0]).toMatchObject({ kind: 'raise', alert: { type: 'INACTIVITY', openedAt: T0, severity: 'medium' } });
    expect(changes[0].i * 5000).toBe(2 * 60 * MIN);
  });

  it('is not raised while asleep (outside waking hours), on the charger, off the wrist, or with movement', () => {
    expect(runInactivity(still2h, { awake: false })).toEqual([]);
    expect(runInactivity(still2h.map((r) => ({ ...r, charging: true })))).toEqual([]);
    expect(runInactivity(still2h.map((r) => ({ ...r, worn: false })))).toEqual([]);
    expect(runInactivity(still2h.map((r, i) => (i % 600 === 300 ? { ...r, acc: MOVING } : r)))).toEqual([]);
    expect(runInactivity(still2h.map((r, i) => (i % 600 === 300 ? { ...r, steps: 4 } : r)))).toEqual([]);
  });

  it('counts a slow change of wrist angle beyond 5° as movement (van Hees 2015)', () => {
    const turned = still2h.map((r, i) => (i > 700 ? { ...r, acc: burst([0.6, 0.2, 0.78]) } : r));
    expect(runInactivity(turned)).toEqual([]);
  });

  it('breaks the run on a gap in the data: silence is not stillness', () => {
    const gap = still2h.map((r, i) => (i > 700 ? { ...r, ts: r.ts + 10 * MIN } : r));
    expect(runInactivity(gap)).toEqual([]);
  });

  it('uses the shorter limit right after a fall, and resolves when the resident moves', () => {
    const after = series('band-1', T0, 200, (i) => ({ worn: true, steps: 0, acc: i < 190 ? STILL : MOVING }));
    const changes = runInactivity(after, { lastFallTs: T0 - MIN });
    expect(changes.map((c) => c.kind)).toEqual(['raise', 'resolve']);
    expect(changes[0]).toMatchObject({ alert: { severity: 'high', evidence: { afterFall: true, limitMs: S.inactivityAfterFallMs } } });
    expect(changes[0].i * 5000).toBe(S.inactivityAfterFallMs);
  });
});

describe('device health', () => {
  function runHealth(readings: Reading[], wakingMinutes = 600) {
    const st = newHealthState();
    const out: AlertChange[] = [];
    const at: number[] = [];
    readings.forEach((reading, i) => {
      const before = out.length;
      stepHealth(st, { reading, motion: burstMotion(reading.acc), wakingMinutes }, S, ctx, out);
      for (let k = before; k < out.length; k++) at.push(i);
    });
    return { out, at, st };
  }

  it('raises NOT_WORN after 15 min off the wrist by day and resolves when worn again', () => {
    const readings = series('band-1', T0, 240, (i) => (i < 200 ? { worn: false, acc: STILL } : { worn: true, hr: 70, acc: MOVING }));
    const { out, at } = runHealth(readings);
    expect(out.map((c) => (c.kind === 'raise' ? c.alert.type : `-${c.type}`))).toEqual(['NOT_WORN', '-NOT_WORN']);
    expect(at).toEqual([S.notWornMs / 5000, 200]);
  });

  it('does not raise NOT_WORN at night, nor while charging', () => {
    expect(runHealth(series('band-1', T0, 400, () => ({ worn: false })), 0).out).toEqual([]);
    expect(runHealth(series('band-1', T0, 400, () => ({ worn: false, charging: true }))).out).toEqual([]);
  });

  it('takes a flat signal without pulse as not worn for a band with no wear sensor', () => {
    const flat = burst([0, 0, 1]);
    expect(runHealth(series('band-1', T0, 200, () => ({ acc: flat }))).out[0]).toMatchObject({ alert: { type: 'NOT_WORN' } });
    expect(runHealth(series('band-1', T0, 200, () => ({ acc: flat, hr: 60 }))).out).toEqual([]);
  });

  it('raises BATTERY_LOW once per discharge, re-armed by charging', () => {
    const levels = [20, 16, 15, 14, 13, 12, 10, 9, 30, 50, 45, 16, 15, 14];
    const readings = series('band-1', T0, levels.length, (i) => ({ battery: levels[i], charging: i === 8 }));
    const { out, at } = runHealth(readings);
    expect(out.map((c) => (c.kind === 'raise' ? c.alert.type : `-${c.type}`))).toEqual(['BATTERY_LOW', '-BATTERY_LOW', 'BATTERY_LOW']);
    expect(at).toEqual([2, 8, 12]);
  });

  it('raises DEVICE_OFFLINE after 10 min of silence, once', () => {
    const st = newHealthState();
    const last = { seq: 41, ts: T0 };
    expect(checkOffline(st, T0 + S.offlineMs - 1, T0, last, S, ctx)).toBeNull();
    expect(checkOffline(st, T0 + S.offlineMs, T0, last, S, ctx)).toMatchObject({ kind: 'raise', alert: { type: 'DEVICE_OFFLINE', evidence: { seq: 41 } } });
    expect(checkOffline(st, T0 + 2 * S.offlineMs, T0, last, S, ctx)).toBeNull();
  });
});

describe('geofence', () => {
  const home = { lat: 48.8566, lon: 2.3522, radiusM: 200 };
  const at = (metresNorth: number) => ({ lat: home.lat + metresNorth / 111_195, lon: home.lon, accuracyM: 10 });

  it('measures great-circle distance', () => {
    expect(distanceM(home, at(500))).toBeCloseTo(500, -1);
    expect(distanceM({ lat: 0, lon: 0 }, { lat: 0, lon: 1 })).toBeCloseTo(111_195, -2);
  });

  function walk(distances: number[], night: boolean) {
    const st = newGeofenceState();
    const out: AlertChange[] = [];
    series('band-1', T0, distances.length, (i) => ({ location: at(distances[i]) })).forEach((r) => {
      const c = stepGeofence(st, r as Reading & { location: NonNullable<Reading['location']> }, home, night, S, ctx);
      if (c) out.push(c);
    });
    return out;
  }

  it('raises WANDERING at night after 2 min outside, and resolves back inside', () => {
    const path = [...Array(10).fill(50), ...Array(30).fill(600), ...Array(5).fill(20)];
    const out = walk(path, true);
    expect(out.map((c) => c.kind)).toEqual(['raise', 'resolve']);
    expect(out[0]).toMatchObject({ alert: { type: 'WANDERING', severity: 'high', openedAt: T0 + 10 * 5000 } });
  });

  it('lets a resident out by day for up to 30 min, and ignores a fix whose accuracy spans the fence', () => {
    expect(walk(Array(300).fill(600), false)).toEqual([]);
    expect(walk(Array(400).fill(600), false)).toHaveLength(1);
    const st = newGeofenceState();
    const fuzzy = { ...series('band-1', T0, 1, () => ({}))[0], location: { ...at(250), accuracyM: 100 } };
    for (let i = 0; i < 100; i++) expect(stepGeofence(st, { ...fuzzy, ts: T0 + i * 5000 }, home, true, S, ctx)).toBeNull();
  });
});

describe('resting baseline', () => {
  it('is the median of nightly medians, once 3 nights are known', () => {
    const st = newBaselineState();
    const nights = [[55, 56, 57], [60, 61, 62], [52, 53, 54], [80, 81, 82]];
    nights.forEach((values, night) => {
      for (let e = 0; e < 300; e++) addSleepingPulse(st, night, values[e % 3]);
      if (night < 3) expect(restingHr(st)).toBeNull();
    });
    addSleepingPulse(st, 99, 60); // closes the 4th night
    expect(st.nights).toEqual([56, 61, 53, 81]);
    expect(restingHr(st)).toBe((56 + 61) / 2);
  });

  it('ignores short nights', () => {
    const st = newBaselineState();
    for (let night = 0; night < 5; night++) for (let e = 0; e < 60; e++) addSleepingPulse(st, night, 50);
    expect(st.nights).toEqual([]);
  });
});
