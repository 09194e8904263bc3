/** All detectors of one device together: ordering, late data, duplicates, timers, snapshots. */
import { describe, expect, it } from 'vitest';
import type { Reading } from '../core/reading.js';
import type { AlertChange } from '../store/types.js';
import { DEFAULT_DETECTION_SETTINGS } from './detection-settings.js';
import { admitReading, FALL_SILENCE_MS, newDeviceState, tickDevice, type DeviceState, type ResidentContext } from './device-detector.js';
import { fallSignal, MOVING, series } from './testing/readings.js';
import { pastAndOver } from '../processor/groups/alerts-group.js';

const T0 = Date.UTC(2026, 0, 5, 10); // 10:00 UTC, waking hours
const rc: ResidentContext = { residentId: 'res-1', timezone: 'UTC', home: null, settings: DEFAULT_DETECTION_SETTINGS };
const label = (c: AlertChange) => (c.kind === 'raise' ? c.alert.type : `-${c.type}`);

function run(readings: Reading[], st: DeviceState = newDeviceState(), now = (r: Reading) => r.receivedAt) {
  const out: AlertChange[] = [];
  for (const r of readings) admitReading(st, r, rc, now(r), out);
  return { st, out };
}

/** Normal worn readings around a fall: 10 s of fall signal in two 5-s bursts, then `after`. */
function fallDay(hz: number, after: (i: number) => Partial<Reading>, count = 30): Reading[] {
  const signal = fallSignal(hz);
  const per = 5 * hz;
  return series('band-1', T0, count, (i) => {
    const base = { worn: true, charging: false, hr: 72, spo2: 97, battery: 80 };
    if (i < 2) return { ...base, acc: { hz, samples: signal.slice(i * per, (i + 1) * per) } };
    return { ...base, ...after(i) };
  });
}

const lyingStill = (hz: number) => () => ({ steps: 0, acc: { hz, samples: fallSignal(hz).slice(-5 * hz) } });

