/**
 * Load generation with autocannon's programmatic API, in this process's main thread: every
 * connection owns one device (its token, its seq counter) and every request carries readings
 * never sent before, so the server under test takes the full path (an exact resend would be a
 * duplicate, which Vigil answers without writing anything).
 */
import autocannon from 'autocannon';
import type { BenchDevice } from './vigil-process.js';

export interface LoadOptions {
  url: string;
  devices: BenchDevice[];
  readingsPerRequest: number;
  durationSec: number;
  /** At most one per device, so that each device's seqs arrive in order. */
  connections: number;
  /** Offered load in requests/s over all connections (autocannon's `overallRate`); unset: as fast as answered. */
  overallRate?: number;
}

export interface LoadResult {
  durationSec: number;
  requests: number;
  reqPerSec: number;
  readingsPerSec: number;
  p50Ms: number;
  p99Ms: number;
  non2xx: number;
  /** Answers other than 202 (a 200 would be just as wrong for ingest). */
  not202: number;
  errors: number;
  timeouts: number;
  /** CPU the generator used, in % of one core. */
  generatorCpuPct: number;
}

// The timestamp is rebuilt at most every 10 ms: toISOString per reading would make the
// generator, not the server, the bottleneck at 50 readings per request.
let isoAt = 0;
let iso = '';
function nowIso(): string {
  const t = Date.now();
  if (t - isoAt >= 10) {
    isoAt = t;
    iso = new Date(t).toISOString();
  }
  return iso;
}

/**
 * One reading of ~160 bytes (no accelerometer), with values that vary a little per seq and stay
 * in normal ranges, so no alert opens. deviceId matches [A-Za-z0-9._-] and needs no escaping.
 */
function reading(deviceId: string, seq: number, ts: string): string {
  return `{"deviceId":"${deviceId}","seq":${seq},"ts":"${ts}","hr":${62 + (seq % 23)},"spo2":${95 + (seq % 4)},"skinTemp":33.${seq % 10},"steps":${seq % 12},"battery":80,"worn":true,"charging":false}`;
}

/** A fresh body for `device`: one reading as a bare object, or `{"readings":[...]}`. */
export function readingsBody(device: BenchDevice, n: number): string {
  const ts = nowIso();
  if (n === 1) return reading(device.deviceId, device.seq++, ts);
  const parts = new Array<string>(n);
  for (let i = 0; i < n; i++) parts[i] = reading(device.deviceId, device.seq++, ts);
  return `{"readings":[${parts.join(',')}]}`;
}

export async function runLoad(o: LoadOptions): Promise<LoadResult> {
  if (o.connections > o.devices.length) throw new Error(`${o.connections} connections need as many devices; got ${o.devices.length}`);
  let nextDevice = 0;
  const cpuBefore = process.cpuUsage();
  const wallBefore = performance.now();
  const result = await autocannon({
    url: o.url,
    connections: o.connections,
    pipelining: 1,
    duration: o.durationSec,
    ...(o.overallRate !== undefined && { overallRate: o.overallRate }),
    // Placeholder replaced per connection in setupClient (autocannon builds it before).
    requests: [{ method: 'POST', path: '/v1/readings' }],
    setupClient(client) {
      const device = o.devices[nextDevice++ % o.devices.length];
      const headers = { 'content-type': 'application/json', authorization: `Bearer ${device.token}` };
      client.setRequests([
        {
          method: 'POST',
          path: '/v1/readings',
          headers,
          setupRequest(req) {
            req.body = readingsBody(device, o.readingsPerRequest);
            return req;
          },
        },
      ]);
    },
  });
  const cpu = process.cpuUsage(cpuBefore);
  const wallMs = performance.now() - wallBefore;
  const requests = result.requests.total;
  return {
    durationSec: result.duration,
    requests,
    reqPerSec: requests / result.duration,
    readingsPerSec: (requests * o.readingsPerRequest) / result.duration,
    p50Ms: result.latency.p50,
    p99Ms: result.latency.p99,
    non2xx: result.non2xx,
    not202: requests - (result.statusCodeStats['202']?.count ?? 0),
    errors: result.errors,
    timeouts: result.timeouts,
    generatorCpuPct: ((cpu.user + cpu.system) / 1000 / wallMs) * 100,
  };
}
