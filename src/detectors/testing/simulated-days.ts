/**
 * Runs simulated residents' days through every detector in-process, as the `alerts` and
 * `warehouse` groups would live: each request's readings admitted at the time the phone sent
 * them (processing time = simulated time), timers ticking every simulated minute.
 */
import type { Reading } from '../../core/reading.js';
import type { AlertChange } from '../../store/types.js';
import { generateDeliveries, type SimulatedResident } from '../../simulator/offline.js';
import type { WireReading } from '../../simulator/resident-model.js';
import { DEFAULT_DETECTION_SETTINGS } from '../detection-settings.js';
import { admitReading, newDeviceState, tickDevice, type DeviceState, type ResidentContext } from '../device-detector.js';
import { newSummaryState, summarizeReading, tickSummaries, type Summaries, type SummaryState } from '../device-summaries.js';

export interface DayRun {
  changes: AlertChange[];
  summaries: Summaries;
  readings: number;
  /** The detectors' state at the end: the alerts group's and the warehouse group's. */
  state: DeviceState;
  summary: SummaryState;
}

const TICK_MS = 60_000;

export function toReading(w: WireReading, receivedAt: number): Reading {
  const { ts, ...rest } = w;
  return { ...rest, ts: Date.parse(ts), receivedAt } as Reading;
}

/**
 * `keepOutput: false` drops the alert changes and summaries after each request (a benchmark
 * that only wants the state after weeks need not hold weeks of output).
 */
export function runResident(resident: SimulatedResident, toTs: number, opts: { keepOutput?: boolean } = {}): DayRun {
  const rc: ResidentContext = {
    residentId: `res-${resident.deviceId}`,
    timezone: resident.timezone,
    home: resident.homeLocation,
    settings: DEFAULT_DETECTION_SETTINGS,
  };
  const state = newDeviceState();
  const summary = newSummaryState();
  const changes: AlertChange[] = [];
  const summaries: Summaries = { sleep: [], days: [] };
  let nextTick = -Infinity;
  let readings = 0;
  for (const delivery of generateDeliveries(resident.model, toTs)) {
    const now = delivery.at;
    if (nextTick === -Infinity) nextTick = now + TICK_MS;
    while (nextTick <= now) {
      tickDevice(state, resident.deviceId, rc, nextTick, 0, changes);
      tickSummaries(summary, rc.timezone, nextTick, summaries);
      nextTick += TICK_MS;
    }
    for (const w of delivery.readings) {
      const reading = toReading(w, now);
      admitReading(state, reading, rc, now, changes);
      summarizeReading(summary, reading, rc.timezone, summaries);
      readings++;
    }
    if (opts.keepOutput === false) {
      changes.length = 0;
      summaries.sleep.length = 0;
      summaries.days.length = 0;
    }
  }
  return { changes, summaries, readings, state, summary };
}

export const raisedTypes = (changes: AlertChange[]): string[] => changes.flatMap((c) => (c.kind === 'raise' ? [c.alert.type] : []));
