import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { Fleet, type FleetDevice } from './fleet.js';
import { distanceM } from './testing/geo.js';

interface Request {
  deviceId: string;
  seqs: number[];
  firstTs: string;
  events: string[];
  locations: { lat: number; lon: number }[];
  at: number;
  status: number;
}

type Wire = { deviceId: string; seq: number; ts: string; events?: string[]; location?: { lat: number; lon: number } };
type Reply = { status: number; headers?: Record<string, string>; body?: unknown } | undefined;

/**
 * A stand-in for Vigil's ingest on 127.0.0.1: checks each request's bearer token against the
 * device, dedups by (deviceId, seq) and answers 202 like the real one, unless `override`
 * answers first (for 503s, 400s, slow answers).
 */
async function ingestServer(devices: FleetDevice[], override?: (r: Request, n: number) => Reply | Promise<Reply>) {
  const tokens = new Map(devices.map((d) => [d.deviceId, d.token]));
  const requests: Request[] = [];
  const accepted = new Map<string, number[]>();
  const read = async (req: IncomingMessage) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    return JSON.parse(Buffer.concat(chunks).toString('utf8')) as { readings?: Wire[] } & Partial<Wire>;
  };
  const server: Server = createServer((req, res) => {
    void (async () => {
      const body = await read(req);
      const readings = body.readings ?? [body as Wire];
      const deviceId = readings[0].deviceId;
      const events = readings.flatMap((r) => r.events ?? []);
      const locations = readings.flatMap((r) => (r.location ? [r.location] : []));
      const request: Request = { deviceId, seqs: readings.map((r) => r.seq), firstTs: readings[0].ts, events, locations, at: Date.now(), status: 0 };
      requests.push(request);
      let reply: Reply;
      if (req.headers.authorization !== `Bearer ${tokens.get(deviceId)}` || readings.some((r) => r.deviceId !== deviceId))
        reply = { status: 401, body: { status: 401, detail: 'Invalid token' } };
      else reply = await override?.(request, requests.length);
      if (!reply) {
        const seen = accepted.get(deviceId) ?? [];
        accepted.set(deviceId, seen);
        const fresh = readings.filter((r) => !seen.includes(r.seq));
        seen.push(...fresh.map((r) => r.seq));
        reply = { status: 202, body: { accepted: fresh.length, duplicates: readings.length - fresh.length, rejected: [] } };
      }
      request.status = reply.status;
      const type = reply.status < 300 ? 'application/json' : 'application/problem+json';
      res.writeHead(reply.status, { 'content-type': type, ...reply.headers }).end(JSON.stringify(reply.body ?? {}));
    })();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  servers.push(server);
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, requests, accepted, server };
}

const servers: Server[] = [];
const fleets: Fleet[] = [];
afterEach(async () => {
  await Promise.all(fleets.splice(0).map((f) => f.stop()));
  await Promise.all(servers.splice(0).map((s) => new Promise((resolve) => s.close(resolve))));
});

const devicesOf = (n: number): FleetDevice[] =>
  Array.from({ length: n }, (_, i) => ({ deviceId: `band-${i + 1}`, token: `tok-${i + 1}`, residentId: `res-${i + 1}` }));
const fleetOf = (opts: ConstructorParameters<typeof Fleet>[0]) => {
  const f = new Fleet(opts);
  fleets.push(f);
  return f;
};
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Each device's seqs in arrival order must run on without a gap or a step back. */
function expectInOrderWithoutGaps(accepted: Map<string, number[]>) {
  for (const seqs of accepted.values()) expect(seqs).toEqual(seqs.map((_, i) => seqs[0] + i));
}

