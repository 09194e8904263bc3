/**
 * A fleet of simulated wristbands posting to a running Vigil (`POST /v1/readings`), each
 * behaving like the phone app: it produces a reading every window of device time, keeps what
 * it could not deliver in a bounded buffer, oldest first, and resends it later.
 *
 * Ordering: a device has at most one request in flight and always sends the head of its
 * buffer, so its readings arrive in seq order, resends included. (deviceId, seq) is the
 * idempotency key, so resending after a lost answer yields duplicates, never doubles.
 *
 * Out of range (the OUT_OF_RANGE scenario) is the exception, on purpose: the band keeps
 * making readings but the phone cannot receive them, so they are held; when the link is back
 * they go out shuffled, in several batches (splitLateBatches), one batch after each live
 * request, so late and live readings interleave as they do from a real phone (DESIGN §3.3).
 *
 * Held devices (`held`): a device whose history is still being loaded (./history.ts) makes its
 * readings as usual but keeps them until `release(deviceId)`, so that its first live reading
 * reaches the stream after the last reading of its past, as a phone sends its buffer in order.
 *
 * Pacing: one scheduler tick serves every device. Devices are staggered evenly over the
 * interval and all share the same interval, so they come due in a fixed cyclic order and
 * the tick only walks the ones that are due.
 */
import { splitLateBatches } from './late-batches.js';
import { Random, hashString, mixSeeds } from './prng.js';
import { ResidentModel, type HomeLocation, type ScenarioName } from './resident-model.js';

export interface FleetDevice {
  deviceId: string;
  token: string;
  residentId: string;
  timezone?: string;
  /** The resident's homeLocation: readings are located around it. Default: drawn from the seed. */
  homeLocation?: HomeLocation;
}

export interface FleetOptions {
  /** Base URL of Vigil, e.g. http://127.0.0.1:8080. */
  url: string;
  devices: FleetDevice[];
  /** Readings per second across the fleet. Default devices/5: one reading per device every 5 s. */
  rate?: number;
  /** Readings per request in the steady state (a backlog goes in requests of up to 500). Default 1. */
  batch?: number;
  /** Accelerometer rate. Default 25 Hz. */
  accHz?: number;
  /** Stop producing after this long, send what is buffered (for up to drainTimeoutMs), then stop. */
  durationMs?: number;
  drainTimeoutMs?: number;
  /**
   * Readings a device keeps while it cannot deliver; past it the oldest are dropped. Default
   * 720. Readings held during OUT_OF_RANGE are not counted: that scenario's length bounds them.
   */
  bufferLimit?: number;
  /** Requests in flight across the fleet. Default 256. */
  maxInFlight?: number;
  requestTimeoutMs?: number;
  /** Mixed into each device's seed; the same seed replays the same residents. Default 0. */
  seed?: number;
  tickMs?: number;
  /**
   * Device ids whose readings are made but not sent until `release(deviceId)` (their history
   * is being loaded). Past `bufferLimit` readings the oldest are dropped, as for any device.
   */
  held?: Iterable<string>;
}

export interface FleetStats {
  devices: number;
  /** Readings produced by the bands. */
  generated: number;
  /** Readings posted, each resend counted again. */
  sent: number;
  requests: number;
  accepted: number;
  duplicates: number;
  /** Readings the server refused (per-reading rejections and whole requests answered 4xx). */
  rejected: number;
  /** Requests that failed: network error, timeout, or a non-2xx answer. */
  errors: number;
  /** Readings dropped because a device's buffer was full. */
  dropped: number;
  /** Readings waiting in the devices' buffers (held out of range included). */
  buffered: number;
  /** Readings made out of range (OUT_OF_RANGE), delivered late. */
  late: number;
  inFlight: number;
  lastError?: string;
  /** Readings sent per second over the last ~5 s. */
  readingsPerSecond: number;
  elapsedMs: number;
}

