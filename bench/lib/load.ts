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
  /** Stop after this many requests (autocannon's `amount`; `durationSec` is then ignored). */
  amount?: number;
  /**
   * Accelerometer burst in every reading, at this rate (samples/s) over `ACC_BURST_SEC`, like a
   * real band; 0 (default): no accelerometer, the ~160-byte readings of before. See `accReading`.
   */
  accHz?: number;
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
export function readingsBody(device: BenchDevice, n: number, accHz = 0): string {
  if (accHz > 0) return accReadingsBody(device, n, accHz);
  const ts = nowIso();
  if (n === 1) return reading(device.deviceId, device.seq++, ts);
  const parts = new Array<string>(n);
  for (let i = 0; i < n; i++) parts[i] = reading(device.deviceId, device.seq++, ts);
  return `{"readings":[${parts.join(',')}]}`;
}

// ---- Readings with an accelerometer burst -------------------------------------------------

/** A band sends one reading per burst: 5 s of samples (docs/performance.md, DESIGN §4). */
export const ACC_BURST_SEC = 5;
/**
 * Event time of a device's readings with bursts: each reading starts where the previous burst
 * ended (contiguous, as the fall detector expects: overlapping samples are skipped, which
 * would hide its cost). A benchmark device sends hundreds of readings a second, far faster
 * than real time, so its clock starts this far in the past; it is clamped to now if it catches
 * up (then bursts overlap). 24 h is ~17,000 readings per device.
 */
export const ACC_CLOCK_START_BEHIND_MS = 24 * 3_600_000;
const eventClock = new WeakMap<BenchDevice, number>();

/** Sets the event time of `device`'s next reading (epoch ms); by default it starts ACC_CLOCK_START_BEHIND_MS ago. */
export function setEventClock(device: BenchDevice, ms: number): void {
  eventClock.set(device, ms);
}

/** Deterministic PRNG (mulberry32), so that the bursts are the same on every run. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const BURST_POOL = 32;
const burstPools = new Map<number, string[]>();

/**
 * `"acc":{...}` texts of a wrist at rest (gravity on a tilted axis, ±0.01 g noise) or walking
 * (±0.25 g at ~1.8 Hz on top, ±0.05 g noise), in g with 3 decimals (~21 bytes per sample). |a|
 * stays below 1.6 g, under the fall detector's 2-g impact gate: no fall is ever detected.
 */
function burstPool(hz: number): string[] {
  let pool = burstPools.get(hz);
  if (pool) return pool;
  pool = [];
  const n = Math.round(hz * ACC_BURST_SEC);
  for (let b = 0; b < BURST_POOL; b++) {
    const r = rng(1000 + b * 7919 + hz);
    const walking = b % 2 === 1;
    const tilt = (r() - 0.5) * 0.8;
    const gx = Math.sin(tilt) * 0.6;
    const gy = Math.cos(tilt) * 0.3;
    const gz = Math.sqrt(Math.max(0, 1 - gx * gx - gy * gy));
    const noise = walking ? 0.05 : 0.01;
    const phase = r() * Math.PI * 2;
    const samples: string[] = [];
    for (let i = 0; i < n; i++) {
      const swing = walking ? 0.25 * Math.sin(phase + (2 * Math.PI * 1.8 * i) / hz) : 0;
      const x = gx + swing * 0.6 + (r() - 0.5) * 2 * noise;
      const y = gy + swing * 0.3 + (r() - 0.5) * 2 * noise;
      const z = gz + swing + (r() - 0.5) * 2 * noise;
      samples.push(`[${x.toFixed(3)},${y.toFixed(3)},${z.toFixed(3)}]`);
    }
    pool.push(`"acc":{"hz":${hz},"samples":[${samples.join(',')}]}`);
  }
  burstPools.set(hz, pool);
  return pool;
}

/**
 * One reading with a burst of `hz` × ACC_BURST_SEC samples (~2.7 KB at 25 Hz), at event time
 * `tsMs`; steps match the burst (0 at rest, 8–9 walking), the rest as in the readings without
 * accelerometer. Bursts alternate in blocks of 4 readings between rest and walking.
 */
export function accReading(deviceId: string, seq: number, tsMs: number, hz: number): string {
  const pool = burstPool(hz);
  const block = seq >> 2;
  const b = (block % (BURST_POOL / 2)) * 2 + (block & 1);
  const walking = b % 2 === 1;
  const ts = new Date(tsMs).toISOString();
  return `{"deviceId":"${deviceId}","seq":${seq},"ts":"${ts}","hr":${62 + (seq % 23)},"spo2":${95 + (seq % 4)},"skinTemp":33.${seq % 10},"steps":${walking ? 8 + (seq % 2) : 0},"battery":80,"worn":true,"charging":false,${pool[b]}}`;
}

function accReadingsBody(device: BenchDevice, n: number, hz: number): string {
  const now = Date.now();
  let t = eventClock.get(device) ?? now - ACC_CLOCK_START_BEHIND_MS;
  const parts = new Array<string>(n);
  for (let i = 0; i < n; i++) {
    if (t > now) t = now;
    parts[i] = accReading(device.deviceId, device.seq++, t, hz);
    t += ACC_BURST_SEC * 1000;
  }
  eventClock.set(device, t);
  return n === 1 ? parts[0] : `{"readings":[${parts.join(',')}]}`;
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
    ...(o.amount !== undefined && { amount: o.amount }),
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
            req.body = readingsBody(device, o.readingsPerRequest, o.accHz ?? 0);
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