describe('Fleet', () => {
  it('paces readings across the fleet, staggers devices and authenticates each', async () => {
    const devices = devicesOf(4);
    const srv = await ingestServer(devices);
    const fleet = fleetOf({ url: srv.url, devices, rate: 8, accHz: 5 });
    expect(fleet.intervalMs).toBe(500);
    fleet.start();
    await sleep(2000);
    const stats = await fleet.stop();

    const total = srv.requests.length;
    expect(total).toBeGreaterThanOrEqual(10); // 16 expected in 2 s at 8/s
    expect(total).toBeLessThanOrEqual(22);
    expect(srv.requests.every((r) => r.status === 202 && r.seqs.length === 1)).toBe(true);
    expect(stats).toMatchObject({ errors: 0, accepted: total, sent: total, duplicates: 0, rejected: 0, inFlight: 0 });
    expect(stats.readingsPerSecond).toBeGreaterThan(3);
    expect(stats.readingsPerSecond).toBeLessThan(16);
    expect(srv.accepted.size).toBe(4);
    expectInOrderWithoutGaps(srv.accepted);
    // Staggered evenly over the 500 ms interval rather than all at once.
    const first = devices.map((d) => srv.requests.find((r) => r.deviceId === d.deviceId)!);
    const firstTs = first.map((r) => Date.parse(r.firstTs));
    firstTs.forEach((ts, i) => expect(Math.abs(ts - firstTs[0] - i * 125)).toBeLessThanOrEqual(1));
    expect(Math.max(...first.map((r) => r.at)) - Math.min(...first.map((r) => r.at))).toBeGreaterThanOrEqual(200);
  });

  it('batches readings and flushes the last partial batch at the end of its duration', async () => {
    const devices = devicesOf(2);
    const srv = await ingestServer(devices);
    const fleet = fleetOf({ url: srv.url, devices, rate: 20, batch: 4, accHz: 5, durationMs: 1100 });
    fleet.start();
    const stats = await fleet.done;

    expect(stats.generated).toBeGreaterThanOrEqual(18);
    expect(stats).toMatchObject({ accepted: stats.generated, buffered: 0, errors: 0 });
    for (const d of devices) {
      const sizes = srv.requests.filter((r) => r.deviceId === d.deviceId).map((r) => r.seqs.length);
      expect(sizes[0]).toBe(4);
      for (const n of sizes.slice(0, -1)) expect(n).toBeGreaterThanOrEqual(4);
    }
    expectInOrderWithoutGaps(srv.accepted);
  });

  it('keeps readings through 503s and resends them in order after Retry-After', async () => {
    const devices = devicesOf(2);
    let outageEnds = 0;
    const srv = await ingestServer(devices, () => {
      outageEnds ||= Date.now() + 1000;
      return Date.now() < outageEnds ? { status: 503, headers: { 'retry-after': '1' }, body: { detail: 'stream busy' } } : undefined;
    });
    const fleet = fleetOf({ url: srv.url, devices, rate: 10, accHz: 5, durationMs: 2500 });
    fleet.start();
    const stats = await fleet.done;

    expect(stats.errors).toBeGreaterThanOrEqual(1);
    expect(stats.lastError).toBe('503 stream busy');
    expect(stats).toMatchObject({ accepted: stats.generated, buffered: 0, dropped: 0, duplicates: 0 });
    expectInOrderWithoutGaps(srv.accepted);
    for (const d of devices) {
      const mine = srv.requests.filter((r) => r.deviceId === d.deviceId);
      const refused = mine.findIndex((r) => r.status === 503);
      if (refused < 0) continue;
      expect(mine[refused + 1].at - mine[refused].at).toBeGreaterThanOrEqual(900);
      expect(mine[refused + 1].seqs[0]).toBe(mine[refused].seqs[0]);
    }
    // The backlog went out in batches, not one reading per request.
    expect(Math.max(...srv.requests.map((r) => r.seqs.length))).toBeGreaterThan(1);
  });

  it('drops a request refused with 400 instead of resending it', async () => {
    const devices = devicesOf(1);
    const srv = await ingestServer(devices, (_r, n) => (n === 1 ? { status: 400, body: { detail: 'seq must be an integer' } } : undefined));
    const fleet = fleetOf({ url: srv.url, devices, rate: 10, accHz: 5 });
    fleet.start();
    await sleep(700);
    const stats = await fleet.stop();

    const refused = srv.requests[0].seqs[0];
    expect(stats).toMatchObject({ rejected: 1, errors: 1, lastError: '400 seq must be an integer' });
    expect(srv.requests.filter((r) => r.seqs.includes(refused))).toHaveLength(1);
    expect(stats.accepted).toBe(srv.requests.length - 1);
  });

  it('counts network errors and keeps the readings', async () => {
    const devices = devicesOf(1);
    const srv = await ingestServer(devices);
    await new Promise((resolve) => srv.server.close(resolve)); // nothing listens on that port now
    const fleet = fleetOf({ url: srv.url, devices, rate: 10, accHz: 5 });
    fleet.start();
    await sleep(500);
    const stats = await fleet.stop();
    expect(stats.errors).toBeGreaterThanOrEqual(1);
    expect(stats.lastError).toBe('ECONNREFUSED');
    expect(stats.accepted).toBe(0);
    expect(stats.buffered).toBe(stats.generated);
  });

  it('stop() resolves once the requests in flight have ended', async () => {
    const devices = devicesOf(2);
    let answered = 0;
    const srv = await ingestServer(devices, async () => {
      await sleep(300);
      answered++;
      return undefined;
    });
    const fleet = fleetOf({ url: srv.url, devices, rate: 10, accHz: 5 });
    fleet.start();
    await sleep(150);
    const inFlight = fleet.stats().inFlight;
    expect(inFlight).toBeGreaterThan(0);
    const stats = await fleet.stop();
    expect(stats.inFlight).toBe(0);
    expect(answered).toBe(srv.requests.length);
    expect(stats.accepted).toBe(answered);
  });

  it('holds readings made out of range and delivers them late: shuffled, in batches between live ones, each once', async () => {
    const devices = devicesOf(1);
    const srv = await ingestServer(devices);
    const fleet = fleetOf({ url: srv.url, devices, rate: 10, accHz: 5, durationMs: 3000 });
    fleet.start();
    fleet.inject(0, 'OUT_OF_RANGE', undefined, 1500); // from the first reading: 15 readings of 100 ms
    const stats = await fleet.done;

    expect(stats).toMatchObject({ late: 15, accepted: stats.generated, duplicates: 0, buffered: 0, errors: 0 });
    const [seqs] = [...srv.accepted.values()];
    const first = Math.min(...seqs);
    expect([...seqs].sort((a, b) => a - b)).toEqual(seqs.map((_, i) => first + i)); // all of them, once
    const isLate = (seq: number) => seq < first + 15;
    const lateRequests = srv.requests.filter((r) => r.seqs.some(isLate));
    expect(lateRequests.length).toBeGreaterThanOrEqual(3);
    for (const r of lateRequests) expect(r.seqs.every(isLate)).toBe(true); // late and live never share a request
    const lateSeqs = lateRequests.flatMap((r) => r.seqs);
    expect(lateSeqs).not.toEqual([...lateSeqs].sort((a, b) => a - b));
    // Nothing until the link was back, then a live reading first, and live ones between late batches.
    const idx = lateRequests.map((r) => srv.requests.indexOf(r));
    expect(srv.requests[0].seqs[0]).toBe(first + 15);
    expect(idx[0]).toBeGreaterThan(0);
    for (let i = 1; i < idx.length; i++) expect(idx[i] - idx[i - 1]).toBeGreaterThanOrEqual(2);
    // The live ones kept their order.
    const live = srv.requests.filter((r) => !r.seqs.some(isLate)).flatMap((r) => r.seqs);
    expect(live).toEqual([...live].sort((a, b) => a - b));
  });

  it('locates readings around each resident’s home', async () => {
    const home = { lat: 48.87, lon: 2.33 };
    const devices = devicesOf(2).map((d, i) => (i === 0 ? { ...d, homeLocation: home } : d));
    const srv = await ingestServer(devices);
    const fleet = fleetOf({ url: srv.url, devices, rate: 10, accHz: 5 });
    fleet.start();
    await sleep(500);
    await fleet.stop();
    const mine = srv.requests.filter((r) => r.deviceId === 'band-1').flatMap((r) => r.locations);
    expect(mine.length).toBeGreaterThan(0);
    // At home, or on the model's walk around the block (within 200 m of home), whatever the hour this runs.
    for (const l of mine) expect(distanceM(l, home)).toBeLessThan(250);
    expect(srv.requests.filter((r) => r.deviceId === 'band-2').flatMap((r) => r.locations).length).toBeGreaterThan(0);
  });

  it('plays an injected scenario on the device named', async () => {
    const devices = devicesOf(2);
    const srv = await ingestServer(devices);
    const fleet = fleetOf({ url: srv.url, devices, rate: 10, accHz: 5 });
    fleet.start();
    fleet.inject('band-2', 'SOS');
    await sleep(600);
    await fleet.stop();
    expect(srv.requests.flatMap((r) => r.events.map((e) => `${r.deviceId}:${e}`))).toEqual(['band-2:SOS']);
    expect(() => fleet.inject(5, 'SOS')).toThrow(RangeError);
  });
});
