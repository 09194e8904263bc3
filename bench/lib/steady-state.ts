/**
 * The detector state of one device after days of realistic readings, in-process: the
 * simulator's resident model (src/simulator, the same days the detection tests use) fed
 * through every detector as the `alerts` and `warehouse` groups run them
 * (src/detectors/testing/simulated-days.ts, here keeping the state), so that a benchmark can
 * tell a fresh device's state from a device's state after weeks (daily histories fill up).
 */
import { simulatedResidents } from '../../src/simulator/offline.js';
import { runResident } from '../../src/detectors/testing/simulated-days.js';

const DAY = 86_400_000;

export interface SteadyState {
  days: number;
  readings: number;
  /** JSON bytes of the alerts group's per-device state (DeviceState) and of the warehouse group's (summaries). */
  alertsStateBytes: number;
  warehouseStateBytes: number;
  /** JSON bytes by part of the alerts state. */
  parts: [string, number][];
  seconds: number;
}

/** One simulated resident (n = 1, Europe/Paris, 25-Hz bursts every 5 s), `days` days from a Monday. */
export function steadyState(days: number, accHz = 25): SteadyState {
  const t0 = performance.now();
  const start = Date.parse('2024-06-10T00:00:00+02:00');
  const [resident] = simulatedResidents(1, { startTs: start, accHz });
  const { state, summary, readings } = runResident(resident, start + days * DAY, { keepOutput: false });
  const parts = Object.entries(state).map(([k, v]) => [`state.${k}`, JSON.stringify(k).length + 1 + JSON.stringify(v).length + 1] as [string, number]);
  return {
    days,
    readings,
    alertsStateBytes: JSON.stringify(state).length,
    warehouseStateBytes: JSON.stringify(summary).length,
    parts: parts.sort((a, b) => b[1] - a[1]),
    seconds: (performance.now() - t0) / 1000,
  };
}
