import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AdminApiError, HttpAdminClient, provisionFleet } from './provision.js';
import { runSimulate } from './simulate-command.js';

const ADMIN_KEY = 'adm_test';

/** The admin and ingest endpoints the simulator uses, on 127.0.0.1, with state in memory. */
async function fakeVigil() {
  const residents = new Map<string, Record<string, unknown>>();
  const contacts: { residentId: string; body: Record<string, unknown> }[] = [];
  const devices = new Map<string, { residentId: string; token: string }>();
  const readings: { deviceId: string; seq: number; events?: string[] }[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}') as Record<string, unknown>;
      const answer = (status: number, json: unknown) => res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(json));
      const problem = (status: number, detail: string) =>
        res.writeHead(status, { 'content-type': 'application/problem+json' }).end(JSON.stringify({ status, detail }));
      const auth = req.headers.authorization ?? '';
      if (req.url === '/v1/readings') {
        const batch = (body.readings ?? [body]) as { deviceId: string; seq: number }[];
        if (auth !== `Bearer ${devices.get(batch[0].deviceId)?.token}`) return problem(401, 'Invalid token');
        readings.push(...batch);
        return answer(202, { accepted: batch.length, duplicates: 0, rejected: [] });
      }
      if (auth !== `Bearer ${ADMIN_KEY}`) return problem(401, 'Invalid admin key');
      if (req.url === '/v1/residents') {
        const id = `res_${residents.size + 1}`;
        residents.set(id, body);
        return answer(201, { id });
      }
      const contact = /^\/v1\/residents\/([^/]+)\/contacts$/.exec(req.url ?? '');
      if (contact) {
        if (!residents.has(decodeURIComponent(contact[1]))) return problem(404, 'No such resident');
        contacts.push({ residentId: decodeURIComponent(contact[1]), body });
        return answer(201, { id: `con_${contacts.length}` });
      }
      if (req.url === '/v1/devices') {
        const deviceId = body.deviceId as string;
        if (devices.has(deviceId)) return problem(409, `device ${deviceId} already exists`);
        const token = `dev_${deviceId}`;
        devices.set(deviceId, { residentId: body.residentId as string, token });
        return answer(201, { deviceId, token });
      }
      problem(404, 'Not found');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { url, server, residents, contacts, devices, readings };
}

let vigil: Awaited<ReturnType<typeof fakeVigil>>;
let dir: string;
beforeEach(async () => {
  vigil = await fakeVigil();
  dir = await mkdtemp(join(tmpdir(), 'vigil-sim-'));
});
afterEach(async () => {
  await new Promise((resolve) => vigil.server.close(resolve));
  await rm(dir, { recursive: true, force: true });
});

