/**
 * Crash harness: Vigil runs as child processes under load, one of them is SIGKILLed at a random
 * moment and restarted, again and again. Afterwards every reading that got a 202 must be in the
 * warehouse exactly once and in the archive exactly once, no alert or webhook may be
 * duplicated, and no checkpoint may have moved backwards.
 *
 * A topology says which processes run: `vigil start` alone (all-in-one), or `vigil api` and
 * `vigil worker`s. Used by test/crash.test.ts, test/crash-workers.test.ts (20 kills each in
 * `npm test`) and test/soak/crash.soak.ts (200 each in `npm run test:soak`).
 *
 * Runs the compiled code (`npm test` builds first), as a user would.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { flagName, loadConfig, type SettingKey } from '../src/core/config.js';
import { openStore } from '../src/store/registry.js';
import type { Store } from '../src/store/types.js';
import { serviceUp } from '../src/testing/services.js';
import { ADMIN_KEY, api, freePort, readArchive, readingKey, reading, realEngines, registerResident, tempDir, waitFor, webhookReceiver } from './helpers.js';

const BIN = new URL('../bin/vigil.js', import.meta.url).pathname;
const GROUPS = ['alerts', 'warehouse', 'archive'];
const DEVICES = 8;

export interface Engine {
  overrides: Partial<Record<SettingKey, unknown>>;
  cleanup(): Promise<void>;
}

export interface Topology {
  name: string;
  /** The backends, set up fresh for one run; null skips the suite (a service is down and not required). */
  engine(): Promise<Engine | null>;
  /** Each process's command; the first one serves the API (and takes the load). */
  processes: { name: string; command: string[] }[];
}

/** `vigil start` alone on the embedded backends (SQLite log and store, DuckDB warehouse, local archive). */
export const ALL_IN_ONE: Topology = {
  name: 'all-in-one on the embedded backends',
  engine: async () => ({ overrides: {}, cleanup: async () => undefined }),
  processes: [{ name: 'vigil start', command: ['start', '--simulate', '0'] }],
};

/**
 * `vigil api` and two `vigil worker`s, each running every group, on NATS JetStream + PostgreSQL
 * (store and warehouse) with a shared local archive: a killed worker's partitions go to the other
 * within the lease, a killed api drops requests the bands resend. Not on the embedded backends:
 * there the DuckDB warehouse belongs to one process and the API cannot read it
 * (test/workers.test.ts), so "every reading in the warehouse" is not checkable through it. Skipped
 * when PostgreSQL or NATS is down, a failure with VIGIL_REQUIRE_SERVICES=1.
 */
export const API_AND_WORKERS: Topology = {
  name: 'api and two workers on NATS JetStream + PostgreSQL',
  engine: async () => ((await serviceUp('postgres')) && (await serviceUp('nats')) ? realEngines() : null),
  processes: [
    { name: 'vigil api', command: ['api'] },
    { name: 'worker 1', command: ['worker', '--groups', 'alerts,warehouse,archive'] },
    { name: 'worker 2', command: ['worker', '--groups', 'alerts,warehouse,archive'] },
  ],
};

/** What a process printed last, kept to tell why it died. */
const KEEP_OUTPUT = 16 * 1024;

/** One Vigil process that keeps its port across restarts, so clients find it again. */
class VigilChild {
  private child: ChildProcess | null = null;
  private expectingExit = false;
  /** Exits nobody asked for, with the process's last output: a process must only die when the harness kills it. */
  readonly unexpectedExits: string[] = [];
  readonly url: string;

  constructor(
    readonly name: string,
    private readonly args: string[],
    readonly port: number,
  ) {
    this.url = `http://127.0.0.1:${port}`;
  }