/** What ingest takes in one request (DESIGN §3.1). */
const MAX_BATCH = 500;
/** Requests are given up after this long by default. */
const REQUEST_TIMEOUT_MS = 30_000;
const MAX_BACKOFF_MS = 30_000;
const RATE_WINDOW_MS = 5000;

interface DeviceState {
  readonly device: FleetDevice;
  readonly model: ResidentModel;
  readonly auth: string;
  /** Serialized readings, oldest first; kept as JSON so a resend costs no re-encoding. */
  readonly buffer: string[];
  /** How many readings at the head of the buffer the request in flight carries (0: none). */
  sending: number;
  /** Made while out of range, not deliverable yet. */
  held: string[];
  /** Released late readings, one request each, sent in turn with live requests. */
  readonly late: string[][];
  /** The request in flight carries late[0]. */
  sendingLate: boolean;
  /** A late batch goes next (set after each live request). */
  lateTurn: boolean;
  retryAt: number;
  failures: number;
  /** Time and seq of its first reading. */
  readonly origin: { ts: number; seq: number };
  /** Sends nothing until released (see FleetOptions.held). */
  gated: boolean;
}

/** How ingest answered one POST /v1/readings. */
export type PostOutcome =
  | { ok: true; accepted: number; duplicates: number; rejected: number }
  | { ok: false; retry: boolean; error: string; retryAfterMs?: number };

export class Fleet {
  readonly intervalMs: number;
  private readonly url: string;
  private readonly options: FleetOptions;
  private devices: DeviceState[] = [];
  private readonly batch: number;
  private readonly bufferLimit: number;
  private readonly maxInFlight: number;
  private readonly requestTimeoutMs: number;
  private readonly durationMs: number;
  private readonly drainTimeoutMs: number;
  private readonly tickMs: number;
  private readonly counts = { generated: 0, sent: 0, requests: 0, accepted: 0, duplicates: 0, rejected: 0, errors: 0, dropped: 0, late: 0 };
  private lastError: string | undefined;
  private buffered = 0;
  private inFlight = 0;
  private readonly requests = new Set<Promise<void>>();
  /** Devices that may have something to send: new readings, a finished request, a backoff. */
  private readonly attention = new Set<DeviceState>();
  private cursor = 0;
  private startedAt = 0;
  private drainUntil = Infinity;
  private timer: NodeJS.Timeout | undefined;
  private state: 'idle' | 'running' | 'draining' | 'stopped' = 'idle';
  private stopping: Promise<FleetStats> | undefined;
  private readonly rateSamples: { t: number; sent: number }[] = [];
  private readonly heldIds: Set<string>;
  private resolveDone!: (s: FleetStats) => void;
  /** Resolves with the final stats once the fleet stopped, by stop() or at the end of its duration. */
  readonly done = new Promise<FleetStats>((resolve) => (this.resolveDone = resolve));

  constructor(opts: FleetOptions) {
    const n = opts.devices.length;
    if (n === 0) throw new RangeError('a fleet needs at least one device');
    const rate = opts.rate ?? n / 5;
    if (!(rate > 0)) throw new RangeError('rate must be positive');
    this.batch = opts.batch ?? 1;
    if (!Number.isInteger(this.batch) || this.batch < 1 || this.batch > MAX_BATCH) throw new RangeError(`batch must be from 1 to ${MAX_BATCH}`);
    this.bufferLimit = Math.max(opts.bufferLimit ?? 720, this.batch);
    // Each reading covers the device's whole interval, so device time keeps pace with the wall
    // clock at any rate (a faster rate means shorter windows, not timestamps in the future).
    this.intervalMs = (1000 * n) / rate;
    this.url = opts.url.replace(/\/+$/, '') + '/v1/readings';
    this.maxInFlight = opts.maxInFlight ?? 256;
    this.requestTimeoutMs = opts.requestTimeoutMs ?? REQUEST_TIMEOUT_MS;
    this.durationMs = opts.durationMs ?? Infinity;
    this.drainTimeoutMs = opts.drainTimeoutMs ?? 10_000;
    this.tickMs = opts.tickMs ?? 50;
    this.options = opts;
    this.heldIds = new Set(opts.held ?? []);
    // The bands are built at start(); a bad time zone or acc rate must fail here, before a
    // caller provisions anything.
    for (const timezone of new Set(opts.devices.map((d) => d.timezone)))
      new ResidentModel({ deviceId: 'probe', seed: 0, startTs: 0, timezone, accHz: opts.accHz, intervalMs: this.intervalMs });
  }

