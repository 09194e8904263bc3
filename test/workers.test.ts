/**
 * Many workers: `vigil api` and several `vigil worker` processes against one configuration.
 * Partitions are shared through leases (a joining worker takes a fair share), a killed worker's
 * partitions are taken over within the lease time, and nothing is processed twice.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig, flagName, type SettingKey } from '../src/core/config.js';
import { openStore } from '../src/store/registry.js';
import { serviceUp } from '../src/testing/services.js';
import { ADMIN_KEY, api, freePort, realEngines, reading, registerResident, tempDir, waitFor, webhookReceiver } from './helpers.js';

const BIN = new URL('../bin/vigil.js', import.meta.url).pathname;

function archived(dir: string): string[] {
  const walk = (d: string): string[] => {
    try {
      return readdirSync(d).flatMap((n) => (statSync(join(d, n)).isDirectory() ? walk(join(d, n)) : n.startsWith('.') ? [] : [join(d, n)]));
    } catch {
      return [];
    }
  };
  return walk(dir).flatMap((f) =>
    gunzipSync(readFileSync(f))
      .toString('utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => {
        const { reading: r } = JSON.parse(l) as { reading: { deviceId: string; seq: number } };
        return `${r.deviceId}:${r.seq}`;
      }),
  );
}

// On the embedded backends the DuckDB warehouse has one owning process; on NATS + PostgreSQL
// every worker runs every group.
const engines = [
  {
    name: 'embedded backends',
    setup: async () => ({ overrides: {} as Partial<Record<SettingKey, unknown>>, cleanup: async () => undefined }),
    joining: 'alerts,archive',
    others: [['alerts,archive'], ['warehouse']],
    warehouseReadable: false,
  },
  ...((await serviceUp('postgres')) && (await serviceUp('nats'))
    ? [{ name: 'NATS JetStream + PostgreSQL', setup: realEngines, joining: 'alerts,warehouse,archive', others: [['alerts,warehouse,archive'], ['alerts,warehouse,archive']], warehouseReadable: true }]
    : []),
];

describe.each(engines)('api and workers in separate processes on $name', ({ setup, joining, others, warehouseReadable }) => {
  const dataDir = tempDir('vigil-workers-');
  const children: ChildProcess[] = [];
  let engine: Awaited<ReturnType<typeof realEngines>>;
  afterAll(async () => {
    for (const c of children) c.kill('SIGKILL');
    await engine?.cleanup();
  });

  async function run(command: string[], port: number): Promise<ChildProcess> {
    const child = spawn(
      process.execPath,
      [BIN, ...command, '--port', String(port), '--data-dir', dataDir, '--admin-key', ADMIN_KEY, '--processor-lease-ms', '1500',
        '--archive-flush-interval-ms', '300', '--notify-webhook-timeout-ms', '2000', '--status-interval-ms', '0', '--log-level', 'error',
        ...Object.entries(engine.overrides).flatMap(([key, value]) => [flagName(key), String(value)])],
      { stdio: ['ignore', 'ignore', 'inherit'] },
    );
    children.push(child);
    await waitFor(`${command.join(' ')} up`, async () => (await fetch(`http://127.0.0.1:${port}/healthz`).catch(() => null))?.ok, 20_000, 50);
    return child;
  }

  async function owners(group: string): Promise<Map<string, number>> {
    const store = await openStore(loadConfig({ env: {}, overrides: { dataDir, ...engine.overrides } }));
    try {
      const counts = new Map<string, number>();
      for (const l of await store.listLeases(group)) if (l.expiresAt > Date.now()) counts.set(l.owner, (counts.get(l.owner) ?? 0) + 1);
      return counts;
    } finally {
      await store.close();
    }
  }

  it('shares partitions, survives a killed worker, and processes every reading once', async () => {
    engine = await setup();
    const apiPort = await freePort();
    const base = `http://127.0.0.1:${apiPort}`;
    await run(['api'], apiPort);
    const w1 = await run(['worker', '--groups', others[0][0]], await freePort());
    await waitFor('worker 1 holds every alerts partition', async () => [...(await owners('alerts')).values()].join() === '8');
    await run(['worker', '--groups', others[1][0]], await freePort());
    await run(['worker', '--groups', joining], await freePort());
    // The second alerts worker joins: the first hands half over.
    const share = others[1][0].includes('alerts') ? '2,3,3' : '4,4';
    await waitFor(`alerts partitions shared ${share}`, async () => [...(await owners('alerts')).values()].sort().join() === share, 20_000, 200);
    await waitFor(`archive partitions shared ${share}`, async () => [...(await owners('archive')).values()].sort().join() === share, 20_000, 200);

    const hooks = await webhookReceiver();
    const t0 = Date.now() - 600_000;
    const bands: Awaited<ReturnType<typeof registerResident>>[] = [];
    for (let i = 0; i < 12; i++) bands.push(await registerResident(base, `multi-${i}`, hooks.url));
    const send = async (from: number, to: number) => {
      for (const b of bands) {
        const readings = Array.from({ length: to - from }, (_, k) => reading(b.deviceId, from + k, t0 + (from + k) * 5000, from + k === from ? { events: ['SOS'] } : {}));
        expect((await api(base, 'POST', '/v1/readings', { token: b.token, body: { readings } })).status).toBe(202);
      }
    };
    await send(0, 10);
    await waitFor('12 SOS alerts', async () => (await api(base, 'GET', '/v1/alerts?type=SOS', { token: ADMIN_KEY })).body.alerts.length === 12);

    w1.kill('SIGKILL');
    const after = others[1][0].includes('alerts') ? '4,4' : '8';
    await waitFor('the survivors take over every alerts partition', async () => [...(await owners('alerts')).values()].sort().join() === after, 20_000, 200);
    // Resolve-free recurrences must not add alerts; new residents do.
    await send(10, 20);
    const late = await registerResident(base, 'multi-late', hooks.url);
    await api(base, 'POST', '/v1/readings', { token: late.token, body: reading('multi-late', 0, t0, { events: ['SOS'] }) });
    await waitFor('13 SOS alerts', async () => (await api(base, 'GET', '/v1/alerts?type=SOS', { token: ADMIN_KEY })).body.alerts.length === 13);

    const expected = new Set([...bands.flatMap((b) => Array.from({ length: 20 }, (_, k) => `${b.deviceId}:${k}`)), 'multi-late:0']);
    await waitFor('archive complete', async () => {
      const keys = archived(join(dataDir, 'archive'));
      return keys.length >= expected.size && keys;
    }, 20_000, 300);
    const keys = archived(join(dataDir, 'archive'));
    expect(new Set(keys).size).toBe(keys.length);
    expect(new Set(keys)).toEqual(expected);
    await waitFor('webhooks', async () => new Set(hooks.deliveries.map((d) => d.headers['x-vigil-delivery'])).size === 13);
    if (warehouseReadable) {
      // Every reading in the warehouse exactly once, whichever worker loaded it.
      for (const b of bands) {
        const rows = await waitFor('warehouse rows', async () => {
          const res = await api(base, 'GET', `/v1/residents/${b.residentId}/readings?from=${t0 - 1}&to=${Date.now()}`, { token: ADMIN_KEY });
          return res.body.readings?.length >= 20 && res.body.readings;
        });
        expect(rows.map((r: { seq: number }) => r.seq)).toEqual(Array.from({ length: 20 }, (_, k) => k));
      }
    } else {
      // The DuckDB warehouse belongs to its worker's process: the API says so instead of guessing.
      const wh = await api(base, 'GET', `/v1/residents/${bands[0].residentId}/readings`, { token: ADMIN_KEY });
      expect(wh.status).toBe(503);
    }
    await hooks.close();
  }, 120_000);
});