  async start(): Promise<void> {
    this.expectingExit = false;
    // Piped, not ignored: its error logs (stdout, pino) and stack traces (stderr) are the only
    // account of an exit nobody asked for.
    const child = spawn(process.execPath, [BIN, ...this.args, '--port', String(this.port)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    const keep = (chunk: Buffer) => (output = (output + chunk.toString('utf8')).slice(-KEEP_OUTPUT));
    child.stdout!.on('data', keep);
    child.stderr!.on('data', keep);
    child.once('exit', (code, signal) => {
      if (!this.expectingExit) this.unexpectedExits.push(`${this.name} (pid ${child.pid}) exited by itself (${code ?? signal}) at ${new Date().toISOString()}; its last output:\n${output}`);
    });
    this.child = child;
    await waitFor(`${this.name} up`, async () => {
      if (child.exitCode !== null || child.signalCode !== null) throw new Error(`${this.name} exited (${child.exitCode ?? child.signalCode}) while starting:\n${output}`);
      return (await fetch(`${this.url}/healthz`).catch(() => null))?.ok;
    }, 30_000, 50);
  }

  /** Throws with the account of any exit nobody asked for. */
  assertAlive(): void {
    if (this.unexpectedExits.length) throw new Error(this.unexpectedExits.join('\n'));
  }

  async signal(sig: 'SIGKILL' | 'SIGTERM'): Promise<void> {
    const child = this.child;
    if (!child) return;
    this.expectingExit = true;
    this.child = null;
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill(sig);
    await exited;
  }
}

/** Checkpoints as read from the store after each kill: each (group, partition) may only move forward. */
function checkpointWatch(store: Store) {
  const last = new Map<string, bigint>();
  return async () => {
    for (const cp of (await Promise.all(GROUPS.map((g) => store.listCheckpoints(g)))).flat()) {
      if (cp.sequence === null) continue;
      const key = `${cp.group}/${cp.partition}`;
      const seq = BigInt(cp.sequence);
      expect(seq >= (last.get(key) ?? 0n), `checkpoint ${key} moved back from ${last.get(key)} to ${seq}`).toBe(true);
      last.set(key, seq);
    }
    return last.size;
  };
}

type Band = Awaited<ReturnType<typeof registerResident>>;

/**
 * Every band posts batches of 5 readings (an SOS every 50 seqs) as fast as answered; a batch
 * that got no 202 is resent as is, like a phone, so duplicates must be absorbed. `acked` holds
 * what got a 202.
 */
function driveLoad(base: string, bands: Band[]) {
  const acked = new Map<string, Set<number>>(bands.map((b) => [b.deviceId, new Set<number>()]));
  // Event times stay in the past: ~1000 readings/s × 10 ms each runs slower than the clock.
  const t0 = Date.now() - 3_600_000;
  let load = true;
  let nextSeq = 0;
  const drive = async (band: Band) => {
    let pending: ReturnType<typeof reading>[] = [];
    while (load) {
      if (pending.length === 0) {
        pending = Array.from({ length: 5 }, () => {
          const seq = nextSeq++;
          return reading(band.deviceId, seq, t0 + seq * 10, seq % 50 === 7 ? { events: ['SOS'] } : {});
        });
      }
      const res = await api(base, 'POST', '/v1/readings', { token: band.token, body: { readings: pending } }).catch(() => null);
      if (res?.status === 202) {
        for (const r of pending) acked.get(band.deviceId)!.add(r.seq);
        pending = [];
      } else {
        await new Promise((r) => setTimeout(r, 50));
      }
    }
  };
  const drivers = bands.map(drive);
  return {
    acked,
    t0,
    async stop() {
      load = false;
      await Promise.all(drivers);
    },
  };
}

/** A copy of `items` in random order (Fisher–Yates). */
function shuffled<T>(items: T[]): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

/** Sum of every group's lag over the processes that run groups (from /metrics: workers serve no admin API). */
/** Lag summed over the processes running groups, and how many partitions each group's threads hold in all. */
async function groupProgress(urls: string[]): Promise<{ lag: number; owned: Map<string, number> }> {
  let lag = 0;
  const owned = new Map<string, number>();
  for (const url of urls) {
    const text = await (await fetch(`${url}/metrics`)).text();
    for (const m of text.matchAll(/^vigil_group_lag_records\{[^}]*\} (\d+)/gm)) lag += Number(m[1]);
    for (const m of text.matchAll(/^vigil_group_partitions_owned\{group="([^"]+)"\} (\d+)/gm)) owned.set(m[1], (owned.get(m[1]) ?? 0) + Number(m[2]));
  }
  return { lag, owned };
}

/** Declares the crash suite for `topology` with `kills` SIGKILLs. */
export function crashSuite(topology: Topology, kills: number): void {
  describe(`crash: SIGKILL under load, ${topology.name}`, () => {
    const dataDir = tempDir('vigil-crash-');
    const procs: VigilChild[] = [];
    let engine: Engine | null = null;
    let store: Store | null = null;
    let passed = false;
    afterAll(async () => {
      for (const p of procs) await p.signal('SIGKILL');
      await store?.close();
      await engine?.cleanup();
      // A failed run keeps its data dir (stream, store, warehouse, archive) to look into.
      if (passed) rmSync(dataDir, { recursive: true, force: true });
      else console.error(`crash harness: data kept in ${dataDir}`);
    });

    it(`keeps every accepted reading exactly once through ${kills} SIGKILLs`, async (ctx) => {
      engine = await topology.engine();
      if (!engine) return ctx.skip();
      const common = ['--data-dir', dataDir, '--admin-key', ADMIN_KEY, '--processor-lease-ms', '1500', '--archive-flush-interval-ms', '300',
        '--notify-retry-base-ms', '100', '--notify-webhook-timeout-ms', '2000', '--status-interval-ms', '0', '--log-level', 'error',
        ...Object.entries(engine.overrides).flatMap(([key, value]) => [flagName(key), String(value)])];
      for (const p of topology.processes) {
        const child = new VigilChild(p.name, [...p.command, ...common], await freePort());
        procs.push(child);
        await child.start();
      }
      const base = procs[0].url;
      // Processes that run groups: all but a bare `vigil api`.
      const groupUrls = procs.filter((p, i) => topology.processes[i].command[0] !== 'api').map((p) => p.url);
      const config = loadConfig({ env: {}, overrides: { dataDir, ...engine.overrides } });
      store = await openStore(config);
      const checkForward = checkpointWatch(store);

      const hooks = await webhookReceiver();
      const bands: Band[] = [];
      for (let i = 0; i < DEVICES; i++) bands.push(await registerResident(base, `crash-${i}`, hooks.url));
      const load = driveLoad(base, bands);

      const killed = new Map<string, number>();
      // Victims are drawn from a shuffled bag refilled with every process: random order, yet no
      // process escapes (20 independent draws over three would miss one about once in a thousand).
      let bag: VigilChild[] = [];
      for (let k = 0; k < kills; k++) {
        await new Promise((r) => setTimeout(r, 200 + Math.random() * 1200));
        if (bag.length === 0) bag = shuffled(procs);
        const victim = bag.pop()!;
        killed.set(victim.name, (killed.get(victim.name) ?? 0) + 1);
        for (const p of procs) p.assertAlive();
        await victim.signal('SIGKILL');
        await checkForward();
        await victim.start();
      }
      await new Promise((r) => setTimeout(r, 1000));
      await load.stop();
      if (kills >= procs.length) expect(killed.size).toBe(procs.length);

      // Caught up: every partition of every group owned again, and lag 0 for 5 s on end. Lag is
      // reported by owners only: a process just restarted reports none before its threads' first
      // stats, nor for partitions whose dead owner's lease has not expired, so a sum of 0 alone
      // can come before the groups have even resumed.
      let zeroSince: number | null = null;
      await waitFor('groups caught up', async () => {
        for (const p of procs) p.assertAlive();
        const { lag, owned } = await groupProgress(groupUrls);
        const resumed = GROUPS.every((g) => owned.get(g) === config['stream.partitions']);
        if (lag > 0 || !resumed) zeroSince = null;
        else zeroSince ??= Date.now();
        return zeroSince !== null && Date.now() - zeroSince >= 5000;
      }, 120_000, 250);
      expect(await checkForward()).toBeGreaterThan(0);

      // The warehouse: every acknowledged reading once; readings sent but never answered may or may not be there.
      let total = 0;
      for (const band of bands) {
        const expected = [...load.acked.get(band.deviceId)!].sort((a, b) => a - b);
        total += expected.length;
        let missing: number[] = [];
        const seen = await waitFor(`warehouse rows of ${band.deviceId}`, async () => {
          const rows: number[] = [];
          let cursor: string | null = null;
          do {
            const q: string = `/v1/residents/${band.residentId}/readings?from=${load.t0 - 1}&to=${Date.now()}&limit=10000${cursor ? `&cursor=${cursor}` : ''}`;
            const res = await api(base, 'GET', q, { token: ADMIN_KEY });
            rows.push(...res.body.readings.map((r: { seq: number }) => r.seq));
            cursor = res.body.next;
          } while (cursor);
          const have = new Set(rows);
          missing = expected.filter((s) => !have.has(s));
          return missing.length === 0 && rows;
        }, 60_000, 500).catch(() => null);
        expect(seen, `warehouse misses ${missing.length} of ${expected.length} acknowledged readings of ${band.deviceId}: seqs ${missing.slice(0, 20).join(', ')}`).not.toBeNull();
        expect(new Set(seen).size, `warehouse doubles readings of ${band.deviceId}`).toBe(seen!.length);
      }
      expect(total).toBeGreaterThan(kills * 10);

      // The archive: every acknowledged reading, and no reading twice.
      await waitFor('archive complete', async () => {
        const archive = await readArchive(config);
        if (!archive) return false;
        const keys = archive.lines.map((l) => readingKey(l.reading));
        expect(new Set(keys).size, 'a reading archived twice').toBe(keys.length);
        const have = new Set(keys);
        return [...load.acked].every(([deviceId, seqs]) => [...seqs].every((seq) => have.has(readingKey({ deviceId, seq }))));
      }, 20_000, 500);

      // One SOS alert per resident however often it recurred and however often its group died.
      const alerts = (await api(base, 'GET', '/v1/alerts?limit=1000', { token: ADMIN_KEY })).body.alerts as { id: string; residentId: string; type: string }[];
      expect(new Set(alerts.map((a) => `${a.residentId}:${a.type}`)).size).toBe(alerts.length);
      expect(alerts.length).toBeGreaterThan(0);
      await waitFor('webhooks delivered', async () => new Set(hooks.deliveries.map((d) => d.headers['x-vigil-delivery'])).size === alerts.length, 20_000);
      // One notification per (alert, contact). On the wire it is at-least-once: a kill between the
      // receiver's answer and Vigil recording it resends it once, with the same delivery id and
      // body, which is what receivers deduplicate on (docs/webhooks.md).
      const byId = new Map<string, Set<string>>();
      for (const d of hooks.deliveries) {
        const id = d.headers['x-vigil-delivery'] as string;
        if (!byId.has(id)) byId.set(id, new Set());
        byId.get(id)!.add(d.body);
      }
      expect([...byId.values()].every((bodies) => bodies.size === 1), 'a resend differs from the first send').toBe(true);
      const alertIds = [...byId.keys()].map((id) => id.split(':')[0]);
      expect(new Set(alertIds).size).toBe(alertIds.length);
      expect(new Set(alertIds)).toEqual(new Set(alerts.map((a) => a.id)));

      expect(procs.flatMap((p) => p.unexpectedExits)).toEqual([]);
      console.log(
        `crash test (${topology.name}): ${total} readings acknowledged, kills ${[...killed].map(([n, c]) => `${n} ${c}`).join(', ')}, ` +
          `${alerts.length} alerts, ${hooks.deliveries.length - byId.size} webhook resends after kills`,
      );
      for (const p of procs) await p.signal('SIGTERM');
      await hooks.close();
      passed = true;
    }, Math.max(600_000, kills * 15_000));
  });
}
