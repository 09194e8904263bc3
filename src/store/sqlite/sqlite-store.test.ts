import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SqliteStore } from './sqlite-store.js';
import { storeConformance } from '../testing/conformance.js';
import { outboxFor, raise, T0 } from '../testing/fixtures.js';

let dir = '';
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'vigil-store-'));
});

storeConformance('SQLite', async () => SqliteStore.open(dir));

describe('SQLite store with several connections', () => {
  const stores: SqliteStore[] = [];
  afterEach(async () => {
    await Promise.all(stores.splice(0).map((s) => s.close()));
  });

  it('lets two connections to one file see each other’s writes', async () => {
    const a = SqliteStore.open(dir);
    const b = SqliteStore.open(dir);
    stores.push(a, b);
    await a.createResident({ id: 'res-1', name: 'Ada', birthDate: null, timezone: 'UTC', homeLocation: null });
    await b.createDevice({ deviceId: 'band-1', residentId: 'res-1', tokenHash: 'a'.repeat(64) });
    expect(await a.findDeviceByTokenHash('a'.repeat(64))).toMatchObject({ deviceId: 'band-1', residentId: 'res-1' });

    const lease = (await a.acquireLease('alerts', 0, 'worker-a', 10_000, 1000))!;
    expect(await b.acquireLease('alerts', 0, 'worker-b', 10_000, 2000)).toBeNull();
    await a.writeCheckpoint('alerts', 0, '3', { n: 3 }, { owner: lease.owner, epoch: lease.epoch });
    expect(await b.getCheckpoint('alerts', 0)).toMatchObject({ sequence: '3', snapshot: { n: 3 } });
    expect(await b.setSettingIfAbsent('k', 'b')).toBe(true);
    expect(await a.setSettingIfAbsent('k', 'a')).toBe(false);
  });

  it('migrates a schema-2 file: adds api_keys and keeps the data', async () => {
    const before = SqliteStore.open(dir);
    await before.createResident({ id: 'res-1', name: 'Ada', birthDate: null, timezone: 'UTC', homeLocation: null });
    await before.close();
    // The file as a schema-2 Vigil left it: no api_keys table.
    const raw = new Database(join(dir, 'store.db'));
    raw.exec('DROP TABLE api_keys');
    raw.pragma('user_version = 2');
    raw.close();

    const store = SqliteStore.open(dir);
    stores.push(store);
    expect(await store.getResident('res-1')).toMatchObject({ name: 'Ada' });
    await store.createApiKey({ id: 'key-1', name: 'app', keyHash: 'a'.repeat(64), scopes: ['vitals:read'], residentIds: null, createdAt: T0 });
    expect(await store.findApiKeyByHash('a'.repeat(64))).toMatchObject({ id: 'key-1', revokedAt: null });
    const check = new Database(join(dir, 'store.db'), { readonly: true });
    expect(check.pragma('user_version', { simple: true })).toBe(3);
    check.close();
  });

  it('creates the data directory when it is missing', async () => {
    const store = SqliteStore.open(join(dir, 'nested', 'deeper'));
    stores.push(store);
    expect(await store.getSetting('anything')).toBeNull();
  });

  it('turns a raise into a recurrence when another connection opened that alert while outboxFor ran', async () => {
    const a = SqliteStore.open(dir);
    const b = SqliteStore.open(dir);
    stores.push(a, b);
    // One resident, two bands on two partitions: two workers can raise the same (resident, type).
    // b commits while a awaits outboxFor, so a's rerun must find b's alert and only count a recurrence.
    const la = (await a.acquireLease('alerts', 0, 'worker-a', 10_000, T0))!;
    const lb = (await b.acquireLease('alerts', 1, 'worker-b', 10_000, T0))!;
    const cp = (partition: number, lease: typeof la) => ({ group: 'alerts', partition, sequence: '1', snapshot: null, fence: lease });

    const created = await a.commitAlertBatch(
      [raise('alr-a')],
      async (alert) => {
        await b.commitAlertBatch([raise('alr-b')], outboxFor, cp(1, lb));
        return outboxFor(alert);
      },
      cp(0, la),
    );
    expect(created).toEqual([]);
    expect(await a.getAlert('alr-a')).toBeNull();
    expect(await a.getAlert('alr-b')).toMatchObject({ state: 'open', occurrences: 2 });
    expect(await a.listOutbox('alr-a')).toEqual([]);
    expect(await a.listOutbox('alr-b')).toHaveLength(2);
    expect(await a.getCheckpoint('alerts', 0)).toMatchObject({ sequence: '1' });
  });

  it('never hands a lease or an outbox row to two threads', async () => {
    const setup = SqliteStore.open(dir);
    stores.push(setup);
    const lease = (await setup.acquireLease('alerts', 0, 'setup', 10_000, T0))!;
    const alerts = 150;
    await setup.commitAlertBatch(
      Array.from({ length: alerts }, (_, i) => raise(`alr-${i}`, `T${i}`)),
      outboxFor,
      { group: 'alerts', partition: 0, sequence: '1', snapshot: null, fence: lease },
    );

    const contenders = ['thread-1', 'thread-2'].map((owner) => startContender(dir, owner));
    await Promise.all(contenders.map((c) => c.ready));
    for (const c of contenders) c.go();
    const results = await Promise.all(contenders.map((c) => c.done));
    const leases = results.flatMap((r) => r.leases);
    const claimed = results.flatMap((r) => r.claimed);
    expect(leases.sort((x, y) => x - y)).toEqual(Array.from({ length: 100 }, (_, p) => p));
    expect(claimed).toHaveLength(alerts * 2);
    expect(new Set(claimed).size).toBe(alerts * 2);
  });
});

