/**
 * Crash: Vigil runs as a child process under load and is SIGKILLed at random moments, then
 * restarted, again and again. Afterwards every reading that got a 202 must be in the
 * warehouse exactly once and in the archive exactly once, no alert or webhook may be
 * duplicated, and no checkpoint may have moved backwards.
 *
 * Runs the compiled code (`npm test` builds first), as a user would.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { SqliteStore } from '../src/store/sqlite/sqlite-store.js';
import { ADMIN_KEY, api, reading, registerResident, tempDir, waitFor, webhookReceiver, freePort } from './helpers.js';

const KILLS = Number(process.env.VIGIL_CRASH_KILLS ?? 20);
const DEVICES = 8;
const BIN = new URL('../bin/vigil.js', import.meta.url).pathname;

function walk(dir: string): string[] {
  try {
    return readdirSync(dir).flatMap((n) => (statSync(join(dir, n)).isDirectory() ? walk(join(dir, n)) : n.startsWith('.') ? [] : [join(dir, n)]));
  } catch {
    return [];
  }
}

describe('crash: SIGKILL under load', () => {
  const dataDir = tempDir('vigil-crash-');
  let child: ChildProcess | null = null;
  let port = 0;
  let base = '';
  afterAll(() => {
    child?.kill('SIGKILL');
  });

  async function startChild(): Promise<void> {
    child = spawn(
      process.execPath,
      [BIN, 'start', '--simulate', '0', '--port', String(port), '--data-dir', dataDir, '--admin-key', ADMIN_KEY,
        '--processor-lease-ms', '1500', '--archive-flush-interval-ms', '300', '--notify-retry-base-ms', '100', '--notify-webhook-timeout-ms', '2000',
        '--status-interval-ms', '0', '--log-level', 'error'],
      { stdio: ['ignore', 'ignore', 'inherit'] },
    );
    await waitFor('vigil up', async () => (await fetch(`${base}/healthz`).catch(() => null))?.ok, 20_000, 50);
  }

  it(`keeps every accepted reading exactly once through ${KILLS} SIGKILLs`, async () => {
    port = await freePort();
    base = `http://127.0.0.1:${port}`;
    const hooks = await webhookReceiver();
    await startChild();
    const bands: Awaited<ReturnType<typeof registerResident>>[] = [];
    for (let i = 0; i < DEVICES; i++) bands.push(await registerResident(base, `crash-${i}`, hooks.url));

    const acked = new Map<string, Set<number>>(bands.map((b) => [b.deviceId, new Set<number>()]));
    // Event times stay in the past: ~1000 readings/s × 10 ms each runs slower than the clock.
    const t0 = Date.now() - 3_600_000;
    let load = true;
    let nextSeq = 0;
    // Each band resends a batch that got no answer, like a phone: duplicates must be absorbed.
    const drive = async (band: (typeof bands)[number]) => {
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

    const checkpoints = new Map<string, bigint>();
    const checkForward = () => {
      const store = SqliteStore.open(dataDir);
      return Promise.all(['alerts', 'warehouse', 'archive'].map((g) => store.listCheckpoints(g)))
        .then((lists) => {
          for (const cp of lists.flat()) {
            if (cp.sequence === null) continue;
            const key = `${cp.group}/${cp.partition}`;
            const seq = BigInt(cp.sequence);
            expect(seq >= (checkpoints.get(key) ?? 0n), `checkpoint ${key} moved back`).toBe(true);
            checkpoints.set(key, seq);
          }
        })
        .finally(() => store.close());
    };

    for (let k = 0; k < KILLS; k++) {
      await new Promise((r) => setTimeout(r, 200 + Math.random() * 1200));
      child!.kill('SIGKILL');
      await new Promise((r) => child!.once('exit', r));
      await checkForward();
      await startChild();
    }
    await new Promise((r) => setTimeout(r, 1000));
    load = false;
    await Promise.all(drivers);

    await waitFor(
      'groups caught up',
      async () => {
        const res = await api(base, 'GET', '/v1/admin/groups', { token: ADMIN_KEY });
        return res.body.groups?.every((g: { lag: number; caughtUp: boolean }) => g.caughtUp && g.lag === 0);
      },
      60_000,
      250,
    );
    await checkForward();

    let total = 0;
    for (const band of bands) {
      const expected = [...acked.get(band.deviceId)!].sort((a, b) => a - b);
      total += expected.length;
      const seen: number[] = [];
      let cursor: string | null = null;
      do {
        const q: string = `/v1/residents/${band.residentId}/readings?from=${t0 - 1}&to=${Date.now()}&limit=10000${cursor ? `&cursor=${cursor}` : ''}`;
        const res = await api(base, 'GET', q, { token: ADMIN_KEY });
        seen.push(...res.body.readings.map((r: { seq: number }) => r.seq));
        cursor = res.body.next;
      } while (cursor);
      // Readings sent but never answered may or may not be there; every acknowledged one is, once.
      expect(new Set(seen).size).toBe(seen.length);
      const seenSet = new Set(seen);
      expect(expected.filter((s) => !seenSet.has(s))).toEqual([]);
    }
    expect(total).toBeGreaterThan(KILLS * 10);

    await waitFor('archive flushed', async () => {
      const lines = walk(join(dataDir, 'archive')).flatMap((f) => gunzipSync(readFileSync(f)).toString('utf8').split('\n').filter(Boolean));
      const keys = lines.map((l) => {
        const { reading: r } = JSON.parse(l) as { reading: { deviceId: string; seq: number } };
        return `${r.deviceId}:${r.seq}`;
      });
      expect(new Set(keys).size).toBe(keys.length);
      const have = new Set(keys);
      return [...acked].every(([d, seqs]) => [...seqs].every((s) => have.has(`${d}:${s}`)));
    }, 20_000, 500);

    const alerts = (await api(base, 'GET', '/v1/alerts?limit=1000', { token: ADMIN_KEY })).body.alerts as { id: string; residentId: string; type: string }[];
    const perResident = new Set(alerts.map((a) => `${a.residentId}:${a.type}`));
    expect(perResident.size).toBe(alerts.length);
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
    console.log(`crash test: ${total} readings acknowledged, ${alerts.length} alerts, ${hooks.deliveries.length - byId.size} webhook resends after kills`);

    const stop = new Promise((r) => child!.once('exit', r));
    child!.kill('SIGTERM');
    await stop;
    child = null;
    await hooks.close();
  }, 600_000);
});