  get size(): number {
    return this.options.devices.length;
  }

  /** Device time starts now: the first device's first reading is due at once, the others staggered. */
  start(): void {
    if (this.state !== 'idle') throw new Error('fleet already started');
    const { devices, seed = 0, accHz } = this.options;
    const now = Date.now();
    this.devices = devices.map((device, i) => {
      const startTs = now + (i * this.intervalMs) / devices.length;
      const model = new ResidentModel({
        deviceId: device.deviceId,
        seed: mixSeeds(seed, hashString(device.deviceId)),
        timezone: device.timezone,
        accHz,
        intervalMs: this.intervalMs,
        // A band's counter survives app restarts; starting from the clock keeps seq increasing
        // across runs of the same fleet, so a restart is not swallowed as duplicates.
        startSeq: Math.floor(startTs),
        startTs,
        home: device.homeLocation,
      });
      const auth = `Bearer ${device.token}`;
      const origin = { ts: model.nextTs, seq: model.nextSeq };
      const gated = this.heldIds.has(device.deviceId);
      return { device, model, auth, buffer: [], sending: 0, held: [], late: [], sendingLate: false, lateTurn: false, retryAt: 0, failures: 0, origin, gated };
    });
    this.state = 'running';
    this.startedAt = now;
    this.timer = setInterval(() => this.tick(), this.tickMs);
  }

  /**
   * Plays a scenario on one device (by index or deviceId) from `startTs`, by default its next
   * reading. See ResidentModel.inject.
   */
  inject(device: number | string, name: ScenarioName, startTs?: number, durationMs?: number): void {
    if (this.state === 'idle') throw new Error('start the fleet before injecting scenarios');
    const d = this.device(device);
    d.model.inject(name, startTs ?? d.model.nextTs, durationMs);
  }

  private device(device: number | string): DeviceState {
    if (this.state === 'idle') throw new Error('the fleet has not started');
    const d = typeof device === 'number' ? this.devices[device] : this.devices.find((x) => x.device.deviceId === device);
    if (!d) throw new RangeError(`no device ${device} in the fleet`);
    return d;
  }

  /** Time and seq of a device's first reading (by index or deviceId): its history ends just before. */
  origin(device: number | string): { ts: number; seq: number } {
    return this.device(device).origin;
  }

  /** A held device (FleetOptions.held) starts sending what it has made, then goes on live. */
  release(deviceId: string): void {
    this.heldIds.delete(deviceId);
    const d = this.devices.find((x) => x.device.deviceId === deviceId);
    if (!d || !d.gated) return;
    d.gated = false;
    this.attention.add(d);
  }

  /** Stops sending and resolves once the requests in flight have ended. Buffered readings stay unsent. */
  stop(): Promise<FleetStats> {
    this.stopping ??= (async () => {
      this.state = 'stopped';
      clearInterval(this.timer);
      while (this.requests.size > 0) await Promise.allSettled([...this.requests]);
      const final = this.stats();
      this.resolveDone(final);
      return final;
    })();
    return this.stopping;
  }

  stats(): FleetStats {
    const now = Date.now();
    const from = this.rateSamples.find((s) => now - s.t <= RATE_WINDOW_MS + 1000) ?? { t: this.startedAt, sent: 0 };
    const span = now - from.t;
    return {
      devices: this.size,
      ...this.counts,
      buffered: this.buffered,
      inFlight: this.inFlight,
      lastError: this.lastError,
      readingsPerSecond: this.startedAt > 0 && span > 0 ? ((this.counts.sent - from.sent) * 1000) / span : 0,
      elapsedMs: this.startedAt > 0 ? now - this.startedAt : 0,
    };
  }

