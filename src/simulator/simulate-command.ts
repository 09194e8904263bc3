/**
 * `vigil simulate`: provisions (or reuses) a simulated fleet on a running Vigil, drives it in
 * real time, and prints a one-line status every 5 s until the signal or the duration ends it.
 */
import { scheduleDemoScenarios } from './demo.js';
import { Fleet, type FleetDevice, type FleetStats } from './fleet.js';
import { HttpAdminClient, deviceIdFor, provisionFleet } from './provision.js';
import { SCENARIO_NAMES, type ScenarioName } from './resident-model.js';

export interface SimulateOptions {
  url: string;
  adminKey: string;
  devices: number;
  /** Readings per second across the fleet. Default devices/5. */
  rate?: number;
  batch?: number;
  accHz?: number;
  durationMs?: number;
  stateFile?: string;
  /** One scenario played at start on one device. */
  scenario?: { name: ScenarioName; deviceIndex: number };
  /** Also play the scripted demo (SOS, tachycardia, hypoxia on the first three devices). */
  demo?: boolean;
  log: (line: string) => void;
  signal?: AbortSignal;
  statusIntervalMs?: number;
}

export async function runSimulate(opts: SimulateOptions): Promise<FleetStats> {
  const { scenario, log, signal } = opts;
  if (!Number.isInteger(opts.devices) || opts.devices < 1) throw new RangeError('devices must be a positive integer');
  if (scenario) {
    if (!SCENARIO_NAMES.includes(scenario.name)) throw new RangeError(`scenario must be one of ${SCENARIO_NAMES.join(', ')}`);
    if (!(Number.isInteger(scenario.deviceIndex) && scenario.deviceIndex >= 0 && scenario.deviceIndex < opts.devices))
      throw new RangeError(`scenario device index must be from 0 to ${opts.devices - 1}`);
  }

  const { url, rate, batch, accHz, durationMs } = opts;
  const fleetOf = (devices: FleetDevice[]) => new Fleet({ url, devices, rate, batch, accHz, durationMs });
  // A fleet is cheap until started: building one first rejects bad options before anything
  // is created on the server.
  fleetOf(Array.from({ length: opts.devices }, (_, i) => ({ deviceId: deviceIdFor(i + 1), token: '', residentId: '' })));

  log(`simulate: provisioning ${opts.devices} device(s) on ${url}${opts.stateFile ? ` (state in ${opts.stateFile})` : ''}`);
  const devices = await provisionFleet(new HttpAdminClient(url, opts.adminKey), opts.devices, { stateFile: opts.stateFile });
  const fleet = fleetOf(devices);
  if (signal?.aborted) return fleet.stop();

  fleet.start();
  log(
    `simulate: ${devices.length} band(s), one reading every ${(fleet.intervalMs / 1000).toFixed(2)} s each` +
      `${durationMs !== undefined ? `, for ${Math.round(durationMs / 1000)} s` : ''}`,
  );
  if (scenario) {
    fleet.inject(scenario.deviceIndex, scenario.name);
    log(`simulate: ${scenario.name} on ${devices[scenario.deviceIndex].deviceId}`);
  }
  const cancelDemo = opts.demo ? scheduleDemoScenarios(fleet) : undefined;
  const status = setInterval(() => log(statusLine(fleet.stats())), opts.statusIntervalMs ?? 5000);
  const onAbort = () => void fleet.stop();
  signal?.addEventListener('abort', onAbort, { once: true });
  try {
    const final = await fleet.done;
    log(`simulate: stopped · ${statusLine(final)}`);
    return final;
  } finally {
    clearInterval(status);
    cancelDemo?.();
    signal?.removeEventListener('abort', onAbort);
  }
}

export function statusLine(s: FleetStats): string {
  const parts = [
    `${s.readingsPerSecond.toFixed(1)} readings/s sent`,
    `accepted ${s.accepted}`,
    `duplicates ${s.duplicates}`,
    `rejected ${s.rejected}`,
    `errors ${s.errors}`,
    `buffered ${s.buffered}`,
  ];
  if (s.dropped > 0) parts.push(`dropped ${s.dropped}`);
  if (s.late > 0) parts.push(`late ${s.late}`);
  if (s.lastError) parts.push(`last error: ${s.lastError}`);
  return parts.join(' · ');
}