describe('device detector', () => {
  it('detects a fall straddling two readings at 20, 50 and 100 Hz, once, with its evidence', () => {
    for (const hz of [20, 50, 100]) {
      const { out } = run(fallDay(hz, lyingStill(hz)));
      const falls = out.filter((c) => c.kind === 'raise' && c.alert.type === 'FALL');
      expect(falls, `${hz} Hz`).toHaveLength(1);
      expect(falls[0]).toMatchObject({ alert: { severity: 'critical', evidence: { source: 'accelerometer' } } });
      const ev = (falls[0] as Extract<AlertChange, { kind: 'raise' }>).alert.evidence;
      expect(ev.peakG as number).toBeGreaterThan(2.5);
      expect(ev.orientationChangeDeg as number).toBeGreaterThan(45);
      expect(out.some((c) => c.kind === 'resolve' && c.type === 'FALL')).toBe(false);
    }
  });

  it('resolves the fall as "resident OK" on SOS_CANCEL or normal movement within the window', () => {
    const cancelled = run(fallDay(50, (i) => (i === 4 ? { events: ['SOS_CANCEL'], acc: MOVING } : lyingStill(50)()))).out;
    expect(cancelled.map(label)).toContain('-FALL');
    const walked = run(fallDay(50, (i) => (i >= 3 ? { steps: 8, acc: walkingBurst(50) } : lyingStill(50)()))).out;
    expect(walked.map(label)).toEqual(expect.arrayContaining(['FALL', '-FALL']));
  });

  it('decides a fall followed by silence on what arrived', () => {
    const readings = fallDay(50, lyingStill(50), 2);
    const { st, out } = run(readings);
    const last = readings[readings.length - 1];
    tickDevice(st, 'band-1', rc, last.receivedAt + FALL_SILENCE_MS, 0, out);
    expect(out.filter((c) => label(c) === 'FALL')).toHaveLength(1);
  });

  it('takes a shuffled burst of buffered readings as if it came in order', () => {
    const readings = series('band-1', T0, 40, (i) => ({ worn: true, hr: i >= 5 && i < 25 ? 140 : 70, acc: MOVING, steps: 3 }));
    const inOrder = run(readings).out.map(label);
    const shuffled = [readings[0], ...readings.slice(1).sort((a, b) => ((a.seq * 7919) % 37) - ((b.seq * 7919) % 37))].map((r) => ({ ...r, receivedAt: T0 + 600_000 }));
    expect(run(shuffled).out.map(label)).toEqual(inOrder);
    expect(inOrder).toEqual(['HR_HIGH', '-HR_HIGH']);
  });

  it('ignores duplicates and still raises device events from late readings', () => {
    const readings = series('band-1', T0, 20, () => ({ worn: true, hr: 70, acc: MOVING }));
    const { st } = run(readings);
    const late = { ...readings[3], seq: 3, events: ['SOS' as const] };
    const dup = run([late], st).out;
    expect(dup).toEqual([]); // seq 3 was seen: a replayed copy raises nothing
    const sos = run([{ ...late, seq: 100, ts: T0 - 3_600_000 }], st, () => T0 + 20 * 60_000).out;
    expect(sos).toHaveLength(1);
    expect(sos[0]).toMatchObject({ kind: 'raise', alert: { type: 'SOS', delayMs: 80 * 60_000 } });
  });

  it('raises DEVICE_OFFLINE only for silence while watched, and resolves it with the next reading', () => {
    const readings = series('band-1', T0, 3, () => ({ worn: true, hr: 70, acc: MOVING }));
    const { st, out } = run(readings);
    const lastHeard = readings[2].receivedAt;
    tickDevice(st, 'band-1', rc, lastHeard + 11 * 60_000, lastHeard + 5 * 60_000, out);
    expect(out.map(label)).not.toContain('DEVICE_OFFLINE'); // this worker watched for 6 min only
    tickDevice(st, 'band-1', rc, lastHeard + 11 * 60_000, 0, out);
    expect(out.map(label)).toContain('DEVICE_OFFLINE');
    const back = run(series('band-1', T0 + 15 * 60_000, 1, () => ({ worn: true }), 3), st).out;
    expect(back.map(label)).toEqual(['-DEVICE_OFFLINE']);
  });

  it('tells whether a tick changed the state, so that only changed states are checkpointed', () => {
    const readings = fallDay(50, lyingStill(50), 2);
    const { st, out } = run(readings);
    const lastHeard = readings[readings.length - 1].receivedAt;
    const ticks = [1000, FALL_SILENCE_MS, FALL_SILENCE_MS + 1000, 11 * 60_000, 12 * 60_000].map((after) => {
      const before = JSON.stringify(st);
      const changed = tickDevice(st, 'band-1', rc, lastHeard + after, 0, out);
      expect(changed, `tick ${after} ms after the last reading`).toBe(JSON.stringify(st) !== before);
      return changed;
    });
    expect(ticks).toEqual([false, true, false, true, false]); // the fall settled on silence, then DEVICE_OFFLINE
  });

  it('gives the same changes after a JSON round trip of its state mid-stream', () => {
    const readings = [...fallDay(50, lyingStill(50), 6), ...series('band-1', T0 + 30_000, 30, (i) => ({ worn: true, hr: 140, acc: MOVING, steps: i }), 6)];
    const whole = run(readings).out;
    const first = run(readings.slice(0, 4));
    const resumed = run(readings.slice(4), JSON.parse(JSON.stringify(first.st)) as DeviceState);
    expect([...first.out, ...resumed.out]).toEqual(whole);
  });
});

describe('alerts for the past', () => {
  it('records without paging a late condition alert whose condition is already over', () => {
    const T = Date.UTC(2026, 0, 5, 8);
    const readings = series('band-1', T, 40, (i) => ({ worn: true, hr: i >= 5 && i < 25 ? 140 : 70, acc: MOVING }));
    const now = T + 3_600_000; // an hour later: the phone was out of range
    const { out } = run(readings, newDeviceState(), () => now);
    expect(out.map(label)).toEqual(['HR_HIGH', '-HR_HIGH']);
    const raised = out[0] as Extract<AlertChange, { kind: 'raise' }>;
    expect(raised.alert.delayMs).toBeGreaterThan(50 * 60_000);
    expect([...pastAndOver(out)]).toEqual([raised.alert.id]);
    // Still going at the end of the data: paged.
    expect(pastAndOver(out.slice(0, 1)).size).toBe(0);
    // A fall from the past is always paged.
    const fall = { ...raised, alert: { ...raised.alert, type: 'FALL' } };
    expect(pastAndOver([fall, { kind: 'resolve', residentId: 'res-1', type: 'FALL', at: T }]).size).toBe(0);
  });
});

/** Arm swing of walking: ~1 g oscillation at 1.8 Hz on top of gravity. */
function walkingBurst(hz: number) {
  return {
    hz,
    samples: Array.from({ length: 5 * hz }, (_, i) => {
      const ph = (2 * Math.PI * 1.8 * i) / hz;
      return [0.3 * Math.sin(ph), -0.95 + 0.45 * Math.sin(2 * ph), 0.2 + 0.3 * Math.cos(ph)] as [number, number, number];
    }),
  };
}