interface Contender {
  /** Resolves once the thread has its connection open. */
  ready: Promise<void>;
  go(): void;
  done: Promise<{ leases: number[]; claimed: string[] }>;
}

/**
 * A worker thread with its own connection that, on `go`, races for leases on partitions 0–99
 * of group "contended", then claims outbox rows two at a time until none are left. Both
 * contenders start together so their transactions really overlap. The body is an ES module
 * started through core/ts-worker-boot.mjs, which lets it import the TypeScript store.
 */
function startContender(dataDir: string, owner: string): Contender {
  const body = `
    import { workerData, parentPort } from 'node:worker_threads';
    const { SqliteStore } = await import(workerData.store);
    const store = SqliteStore.open(workerData.dataDir);
    parentPort.once('message', async () => {
      const leases = [];
      for (let p = 0; p < 100; p++) {
        if (await store.acquireLease('contended', p, workerData.owner, 60000, ${T0})) leases.push(p);
      }
      const claimed = [];
      for (let batch; (batch = await store.claimOutbox(${T0}, 2)).length; ) claimed.push(...batch.map((o) => o.id));
      await store.close();
      parentPort.postMessage({ leases, claimed });
    });
    parentPort.postMessage('ready');
  `;
  const worker = new Worker(new URL('../../core/ts-worker-boot.mjs', import.meta.url), {
    workerData: {
      __vigilEntry: 'data:text/javascript,' + encodeURIComponent(body),
      dataDir,
      owner,
      store: new URL('./sqlite-store.ts', import.meta.url).href,
    },
  });
  const failed = new Promise<never>((_, reject) => {
    worker.once('error', reject);
    worker.once('exit', (code) => reject(new Error(`contender ${owner} exited with ${code}`)));
  });
  failed.catch(() => {}); // observed through ready/done
  const messages = (n: number) =>
    new Promise<unknown>((resolve) => {
      let seen = 0;
      worker.on('message', (m) => ++seen === n && resolve(m));
    });
  return {
    ready: Promise.race([messages(1), failed]).then(() => undefined),
    go: () => worker.postMessage('go'),
    done: Promise.race([messages(2), failed]) as Promise<{ leases: number[]; claimed: string[] }>,
  };
}
