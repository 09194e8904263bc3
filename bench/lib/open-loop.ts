/**
 * An open-loop HTTP load generator: request i is sent at `start + i / rate` whatever the
 * answers, so a slow server makes requests pile up (and shows in the latency) instead of
 * slowing the generator down.
 *
 * Why not autocannon's `overallRate`: autocannon spreads the rate over its connections, and
 * each connection sends its next request only when the previous answer is in (pipelining 1),
 * up to its per-second quota, refilled every second (node_modules/autocannon/lib/httpClient.js,
 * `_doRequest` / `rateInterval`). That is closed-loop: a server that answers late is sent less
 * (it corrects the recorded latency for coordinated omission, but not the offered load).
 *
 * Here: node:http with a keep-alive Agent; a 1-ms timer sends every request whose time has
 * come, opening more connections (up to `maxSockets`) when all are busy. A request sent more
 * than `lateMs` after its scheduled time is counted as late (the generator fell behind its
 * schedule: its own event loop was busy); latency is measured from the scheduled time, so a
 * late send still counts in full.
 */
import { Agent, request } from 'node:http';

export interface OpenLoopRequest {
  path: string;
  headers: Record<string, string>;
  body: string;
}

export interface OpenLoopOptions {
  url: string;
  /** Requests per second, on a fixed schedule. */
  ratePerSec: number;
  /** How long to send for; `stop()` ends it sooner. */
  durationSec: number;
  /** Builds request i (called at its send time). */
  build(i: number): OpenLoopRequest;
  /** Connections at most (default 512); a request finding them all busy waits, and is counted. */
  maxSockets?: number;
  /** A send later than this after its scheduled time is counted late (default 5 ms). */
  lateMs?: number;
  /** Each answer, with its times (performance.now() ms). */
  onAnswer?: (a: OpenLoopAnswer) => void;
}

export interface OpenLoopAnswer {
  i: number;
  status: number;
  body: string;
  scheduledAt: number;
  sentAt: number;
  answeredAt: number;
}

export interface OpenLoopResult {
  durationSec: number;
  scheduled: number;
  sent: number;
  answered: number;
  /** Answers by status code. */
  status: Record<string, number>;
  errors: number;
  late: number;
  maxLateMs: number;
  /** Requests that found every connection busy and waited for one. */
  waitedForConnection: number;
  maxInFlight: number;
  /** Answered requests per second over the sending period. */
  answeredPerSec: number;
  /** From the scheduled send time to the full answer, ms. */
  latency: Percentiles;
  /** CPU this process used while sending, % of one core (everything the process did). */
  generatorCpuPct: number;
}

export interface Percentiles {
  n: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
}

/** Nearest-rank percentiles of a list of values. */
export function percentiles(values: number[]): Percentiles {
  const v = [...values].sort((a, b) => a - b);
  const at = (q: number) => (v.length === 0 ? NaN : v[Math.min(v.length - 1, Math.max(0, Math.ceil(q * v.length) - 1))]);
  return { n: v.length, p50: at(0.5), p90: at(0.9), p99: at(0.99), max: v.length ? v[v.length - 1] : NaN };
}

export interface OpenLoop {
  /** Resolves once the schedule is over and every sent request is answered or failed. */
  done: Promise<OpenLoopResult>;
  /** Ends the schedule now (what was sent is still awaited). */
  stop(): void;
}

export function startOpenLoop(o: OpenLoopOptions): OpenLoop {
  const u = new URL(o.url);
  const maxSockets = o.maxSockets ?? 512;
  const lateMs = o.lateMs ?? 5;
  const agent = new Agent({ keepAlive: true, maxSockets, keepAliveMsecs: 10_000 });
  const interval = 1000 / o.ratePerSec;
  const total = Math.floor(o.durationSec * o.ratePerSec);
  const latencies: number[] = [];
  const status: Record<string, number> = {};
  let next = 0;
  let inFlight = 0;
  let maxInFlight = 0;
  let answered = 0;
  let errors = 0;
  let late = 0;
  let maxLateMs = 0;
  let waited = 0;
  let stopped = false;
  let lastSentAt = 0;
  const cpu0 = process.cpuUsage();
  const start = performance.now();
  let finish!: () => void;
  const allAnswered = new Promise<void>((r) => (finish = r));
  const settleOne = () => {
    inFlight--;
    if (stopped && inFlight === 0) finish();
  };

  const send = (i: number, scheduledAt: number) => {
    const now = performance.now();
    const lateBy = now - scheduledAt;
    if (lateBy > lateMs) late++;
    if (lateBy > maxLateMs) maxLateMs = lateBy;
    if (inFlight >= maxSockets) waited++;
    inFlight++;
    if (inFlight > maxInFlight) maxInFlight = inFlight;
    lastSentAt = now;
    const r = o.build(i);
    const req = request(
      {
        agent,
        host: u.hostname,
        port: u.port,
        method: 'POST',
        path: r.path,
        headers: { ...r.headers, 'content-length': String(Buffer.byteLength(r.body)) },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const answeredAt = performance.now();
          const code = String(res.statusCode ?? 0);
          status[code] = (status[code] ?? 0) + 1;
          answered++;
          latencies.push(answeredAt - scheduledAt);
          o.onAnswer?.({ i, status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8'), scheduledAt, sentAt: now, answeredAt });
          settleOne();
        });
        res.on('error', () => {
          errors++;
          settleOne();
        });
      },
    );
    req.on('error', () => {
      errors++;
      settleOne();
    });
    req.end(r.body);
  };

  const timer = setInterval(() => {
    const now = performance.now();
    const due = Math.min(total, Math.floor((now - start) / interval) + 1);
    while (next < due && !stopped) {
      send(next, start + next * interval);
      next++;
    }
    if (next >= total) stopNow();
  }, 1);

  function stopNow() {
    if (stopped) return;
    stopped = true;
    clearInterval(timer);
    if (inFlight === 0) finish();
  }

  const done = allAnswered.then(() => {
    const cpu = process.cpuUsage(cpu0);
    const wallMs = performance.now() - start;
    agent.destroy();
    const sendingSec = Math.max(0.001, (lastSentAt - start) / 1000 + interval / 1000);
    return {
      durationSec: sendingSec,
      scheduled: next,
      sent: next,
      answered,
      status,
      errors,
      late,
      maxLateMs,
      waitedForConnection: waited,
      maxInFlight,
      answeredPerSec: answered / sendingSec,
      latency: percentiles(latencies),
      generatorCpuPct: ((cpu.user + cpu.system) / 1000 / wallMs) * 100,
    };
  });
  return { done, stop: stopNow };
}