  private tick(): void {
    const now = Date.now();
    if (this.state === 'running') {
      this.produce(now);
      if (now >= this.startedAt + this.durationMs) this.beginDrain(now);
    }
    this.pump(now);
    if (this.state === 'draining' && ((this.buffered === 0 && this.inFlight === 0) || now >= this.drainUntil)) void this.stop();
    const last = this.rateSamples.at(-1);
    if (!last || now - last.t >= 1000) {
      this.rateSamples.push({ t: now, sent: this.counts.sent });
      if (this.rateSamples.length > RATE_WINDOW_MS / 1000 + 2) this.rateSamples.shift();
    }
  }

  /** Makes every reading that is due; bounded per tick so a stalled loop catches up without freezing. */
  private produce(now: number): void {
    const end = this.startedAt + this.durationMs;
    for (let budget = Math.max(this.devices.length, 1000); budget > 0; budget--) {
      const d = this.devices[this.cursor];
      const ts = d.model.nextTs;
      if (ts > now || ts >= end) return;
      const reading = JSON.stringify(d.model.next());
      this.counts.generated++;
      if (d.model.outOfRangeUntil(ts) !== undefined) {
        d.held.push(reading);
        this.counts.late++;
        this.buffered++;
      } else {
        this.backInRange(d);
        this.enqueue(d, reading);
      }
      this.cursor = (this.cursor + 1) % this.devices.length;
    }
  }

  /** Back in range: what was held becomes late batches, shuffled. */
  private backInRange(d: DeviceState): void {
    if (d.held.length === 0) return;
    const rng = new Random(hashString(d.held[0])); // the same readings are shuffled the same way
    d.late.push(...splitLateBatches(d.held, rng));
    d.held = [];
    this.attention.add(d);
  }

  private enqueue(d: DeviceState, reading: string): void {
    d.buffer.push(reading);
    this.buffered++;
    if (d.buffer.length > this.bufferLimit) {
      d.buffer.splice(d.sending, 1); // the oldest reading not in flight
      this.buffered--;
      this.counts.dropped++;
    }
    if (d.buffer.length >= this.batch) this.attention.add(d);
  }

  /** From now on partial batches go out too: nothing new is coming to fill them. */
  private beginDrain(now: number): void {
    this.state = 'draining';
    this.drainUntil = now + this.drainTimeoutMs;
    for (const d of this.devices) {
      this.backInRange(d); // the run ends: what a phone held goes out too
      if (d.buffer.length > 0 || d.late.length > 0) this.attention.add(d);
    }
  }

  private pump(now: number): void {
    if (this.state === 'stopped') return;
    const draining = this.state === 'draining';
    const threshold = draining ? 1 : this.batch;
    for (const d of this.attention) {
      if (this.inFlight >= this.maxInFlight) return;
      if (d.gated) {
        this.attention.delete(d); // release() puts it back
        continue;
      }
      const lateNext = d.late.length > 0 && (d.lateTurn || draining);
      if (d.sending > 0 || d.sendingLate || (d.buffer.length < threshold && !lateNext)) {
        this.attention.delete(d); // a finished request or a new reading puts it back
        continue;
      }
      if (d.retryAt > now) continue;
      this.attention.delete(d);
      if (lateNext) this.sendLate(d);
      else this.send(d);
    }
  }

  private sendLate(d: DeviceState): void {
    const batch = d.late[0];
    d.sendingLate = true;
    this.request(d, batch.length, batch.length === 1 ? batch[0] : `{"readings":[${batch.join(',')}]}`);
  }

  private send(d: DeviceState): void {
    const n = Math.min(d.buffer.length, MAX_BATCH);
    d.sending = n;
    this.request(d, n, n === 1 ? d.buffer[0] : `{"readings":[${d.buffer.slice(0, n).join(',')}]}`);
  }

