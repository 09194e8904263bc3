import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AdminApiError, HttpAdminClient, homeLocationFor, provisionFleet } from './provision.js';
import { runSimulate } from './simulate-command.js';
import { ADMIN_KEY, fakeVigil, type FakeVigil } from './testing/fake-vigil.js';

let vigil: FakeVigil;
let dir: string;
beforeEach(async () => {
  vigil = await fakeVigil();
  dir = await mkdtemp(join(tmpdir(), 'vigil-sim-'));
});
afterEach(async () => {
  await vigil.close();
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
      const home = r.homeLocation as { lat: number; lon: number; radiusM: number };
      expect(Math.abs(home.lat - 48.8566)).toBeLessThan(0.1);
      expect(Math.abs(home.lon - 2.3522)).toBeLessThan(0.15);
      expect(home.radiusM).toBe(200);
    }
    // Each band knows its resident's home, so its readings are located around it.
    for (const d of devices) expect(d.homeLocation).toEqual(vigil.residents.get(d.residentId)!.homeLocation);
    expect(devices[1].homeLocation).toEqual(homeLocationFor(2));
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

  it('gives devices of a state file from before homes were kept the home their resident was created with', async () => {
    const admin = new HttpAdminClient(vigil.url, ADMIN_KEY);
    const stateFile = join(dir, 'fleet.json');
    const first = await provisionFleet(admin, 2, { stateFile });
    const old = { devices: first.map(({ homeLocation: _home, ...d }) => d) };
    await writeFile(stateFile, JSON.stringify(old));
    expect(await provisionFleet(admin, 2, { stateFile })).toEqual(first);
  });

  it('names devices with the prefix given', async () => {
    const admin = new HttpAdminClient(vigil.url, ADMIN_KEY);
    expect((await provisionFleet(admin, 2, { deviceIdPrefix: 'csv-' })).map((d) => d.deviceId)).toEqual(['csv-0001', 'csv-0002']);
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
