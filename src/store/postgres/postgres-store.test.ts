import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { serviceUp } from '../../testing/services.js';
import { storeConformance } from '../testing/conformance.js';
import { checkpointOf, outboxFor, raise, T0 } from '../testing/fixtures.js';
import { PostgresStore } from './postgres-store.js';

const SERVER = 'postgres://postgres@127.0.0.1:5432';

const up = await serviceUp('postgres');

const uniqueName = (prefix: string) => `${prefix}_${randomBytes(6).toString('hex')}`;
const urlFor = (database: string, schema: string) =>
  `${SERVER}/${database}?options=${encodeURIComponent(`-c search_path=${schema}`)}`;

describe.skipIf(!up)('PostgreSQL store', () => {
  // Each test gets a fresh schema in database `test`, dropped afterwards.
  let admin: pg.Pool;
  let schema = '';
  let url = '';
  beforeAll(() => {
    admin = new pg.Pool({ connectionString: `${SERVER}/test`, max: 1 });
  });
  afterAll(() => admin.end());
  beforeEach(async () => {
    schema = uniqueName('vigil_test');
    url = urlFor('test', schema);
    await admin.query(`CREATE SCHEMA ${schema}`);
  });
  afterEach(async () => {
    await admin.query(`DROP SCHEMA ${schema} CASCADE`);
  });

  storeConformance('PostgreSQL', () => PostgresStore.open(url));

  describe('with several pools', () => {
    const stores: PostgresStore[] = [];
    const open = async () => {
      const store = await PostgresStore.open(url);
      stores.push(store);
      return store;
    };
    afterEach(async () => {
      await Promise.all(stores.splice(0).map((s) => s.close()));
    });

    it('lets two pools see each other’s writes', async () => {
      const [a, b] = await Promise.all([open(), open()]);
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

    it('keeps its tables in the search_path schema', async () => {
      await open();
      const { rows } = await admin.query<{ table_name: string }>(
        'SELECT table_name FROM information_schema.tables WHERE table_schema = $1 ORDER BY table_name',
        [schema],
      );
      expect(rows.map((r) => r.table_name)).toEqual([
        'alerts',
        'checkpoints',
        'contacts',
        'devices',
        'leases',
        'outbox',
        'residents',
        'schema_version',
        'settings',
      ]);
    });

    it('turns a raise into a recurrence when another pool opened that alert while outboxFor ran', async () => {
      const [a, b] = await Promise.all([open(), open()]);
      // One resident, two bands on two partitions: two workers can raise the same (resident, type).
      // b commits while a awaits outboxFor, so a's rerun must find b's alert and only count a recurrence.
      const la = (await a.acquireLease('alerts', 0, 'worker-a', 10_000, T0))!;
      const lb = (await b.acquireLease('alerts', 1, 'worker-b', 10_000, T0))!;
      const created = await a.commitAlertBatch(
        [raise('alr-a')],
        async (alert) => {
          await b.commitAlertBatch([raise('alr-b')], outboxFor, checkpointOf(lb));
          return outboxFor(alert);
        },
        checkpointOf(la),
      );
      expect(created).toEqual([]);
      expect(await a.getAlert('alr-a')).toBeNull();
      expect(await a.getAlert('alr-b')).toMatchObject({ state: 'open', occurrences: 2 });
      expect(await a.listOutbox('alr-a')).toEqual([]);
      expect(await a.listOutbox('alr-b')).toHaveLength(2);
      expect(await a.getCheckpoint('alerts', 0)).toMatchObject({ sequence: '1' });
    });

    it('applies concurrent batches of one resident one after the other, without deadlock', async () => {
      const [a, b] = await Promise.all([open(), open()]);
      const la = (await a.acquireLease('alerts', 0, 'worker-a', 60_000, T0))!;
      const lb = (await b.acquireLease('alerts', 1, 'worker-b', 60_000, T0))!;
      // Each round both workers raise the same two types, in opposite orders: without the
      // resident lock they would collide on the one-unresolved index or wait on each other.
      const rounds = 20;
      const created = await Promise.all([
        (async () => {
          const ids: string[] = [];
          for (let i = 0; i < rounds; i++) {
            const batch = [raise(`a-${i}-x`, `X${i}`), raise(`a-${i}-y`, `Y${i}`)];
            ids.push(...(await a.commitAlertBatch(batch, outboxFor, checkpointOf(la, String(i)))).map((x) => x.id));
          }
          return ids;
        })(),
        (async () => {
          const ids: string[] = [];
          for (let i = 0; i < rounds; i++) {
            const batch = [raise(`b-${i}-y`, `Y${i}`), raise(`b-${i}-x`, `X${i}`)];
            ids.push(...(await b.commitAlertBatch(batch, async (x) => outboxFor(x), checkpointOf(lb, String(i)))).map((x) => x.id));
          }
          return ids;
        })(),
      ]);
      const ids = created.flat();
      expect(ids).toHaveLength(rounds * 2);
      expect(await a.countOpenAlerts()).toBe(rounds * 2);
      for (const id of ids) {
        expect(await a.getAlert(id)).toMatchObject({ state: 'open', occurrences: 2 });
        expect(await a.listOutbox(id)).toHaveLength(2);
      }
    });

    it('makes a takeover wait for the batch under way, so nothing moves the checkpoint the new owner resumes from', async () => {
      const [a, b] = await Promise.all([open(), open()]);
      await a.createResident({ id: 'res-1', name: 'Ada', birthDate: null, timezone: 'UTC', homeLocation: null });
      const old = (await a.acquireLease('alerts', 0, 'worker-a', 10_000, T0))!;
      // A batch big enough to take a while; b takes the expired lease and reads the checkpoint
      // while a's second round (the one that commits) runs.
      let resumedFrom: Promise<string | null> | undefined;
      const batch = Array.from({ length: 500 }, (_, i) => raise(`alr-${i}`, `T${i}`));
      const committed = a.commitAlertBatch(
        batch,
        (alert) => {
          resumedFrom ??= new Promise((resolve) => setTimeout(resolve, 100)).then(async () => {
            await b.acquireLease('alerts', 0, 'worker-b', 10_000, T0 + 10_000);
            return (await b.getCheckpoint('alerts', 0))?.sequence ?? null;
          });
          return outboxFor(alert);
        },
        checkpointOf(old, '1'),
      );
      await committed.catch(() => undefined); // committed before the takeover, or refused after it
      expect(await resumedFrom).toBe((await a.getCheckpoint('alerts', 0))?.sequence ?? null);
    });

    it('never hands a lease or an outbox row to two pools', async () => {
      const setup = await open();
      const lease = (await setup.acquireLease('alerts', 0, 'setup', 10_000, T0))!;
      const alerts = 150;
      await setup.commitAlertBatch(
        Array.from({ length: alerts }, (_, i) => raise(`alr-${i}`, `T${i}`)),
        outboxFor,
        checkpointOf(lease),
      );

      // Both contenders run at once, each on its own pool: their statements overlap on the server.
      const contend = async (store: PostgresStore, owner: string) => {
        const leases: number[] = [];
        for (let p = 0; p < 100; p++) {
          if (await store.acquireLease('contended', p, owner, 60_000, T0)) leases.push(p);
        }
        const claimed: string[] = [];
        for (let batch; (batch = await store.claimOutbox(T0, 2)).length; ) claimed.push(...batch.map((o) => o.id));
        return { leases, claimed };
      };
      const [a, b] = await Promise.all([open(), open()]);
      const results = await Promise.all([contend(a, 'pool-a'), contend(b, 'pool-b')]);
      const leases = results.flatMap((r) => r.leases);
      const claimed = results.flatMap((r) => r.claimed);
      expect(leases.sort((x, y) => x - y)).toEqual(Array.from({ length: 100 }, (_, p) => p));
      expect(claimed).toHaveLength(alerts * 2);
      expect(new Set(claimed).size).toBe(alerts * 2);
    });

    it('refuses a schema newer than it knows', async () => {
      await (await PostgresStore.open(url)).close();
      await admin.query(`UPDATE ${schema}.schema_version SET version = version + 1`);
      await expect(PostgresStore.open(url)).rejects.toThrow(/schema in PostgreSQL is version 2/);
    });
  });

  it('creates a missing database and search_path schema, even when two processes open it at once', async () => {
    const database = uniqueName('vigil_test_db');
    const fresh = urlFor(database, 'vigil_store');
    try {
      const [a, b] = await Promise.all([PostgresStore.open(fresh), PostgresStore.open(fresh)]);
      await a.setSetting('k', 'v');
      expect(await b.getSetting('k')).toBe('v');
      await Promise.all([a.close(), b.close()]);

      const check = new pg.Client({ connectionString: `${SERVER}/${database}` });
      await check.connect();
      const { rows } = await check.query("SELECT 1 FROM information_schema.tables WHERE table_schema = 'vigil_store' AND table_name = 'alerts'");
      await check.end();
      expect(rows).toHaveLength(1);
    } finally {
      await admin.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
    }
  });
});