describe('HttpAdminClient', () => {
  it('throws the status and problem detail of a refusal', async () => {
    const bad = new HttpAdminClient(vigil.url, 'wrong');
    await expect(bad.createResident({ name: 'X' })).rejects.toMatchObject({ status: 401, message: expect.stringContaining('Invalid admin key') });
    const admin = new HttpAdminClient(vigil.url + '/', ADMIN_KEY);
    const err = await admin.createContact('res_nope', { name: 'Y' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AdminApiError);
    expect(err).toMatchObject({ status: 404, detail: expect.stringContaining('No such resident') });
  });
});

describe('provisionFleet', () => {
  it('creates plausible residents, a contact each and bands band-0001…', async () => {
    const admin = new HttpAdminClient(vigil.url, ADMIN_KEY);
    const devices = await provisionFleet(admin, 3);
    expect(devices.map((d) => d.deviceId)).toEqual(['band-0001', 'band-0002', 'band-0003']);
    expect(new Set(devices.map((d) => d.residentId)).size).toBe(3);
    for (const d of devices) expect(vigil.devices.get(d.deviceId)).toEqual({ residentId: d.residentId, token: d.token });
    for (const r of vigil.residents.values()) {
      expect(r.name).toMatch(/^\p{L}+ \p{L}+$/u);
      expect(Number((r.birthDate as string).slice(0, 4))).toBeGreaterThanOrEqual(1930);
      expect(Number((r.birthDate as string).slice(0, 4))).toBeLessThanOrEqual(1950);
      expect(r.timezone).toBe('Europe/Paris');
      const home = r.homeLocation as { lat: number; lon: number };
      expect(Math.abs(home.lat - 48.8566)).toBeLessThan(0.1);
      expect(Math.abs(home.lon - 2.3522)).toBeLessThan(0.15);
    }
    expect(vigil.contacts.map((c) => c.residentId).sort()).toEqual([...vigil.residents.keys()].sort());
    expect(vigil.contacts[0].body.email).toMatch(/@example\.com$/);
  });

  it('reuses the devices of its state file and appends new ones', async () => {
    const admin = new HttpAdminClient(vigil.url, ADMIN_KEY);
    const stateFile = join(dir, 'fleet.json');
    const first = await provisionFleet(admin, 2, { stateFile });
    const again = await provisionFleet(admin, 4, { stateFile });
    expect(again.slice(0, 2)).toEqual(first);
    expect(again.map((d) => d.deviceId)).toEqual(['band-0001', 'band-0002', 'band-0003', 'band-0004']);
    expect(vigil.devices.size).toBe(4);
    expect(JSON.parse(await readFile(stateFile, 'utf8'))).toEqual({ devices: again });
    expect(await provisionFleet(admin, 3, { stateFile })).toEqual(again.slice(0, 3));
    expect(vigil.residents.size).toBe(4);
    expect(await readdir(dir)).toEqual(['fleet.json']); // no temporary file left behind
  });

  it('skips device ids already taken on the server', async () => {
    const admin = new HttpAdminClient(vigil.url, ADMIN_KEY);
    await provisionFleet(admin, 2); // a run without a state file
    const devices = await provisionFleet(admin, 2, { stateFile: join(dir, 'fleet.json') });
    expect(devices.map((d) => d.deviceId)).toEqual(['band-0003', 'band-0004']);
  });
});

describe('runSimulate', () => {
  it('provisions, drives the fleet for its duration with a scenario, and reports', async () => {
    const lines: string[] = [];
    const stats = await runSimulate({
      url: vigil.url,
      adminKey: ADMIN_KEY,
      devices: 3,
      rate: 6,
      batch: 1,
      accHz: 5,
      durationMs: 1500,
      scenario: { name: 'SOS', deviceIndex: 1 },
      statusIntervalMs: 500,
      log: (l) => lines.push(l),
    });
    expect(stats.generated).toBeGreaterThanOrEqual(6);
    expect(stats).toMatchObject({ devices: 3, accepted: stats.generated, errors: 0, buffered: 0 });
    expect(vigil.readings).toHaveLength(stats.accepted);
    expect(vigil.readings.filter((r) => r.events?.includes('SOS')).map((r) => r.deviceId)).toEqual(['band-0002']);
    expect(lines.some((l) => /readings\/s sent · accepted \d+/.test(l))).toBe(true);
    expect(lines.at(-1)).toMatch(/^simulate: stopped · /);
  });

  it('stops when its signal aborts', async () => {
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 800);
    const started = Date.now();
    const stats = await runSimulate({ url: vigil.url, adminKey: ADMIN_KEY, devices: 2, rate: 4, batch: 1, accHz: 5, log: () => {}, signal: ac.signal });
    expect(Date.now() - started).toBeLessThan(5000);
    expect(stats.accepted).toBeGreaterThan(0);
    expect(stats.inFlight).toBe(0);
  });

  it('refuses bad options before creating anything', async () => {
    const base = { url: vigil.url, adminKey: ADMIN_KEY, devices: 2, log: () => {} };
    await expect(runSimulate({ ...base, scenario: { name: 'FALL', deviceIndex: 2 } })).rejects.toThrow(RangeError);
    await expect(runSimulate({ ...base, rate: 0 })).rejects.toThrow(RangeError);
    await expect(runSimulate({ ...base, accHz: 1000, rate: 0.1 })).rejects.toThrow(RangeError);
    expect(vigil.residents.size).toBe(0);
  });
});
