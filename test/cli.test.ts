/**
 * The `vigil` command as a user runs it (compiled code, child processes): help, config
 * errors, `start` with the simulator and a clean Ctrl-C, and `replay` with its progress.
 */
import { spawn, spawnSync } from 'node:child_process';
import { afterAll, describe, expect, it } from 'vitest';
import type { Vigil } from '../src/app.js';
import { SqliteStore } from '../src/store/sqlite/sqlite-store.js';
import { EmbeddedStream } from '../src/stream/embedded/embedded-stream.js';
import { loadConfig } from '../src/core/config.js';
import { ADMIN_KEY, api, readArchive, reading, registerResident, startTestVigil, tempDir, waitFor, freePort } from './helpers.js';

const BIN = new URL('../bin/vigil.js', import.meta.url).pathname;
const vigilCli = (args: string[], env: Record<string, string> = {}) =>
  spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', env: { ...process.env, ...env }, timeout: 60_000 });

describe('vigil CLI', () => {
  it('prints help with the commands', () => {
    const out = vigilCli(['--help']);
    expect(out.status).toBe(0);
    for (const cmd of ['start', 'simulate', 'replay', '--group', '--from', '--devices', '--rate']) expect(out.stdout).toContain(cmd);
  });

  it('refuses a bad setting, naming the key and what is allowed', () => {
    const flag = vigilCli(['start', '--stream-partitions', 'lots']);
    expect(flag.status).toBe(2);
    expect(flag.stderr).toContain('config key stream.partitions (flag --stream-partitions): must be an integer from 1 to 1024; got "lots"');
    const env = vigilCli(['start'], { VIGIL_PORT: '-1' });
    expect(env.status).toBe(2);
    expect(env.stderr).toContain('config key port (env VIGIL_PORT): must be an integer from 0 to 65535');
    const unknown = vigilCli(['start', '--prot', '1']);
    expect(unknown.status).toBe(2);
    expect(unknown.stderr).toMatch(/Unknown option '--prot'/);
    expect(vigilCli(['config']).stdout).toContain('VIGIL_INGEST_RATE_LIMIT_PER_SECOND');
  });

  it('start runs a simulated fleet, prints where to look and its status, and stops cleanly on Ctrl-C', async () => {
    const dataDir = tempDir('vigil-start-');
    const port = await freePort();
    const child = spawn(process.execPath, [BIN, 'start', '--simulate', '3', '--port', String(port), '--data-dir', dataDir, '--status-interval-ms', '1000', '--log-level', 'warn'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (out += c.toString()));
    await waitFor('status lines with accepted readings', async () => /readings\/s accepted \([1-9]\d* total\)/.test(out), 30_000);
    expect(out).toContain(`Vigil is running on http://127.0.0.1:${port}`);
    expect(out).toMatch(/admin key {2}vadm_[A-Za-z0-9_-]{43}/);
    // The dashboard link carries the key shown once, in the fragment (never sent to a server).
    const dashboard = /dashboard {2}(http:\/\/\S+)#key=(vadm_\S+)/.exec(out);
    expect(dashboard?.[2]).toBe(/admin key {2}(vadm_\S+)/.exec(out)![1]);
    const page = await fetch(dashboard![1]);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('<div id="app">');
    expect(out).toMatch(/lag alerts=\d+ warehouse=\d+ archive=\d+ \| \d+ open alerts/);

    // A scenario on command reaches the alerts within seconds.
    const adminKey = /admin key {2}(vadm_\S+)/.exec(out)![1];
    const base = `http://127.0.0.1:${port}`;
    const injected = await api(base, 'POST', '/v1/simulator/scenarios', { token: adminKey, body: { device: 1, scenario: 'FALL' } });
    expect(injected.status).toBe(202);
    expect((await api(base, 'POST', '/v1/simulator/scenarios', { token: adminKey, body: { device: 99, scenario: 'FALL' } })).status).toBe(400);
    const fall = await waitFor('FALL alert', async () => (await api(base, 'GET', '/v1/alerts?type=FALL', { token: adminKey })).body.alerts?.[0], 20_000, 250);
    expect(fall).toMatchObject({ type: 'FALL', severity: 'critical', deviceId: 'band-0002' });
    // The demo contacts' inbox prints every step of the escalation; the status line counts them.
    const stepLine = (step: number) => new RegExp(`notify {2}FALL \\(critical\\) of ${fall.residentId}: step ${step} reached contact con_\\S+ by webhook`);
    await waitFor('the whole escalation', async () => [0, 1, 2].every((step) => stepLine(step).test(out)), 40_000, 250);
    await waitFor('notifications in the status line', async () => /notifications [3-9]\d* sent/.test(out), 5_000);
    // Acknowledging stops it: no repeat of the last step comes.
    expect((await api(base, 'POST', `/v1/alerts/${fall.id}/ack`, { token: adminKey, body: { by: 'demo' } })).status).toBe(200);
    const exited = new Promise<number | null>((r) => child.once('exit', r));
    child.kill('SIGINT');
    expect(await exited).toBe(0);
    expect(out).toContain('stopped cleanly');

    // Every group checkpointed what it had handled: all three are at the stream head.
    const stream = new EmbeddedStream({ dataDir, partitions: 8, retentionMs: 86_400_000 });
    const store = SqliteStore.open(dataDir);
    try {
      for (const group of ['alerts', 'warehouse', 'archive']) {
        for (let p = 0; p < 8; p++) {
          const head = await stream.head(p);
          const cp = await store.getCheckpoint(group, p);
          expect(cp?.sequence ?? null, `${group}/${p}`).toBe(head);
        }
      }
      expect((await store.listLeases('alerts')).every((l) => l.expiresAt <= Date.now())).toBe(true);
    } finally {
      await stream.close();
      await store.close();
    }
  }, 120_000);

  it('start gives a new fleet its last 36 h in the background: charts, a night of sleep, activity, and no alert from the past', async () => {
    const dataDir = tempDir('vigil-history-');
    const port = await freePort();
    const base = `http://127.0.0.1:${port}`;
    const startedAt = Date.now();
    const child = spawn(
      process.execPath,
      [BIN, 'start', '--simulate', '2', '--port', String(port), '--data-dir', dataDir, '--admin-key', ADMIN_KEY, '--status-interval-ms', '1000', '--log-level', 'warn'],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (out += c.toString()));
    const exited = new Promise<number | null>((r) => child.once('exit', r));
    try {
      // 2 residents × 36 h × one reading a minute, with its progress in the status line.
      await waitFor('the backfill-done line', async () => /history done: 4,320 readings, the last 36 h of 2 residents, loaded in \d+ s/.test(out), 30_000, 100);
      expect(out).toMatch(/history {4}the last 36 h of 2 new residents, one reading a minute/);
      expect(out).toMatch(/\| history [\d,]+ \/ 4,320 readings/);
      const residents = (await api(base, 'GET', '/v1/residents', { token: ADMIN_KEY })).body.residents as { id: string }[];
      expect(residents).toHaveLength(2);
      const HOUR = 3_600_000;
      for (const { id } of residents) {
        // Hourly buckets from 36 h ago to now, each full: 60 readings an hour in the past.
        const from = new Date(startedAt - 37 * HOUR).toISOString();
        const vitals = (await api(base, 'GET', `/v1/residents/${id}/vitals?from=${from}&step=1h`, { token: ADMIN_KEY })).body.vitals as { bucket: string; readings: number; hrAvg: number | null }[];
        expect(Date.parse(vitals[0].bucket)).toBeLessThanOrEqual(startedAt - 35 * HOUR);
        expect(vitals.length).toBeGreaterThanOrEqual(36);
        for (const v of vitals.slice(1, -1)) expect(v.readings, v.bucket).toBeGreaterThanOrEqual(60);
        // 36 h always hold a whole night, and a day with steps.
        const sleep = (await api(base, 'GET', `/v1/residents/${id}/sleep`, { token: ADMIN_KEY })).body.sessions as { totalSleepMin: number }[];
        expect(sleep.length).toBeGreaterThanOrEqual(1);
        expect(Math.max(...sleep.map((s) => s.totalSleepMin))).toBeGreaterThan(240);
        const days = (await api(base, 'GET', `/v1/residents/${id}/activity`, { token: ADMIN_KEY })).body.days as { steps: number }[];
        expect(Math.max(...days.map((d) => d.steps))).toBeGreaterThan(1000);
      }
      // Only the demo's live alerts (SOS on band 1 at 15 s, tachycardia on band 2 at 20 s): nothing in the past.
      const alerts = (await api(base, 'GET', '/v1/alerts?limit=100', { token: ADMIN_KEY })).body.alerts as { type: string; openedAt: string }[];
      expect(alerts.filter((a) => Date.parse(a.openedAt) < startedAt)).toEqual([]);
    } finally {
      child.kill('SIGINT');
    }
    expect(await exited).toBe(0);
    expect(out).toContain('stopped cleanly');
    // The archive has the past too (written at the groups' last flush, on Ctrl-C).
    const archived = await readArchive(loadConfig({ overrides: { dataDir } }));
    expect(archived?.lines.filter((l) => (l.reading.ts as number) < startedAt).length).toBe(4320);
  }, 60_000);

  describe('replay', () => {
    let vigil: Vigil;
    afterAll(async () => vigil?.stop());

    it('rewinds a group and shows progress until it has caught up', async () => {
      vigil = await startTestVigil();
      const band = await registerResident(vigil.url, 'band-replay');
      const t0 = Date.now() - 3_600_000;
      for (let b = 0; b < 40; b++) {
        const readings = Array.from({ length: 10 }, (_, i) => reading('band-replay', b * 10 + i, t0 + (b * 10 + i) * 5000));
        expect((await api(vigil.url, 'POST', '/v1/readings', { token: band.token, body: { readings } })).status).toBe(202);
      }
      await waitFor('warehouse loaded', async () => (await api(vigil.url, 'GET', `/v1/residents/${band.residentId}/readings?from=${t0}&limit=10000`, { token: ADMIN_KEY })).body.readings?.length === 400);

      const child = spawn(process.execPath, [BIN, 'replay', '--group', 'warehouse', '--from', 'TRIM_HORIZON', '--url', vigil.url, '--admin-key', ADMIN_KEY], { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      child.stdout.on('data', (c: Buffer) => (out += c.toString()));
      child.stderr.on('data', (c: Buffer) => (out += c.toString()));
      const code = await new Promise<number | null>((r) => child.once('exit', r));
      expect(out).toMatch(/\[[#.]{30}\] +\d+%/);
      expect(out).toMatch(/group warehouse caught up: \d+ records replayed/);
      expect(Number(/caught up: (\d+) records/.exec(out)![1])).toBeGreaterThanOrEqual(40);
      expect(code).toBe(0);
      const rows = await api(vigil.url, 'GET', `/v1/residents/${band.residentId}/readings?from=${t0}&limit=10000`, { token: ADMIN_KEY });
      expect(rows.body.readings).toHaveLength(400);

      // Checked before any request (spawnSync would block this process's Vigil otherwise).
      const bad = spawnSync(process.execPath, [BIN, 'replay', '--group', 'warehouse', '--from', 'yesterday', '--url', vigil.url, '--admin-key', ADMIN_KEY], { encoding: 'utf8', timeout: 20_000 });
      expect(bad.status).toBe(2);
      expect(bad.stderr).toContain('from must be TRIM_HORIZON, LATEST, an ISO-8601 time or a sequence number');
    }, 60_000);
  });
});
