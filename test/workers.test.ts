/**
 * Many workers: `vigil api` and three `vigil worker` processes against one configuration, under
 * continuous load. Partitions are shared through leases (a joining worker takes a fair share); one
 * worker is SIGKILLed and its partitions are taken over within the lease time; a new worker is
 * added and the partitions rebalance onto it. Through all of it, every accepted reading is
 * processed once: in the warehouse and the archive exactly once, every SOS counted once on its one
 * alert, one webhook per alert.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig, flagName, type SettingKey } from '../src/core/config.js';
import { GROUP_NAMES } from '../src/processor/groups/registry.js';
import { openStore } from '../src/store/registry.js';
import { serviceUp } from '../src/testing/services.js';
import { ADMIN_KEY, api, freePort, readArchive, readingKey, realEngines, reading, registerResident, tempDir, waitFor, webhookReceiver } from './helpers.js';

const BIN = new URL('../bin/vigil.js', import.meta.url).pathname;
const PARTITIONS = 8; // stream.partitions' default
const BANDS = 12;
/** Every band's SOS button is pressed on every 20th reading: each press is one more occurrence of its one alert. */
const SOS_EVERY = 20;
/** Between a band's requests (two readings each): ~80 readings/s in all, a load the workers keep up with on a busy machine. */
const PACE_MS = 300;

// On the embedded backends the DuckDB warehouse has one owning process, so only the alerts and
// archive workers come and go; on NATS + PostgreSQL every worker runs every group.
const ALL = GROUP_NAMES.join(',');
const engines = [
  {
    name: 'embedded backends',
    setup: async () => ({ overrides: {} as Partial<Record<SettingKey, unknown>>, cleanup: async () => undefined }),
    workers: ['alerts,archive', 'warehouse', 'alerts,archive'],
    added: 'alerts,archive',
    warehouseReadable: false,
  },
  ...((await serviceUp('postgres')) && (await serviceUp('nats'))
    ? [{ name: 'NATS JetStream + PostgreSQL', setup: realEngines, workers: [ALL, ALL, ALL], added: ALL, warehouseReadable: true }]
    : []),
];

interface Worker {
  child: ChildProcess;
  port: number;
  groups: string[];
}

/** How `n` workers split the partitions when balanced, ascending: 8 on 3 is 2, 3, 3. */
function fairShares(n: number): number[] {
  const low = Math.floor(PARTITIONS / n);
  return Array.from({ length: n }, (_, i) => (i < n - (PARTITIONS % n) ? low : low + 1));
}