  private request(d: DeviceState, n: number, body: string): void {
    this.inFlight++;
    this.counts.sent += n;
    this.counts.requests++;
    const request = postReadings(this.url, d.auth, body, this.requestTimeoutMs).then((outcome) => this.settle(d, outcome));
    this.requests.add(request);
    void request.finally(() => this.requests.delete(request));
  }

  private settle(d: DeviceState, o: PostOutcome): void {
    const wasLate = d.sendingLate;
    const n = wasLate ? d.late[0].length : d.sending;
    d.sending = 0;
    d.sendingLate = false;
    this.inFlight--;
    if (o.ok || !o.retry) {
      if (wasLate) d.late.shift();
      else d.buffer.splice(0, n);
      this.buffered -= n;
      d.failures = 0;
      d.retryAt = 0;
      d.lateTurn = !wasLate && d.late.length > 0;
    }
    if (o.ok) {
      this.counts.accepted += o.accepted;
      this.counts.duplicates += o.duplicates;
      this.counts.rejected += o.rejected;
    } else {
      this.counts.errors++;
      this.lastError = o.error;
      if (!o.retry) this.counts.rejected += n;
      else {
        d.failures++;
        // Jittered exponential backoff unless the server said when: a fleet that failed
        // together must not come back together.
        const backoff = Math.min(MAX_BACKOFF_MS, 1000 * 2 ** (d.failures - 1)) * (0.5 + Math.random() / 2);
        d.retryAt = Date.now() + (o.retryAfterMs ?? backoff);
      }
    }
    if (this.state === 'stopped') return;
    this.attention.add(d);
    this.pump(Date.now());
  }
}

/**
 * Posts a body of readings to ingest (`url` ending in /v1/readings) and says how it went: never
 * throws; `retry` is set for what may succeed later (network errors, 429, 5xx).
 */
export async function postReadings(url: string, auth: string, body: string, timeoutMs = REQUEST_TIMEOUT_MS): Promise<PostOutcome> {
  let res: Response;
  try {
    res = await fetch(url, {
      method: 'POST',
      headers: { authorization: auth, 'content-type': 'application/json' },
      body,
      signal: AbortSignal.timeout(timeoutMs),
    });
  } catch (err) {
    return { ok: false, retry: true, error: describeNetworkError(err) };
  }
  let json: unknown;
  try {
    json = await res.json();
  } catch {
    json = undefined; // an answer without a JSON body is judged by its status alone
  }
  if (res.ok) {
    const b = (json ?? {}) as { accepted?: unknown; duplicates?: unknown; rejected?: unknown };
    const duplicates = typeof b.duplicates === 'number' ? b.duplicates : 0;
    const rejected = Array.isArray(b.rejected) ? b.rejected.length : 0;
    return { ok: true, accepted: typeof b.accepted === 'number' ? b.accepted : 0, duplicates, rejected };
  }
  const p = (json ?? {}) as { detail?: unknown; title?: unknown };
  const error = `${res.status} ${typeof p.detail === 'string' ? p.detail : typeof p.title === 'string' ? p.title : res.statusText}`;
  // 429 and 5xx are the server's "not now"; any other 4xx would fail the same way again.
  const retry = res.status === 429 || res.status >= 500;
  return { ok: false, retry, error, retryAfterMs: parseRetryAfter(res.headers.get('retry-after')) };
}

/** Retry-After is either delay-seconds or an HTTP date (RFC 9110 §10.2.3). */
function parseRetryAfter(v: string | null): number | undefined {
  if (v === null) return undefined;
  if (/^\d+$/.test(v.trim())) return Number(v) * 1000;
  const at = Date.parse(v);
  return Number.isNaN(at) ? undefined : Math.max(0, at - Date.now());
}

function describeNetworkError(err: unknown): string {
  if (err instanceof Error && err.name === 'TimeoutError') return 'request timed out';
  const cause = err instanceof Error ? (err.cause as { code?: string; message?: string } | undefined) : undefined;
  return cause?.code ?? cause?.message ?? (err instanceof Error ? err.message : String(err));
}