describe.each(engines)('api and workers in separate processes on $name', ({ setup, workers: groupsOf, added, warehouseReadable }) => {
  const dataDir = tempDir('vigil-workers-');
  const children: ChildProcess[] = [];
  let engine: Awaited<ReturnType<typeof realEngines>>;
  afterAll(async () => {
    for (const c of children) c.kill('SIGKILL');
    await engine?.cleanup();
  });

  const config = () => loadConfig({ env: {}, overrides: { dataDir, ...engine.overrides } });

  async function spawnVigil(command: string[], port: number): Promise<ChildProcess> {
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

  async function startWorker(groups: string): Promise<Worker> {
    const port = await freePort();
    return { child: await spawnVigil(['worker', '--groups', groups], port), port, groups: groups.split(',') };
  }

  /**
   * Whether the live leases of every group are held by exactly the given workers (matched by pid:
   * a lease owner is `host:pid:random:group`), in fair shares. A killed worker still holding a
   * lease, a joined worker without its share, or a partition nobody holds all answer false.
   */
  async function balancedOver(live: Worker[]): Promise<boolean> {
    const store = await openStore(config());
    try {
      for (const group of GROUP_NAMES) {
        const running = live.filter((w) => w.groups.includes(group));
        const held = new Map<number, number>();
        for (const l of await store.listLeases(group)) {
          if (l.expiresAt <= Date.now()) continue;
          const pid = Number(/:(\d+):[0-9a-f]+:[a-z]+$/.exec(l.owner)?.[1]);
          held.set(pid, (held.get(pid) ?? 0) + 1);
        }
        const pids = running.map((w) => w.child.pid!).sort();
        if ([...held.keys()].sort().join() !== pids.join()) return false;
        if ([...held.values()].sort((a, b) => a - b).join() !== fairShares(running.length).join()) return false;
      }
      return true;
    } finally {
      await store.close();
    }
  }

  /**
   * Every band posts two readings at a time, one request after the other, until stopped; each
   * answered 202 with both accepted (durable), so `sent` is exactly what must come out the other
   * end. Event time starts two hours back, so the 5-s readings never run into the future.
   */
  function startLoad(base: string, bands: Awaited<ReturnType<typeof registerResident>>[]) {
    const t0 = Date.now() - 7_200_000;
    const sent = new Map(bands.map((b) => [b.deviceId, 0]));
    const failures: string[] = [];
    let running = true;
    const loops = bands.map(async (b) => {
      while (running) {
        const seq = sent.get(b.deviceId)!;
        const readings = [seq, seq + 1].map((k) => reading(b.deviceId, k, t0 + k * 5000, k % SOS_EVERY === 0 ? { events: ['SOS'] } : {}));
        const res = await api(base, 'POST', '/v1/readings', { token: b.token, body: { readings } }).catch((err: Error) => ({ status: 0, body: err.message }));
        if (res.status === 202 && res.body.accepted === 2) sent.set(b.deviceId, seq + 2);
        else {
          failures.push(`${b.deviceId}:${seq} ${res.status} ${JSON.stringify(res.body)}`);
          return; // what happened to these two is unknown: stop this band rather than guess
        }
        await new Promise((r) => setTimeout(r, PACE_MS));
      }
    });
    return {
      t0,
      sent,
      failures,
      async stop() {
        running = false;
        await Promise.all(loops);
      },
    };
  }

  it('rebalances as workers are killed and added under load, and processes every reading once', async () => {
    engine = await setup();
    const apiPort = await freePort();
    const base = `http://127.0.0.1:${apiPort}`;
    await spawnVigil(['api'], apiPort);
    // Started together, they race for the leases and settle on fair shares (a worker that joins
    // a running set is the added one below).
    let live = await Promise.all(groupsOf.map(startWorker));
    const first = live[0];
    await waitFor('partitions shared by three workers', () => balancedOver(live), 20_000, 200);

    const hooks = await webhookReceiver();
    const bands: Awaited<ReturnType<typeof registerResident>>[] = [];
    for (let i = 0; i < BANDS; i++) bands.push(await registerResident(base, `multi-${i}`, hooks.url));
    const load = startLoad(base, bands);
    try {
      await waitFor(`${BANDS} SOS alerts`, async () => (await api(base, 'GET', '/v1/alerts?type=SOS', { token: ADMIN_KEY })).body.alerts.length === BANDS);

      // Killed mid-batch: whatever it had not checkpointed is processed again by whoever takes over.
      first.child.kill('SIGKILL');
      live = live.slice(1);
      await waitFor('the survivors take over every partition of the killed worker', () => balancedOver(live), 20_000, 200);

      const joined = await startWorker(added);
      live = [...live, joined];
      await waitFor('partitions rebalanced onto the added worker', () => balancedOver(live), 20_000, 200);
      // It does not merely hold leases: it processes the load of its partitions in every group it runs.
      await waitFor('the added worker handles records', async () => {
        const metrics = await (await fetch(`http://127.0.0.1:${joined.port}/metrics`)).text();
        return joined.groups.every((g) => Number(new RegExp(`vigil_group_handled_records\\{group="${g}"\\} (\\d+)`).exec(metrics)?.[1] ?? 0) > 0);
      }, 20_000, 200);
    } finally {
      await load.stop();
    }
    expect(load.failures).toEqual([]);
    // Long enough for every band to press SOS again after its alert opened: recurrences are counted too.
    expect(Math.min(...load.sent.values())).toBeGreaterThan(SOS_EVERY);
    const expected = bands.flatMap((b) => Array.from({ length: load.sent.get(b.deviceId)! }, (_, seq) => readingKey({ deviceId: b.deviceId, seq })));

    // The archive: every accepted reading once, whichever worker wrote or rewrote its object.
    const archived = await waitFor('archive complete', async () => {
      const got = await readArchive(config());
      return got && got.lines.length >= expected.length && got.lines.map((l) => readingKey(l.reading));
    }, 30_000, 300);
    expect(archived.sort()).toEqual([...expected].sort());

    // Alerts: one per band, every press of its button counted once (a batch processed again after
    // the kill must not count its SOS twice, nor open a second alert).
    const presses = (deviceId: string) => Math.ceil(load.sent.get(deviceId)! / SOS_EVERY);
    const sos = await waitFor('every SOS counted', async () => {
      const alerts = (await api(base, 'GET', `/v1/alerts?type=SOS&limit=1000`, { token: ADMIN_KEY })).body.alerts as { id: string; deviceId: string; occurrences: number }[];
      return alerts.reduce((n, a) => n + a.occurrences, 0) >= bands.reduce((n, b) => n + presses(b.deviceId), 0) && alerts;
    }, 30_000, 300);
    expect(sos.map((a) => [a.deviceId, a.occurrences]).sort()).toEqual(bands.map((b) => [b.deviceId, presses(b.deviceId)]).sort());
    const all = (await api(base, 'GET', '/v1/alerts?limit=1000', { token: ADMIN_KEY })).body.alerts as { residentId: string; type: string; state: string }[];
    const unresolved = all.filter((a) => a.state !== 'resolved').map((a) => `${a.residentId}:${a.type}`);
    expect(new Set(unresolved).size).toBe(unresolved.length);
    // One webhook per alert (a resend after the kill reuses its delivery id).
    await waitFor('webhooks', async () => new Set(hooks.deliveries.map((d) => d.headers['x-vigil-delivery'])).size >= BANDS);
    await new Promise((r) => setTimeout(r, 500));
    const delivered = new Map(hooks.deliveries.map((d) => [d.headers['x-vigil-delivery'], JSON.parse(d.body).alert.id as string]));
    expect([...delivered.values()].sort()).toEqual(sos.map((a) => a.id).sort());

    if (warehouseReadable) {
      // Every reading in the warehouse exactly once, whichever worker loaded it, and the minute
      // aggregates counting each once too.
      for (const b of bands) {
        const n = load.sent.get(b.deviceId)!;
        const rows = await waitFor('warehouse rows', async () => {
          const res = await api(base, 'GET', `/v1/residents/${b.residentId}/readings?from=${load.t0}&to=${Date.now()}&limit=10000`, { token: ADMIN_KEY });
          return res.body.readings?.length >= n && res.body.readings;
        }, 20_000, 200);
        expect(rows.map((r: { seq: number }) => r.seq)).toEqual(Array.from({ length: n }, (_, seq) => seq));
        const vitals = await api(base, 'GET', `/v1/residents/${b.residentId}/vitals?from=${load.t0 - 3_600_000}&to=${Date.now()}&step=1h`, { token: ADMIN_KEY });
        expect(vitals.body.vitals.reduce((sum: number, v: { readings: number }) => sum + v.readings, 0)).toBe(n);
      }
    } else {
      // The DuckDB warehouse belongs to its worker's process: the API says so instead of guessing.
      const wh = await api(base, 'GET', `/v1/residents/${bands[0].residentId}/readings`, { token: ADMIN_KEY });
      expect(wh.status).toBe(503);
    }
    await hooks.close();
  }, 120_000);
});
