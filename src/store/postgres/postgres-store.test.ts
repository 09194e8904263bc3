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
        'api_keys',
        'checkpoint_state',
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

    it('lets a person’s resolve free the (resident, type) for a batch under way on another pool', async () => {
      const [a, b] = await Promise.all([open(), open()]);
      await a.createResident({ id: 'res-1', name: 'Ada', birthDate: null, timezone: 'UTC', homeLocation: null });
      const lease = (await a.acquireLease('alerts', 0, 'worker-a', 10_000, T0))!;
      await a.commitAlertBatch([raise('alr-1')], outboxFor, checkpointOf(lease, '1'));
      // b resolves alr-1 while outboxFor runs for the SOS alert: the rerun opens alr-2 instead of a recurrence.
      const created = await a.commitAlertBatch(
        [raise('alr-sos', 'SOS'), raise('alr-2')],
        async (alert) => {
          await b.resolveAlert('alr-1', 'nurse', null, T0 + 5000);
          return outboxFor(alert);
        },
        checkpointOf(lease, '2'),
      );
      expect(created.map((x) => x.id).sort()).toEqual(['alr-2', 'alr-sos']);
      expect(await a.getAlert('alr-1')).toMatchObject({ state: 'resolved', occurrences: 1, acknowledgedBy: 'nurse' });
      expect(await a.getAlert('alr-2')).toMatchObject({ state: 'open', occurrences: 1 });
    });

    it('patches every combination of fields, each its own named statement', async () => {
      const store = await open();
      await store.createResident({ id: 'res-1', name: 'Ada', birthDate: null, timezone: 'UTC', homeLocation: null });
      await store.createContact({ id: 'con-a', residentId: 'res-1', name: 'Son', phone: null, email: null, webhookUrl: null, webhookSecret: null });
      const residentFields = { name: 'N', birthDate: '1940-01-01', timezone: 'Europe/Paris', homeLocation: { lat: 1, lon: 2 }, medicalNotes: 'm' };
      const contactFields = { name: 'C', phone: '+1555', email: 'c@example.test', webhookUrl: 'https://h.example', webhookSecret: 's', preferences: { priority: 3 } };
      const subset = <T extends object>(all: T, mask: number, round: number) =>
        Object.fromEntries(Object.entries(all).flatMap(([k, v], i) => (mask & (1 << i) ? [[k, typeof v === 'string' ? `${v}${round}` : v]] : []))) as Partial<T>;
      for (let mask = 1; mask < 2 ** 6; mask++) {
        if (mask < 2 ** 5) {
          const patch = subset(residentFields, mask, mask);
          expect(await store.updateResident('res-1', patch)).toMatchObject(patch);
        }
        const patch = subset(contactFields, mask, mask);
        expect(await store.updateContact('con-a', patch)).toMatchObject(patch);
      }
      expect(await store.getContact('con-a')).toMatchObject({ name: 'C63', webhookSecret: 's63', preferences: { priority: 3 } });
    });

    it('refuses a schema newer than it knows', async () => {
      await (await PostgresStore.open(url)).close();
      await admin.query(`UPDATE ${schema}.schema_version SET version = version + 1`);
      await expect(PostgresStore.open(url)).rejects.toThrow(/schema in PostgreSQL is version 4/);
    });
  });

  describe('migration from schema 2', () => {
    it('adds api_keys, keeping the data', async () => {
      const before = await PostgresStore.open(url);
      await before.createResident({ id: 'res-1', name: 'Ada', birthDate: null, timezone: 'UTC', homeLocation: null });
      await before.close();
      // The schema as a schema-2 Vigil left it: no api_keys table.
      await admin.query(`DROP TABLE ${schema}.api_keys; UPDATE ${schema}.schema_version SET version = 2`);
      const store = await PostgresStore.open(url);
      try {
        expect((await admin.query(`SELECT version FROM ${schema}.schema_version`)).rows).toEqual([{ version: 3 }]);
        expect(await store.getResident('res-1')).toMatchObject({ name: 'Ada' });
        await store.createApiKey({ id: 'key-1', name: 'app', keyHash: 'a'.repeat(64), scopes: ['vitals:read'], residentIds: ['res-1'], createdAt: T0 });
        expect(await store.findApiKeyByHash('a'.repeat(64))).toMatchObject({ id: 'key-1', residentIds: ['res-1'], revokedAt: null });
      } finally {
        await store.close();
      }
    });
  });

  describe('migration from schema 1', () => {
    it('adds the new columns, widens the outbox statuses and indexes provider ids, keeping the data', async () => {
      // The tables exactly as the schema-1 store created them, with a row in each.
      const client = new pg.Client({ connectionString: url });
      await client.connect();
      try {
        await client.query(V1_SCHEMA);
        await client.query('CREATE TABLE schema_version (version integer NOT NULL); INSERT INTO schema_version VALUES (1)');
        await client.query(`INSERT INTO residents VALUES ('res-1', 'Ada', '1941-03-02', 'UTC', '{"lat":1,"lon":2}', ${T0})`);
        await client.query(`INSERT INTO contacts VALUES ('con-a', 'res-1', 'Son', '+15550100', NULL, NULL, NULL, ${T0})`);
        await client.query(`INSERT INTO alerts VALUES ('alr-1', 'res-1', 'band-1', 'HR_HIGH', 'high', 'open', ${T0}, ${T0}, NULL,
          NULL, NULL, NULL, NULL, ${T0}, 1, '{"hr":150}')`);
        await client.query(`INSERT INTO outbox VALUES
          ('alr-1:0:con-a:sms', 'alr-1', 0, 'con-a', 'sms', '{"to":"+15550100"}', 'sent', 1, ${T0}, NULL, 'SM1', ${T0}, ${T0}),
          ('alr-1:1:con-a:sms', 'alr-1', 1, 'con-a', 'sms', '{"to":"+15550100"}', 'queued', 0, ${T0 + 60_000}, NULL, NULL, ${T0}, ${T0})`);
      } finally {
        await client.end();
      }

      // Two processes upgrading at once: the schema lock lets one migrate, the other finds version 3.
      const [store, other] = await Promise.all([PostgresStore.open(url), PostgresStore.open(url)]);
      await other.close();
      try {
        expect((await admin.query(`SELECT version FROM ${schema}.schema_version`)).rows).toEqual([{ version: 3 }]);
        expect(await store.getResident('res-1')).toEqual({
          id: 'res-1',
          name: 'Ada',
          birthDate: '1941-03-02',
          timezone: 'UTC',
          homeLocation: { lat: 1, lon: 2 },
          medicalNotes: null,
          createdAt: T0,
        });
        expect(await store.getContact('con-a')).toMatchObject({ name: 'Son', phone: '+15550100', preferences: {} });
        expect(await store.updateResident('res-1', { medicalNotes: 'penicillin allergy' })).toMatchObject({ name: 'Ada', medicalNotes: 'penicillin allergy' });
        expect(await store.updateContact('con-a', { preferences: { priority: 2 } })).toMatchObject({ phone: '+15550100', preferences: { priority: 2 } });

        // The new statuses pass the replaced CHECK; a row sent before the upgrade takes its report.
        expect(await store.recordDelivery('sms', 'SM1', 'delivered', null, T0 + 1000)).toMatchObject({ id: 'alr-1:0:con-a:sms', status: 'delivered' });
        expect(await store.cancelOutbox('alr-1', 'acknowledged', T0 + 2000)).toBe(1);
        expect((await store.listOutbox('alr-1')).map((o) => o.status)).toEqual(['delivered', 'cancelled']);
        await expect(admin.query(`UPDATE ${schema}.outbox SET status = 'lost'`)).rejects.toThrow(/outbox_status_check/);

        const checks = await admin.query<{ name: string }>(
          `SELECT conname AS name FROM pg_constraint WHERE conrelid = '${schema}.outbox'::regclass AND contype = 'c' ORDER BY conname`,
        );
        expect(checks.rows.map((r) => r.name)).toEqual(['outbox_check', 'outbox_status_check']);
        const indexes = await admin.query('SELECT 1 FROM pg_indexes WHERE schemaname = $1 AND indexname = $2', [schema, 'outbox_provider']);
        expect(indexes.rows).toHaveLength(1);
      } finally {
        await store.close();
      }

      // Reopening a migrated schema changes nothing.
      const again = await PostgresStore.open(url);
      try {
        expect(await again.getResident('res-1')).toMatchObject({ medicalNotes: 'penicillin allergy' });
      } finally {
        await again.close();
      }

      // The migrated schema is the one a fresh store creates: columns, constraints, indexes.
      const fresh = uniqueName('vigil_test');
      await admin.query(`CREATE SCHEMA ${fresh}`);
      try {
        await (await PostgresStore.open(urlFor('test', fresh))).close();
        const shape = async (s: string) => ({
          columns: (
            await admin.query(
              `SELECT table_name, column_name, data_type, is_nullable, column_default, collation_name
               FROM information_schema.columns WHERE table_schema = $1 ORDER BY table_name, column_name`,
              [s],
            )
          ).rows,
          constraints: (
            await admin.query(
              `SELECT r.relname, c.conname, replace(pg_get_constraintdef(c.oid), $1, 'S') AS def FROM pg_constraint AS c
               JOIN pg_class AS r ON r.oid = c.conrelid JOIN pg_namespace AS n ON n.oid = r.relnamespace
               WHERE n.nspname = $2 ORDER BY r.relname, c.conname`,
              [`${s}.`, s],
            )
          ).rows,
          indexes: (
            await admin.query('SELECT indexname, replace(indexdef, $1, \'S\') AS def FROM pg_indexes WHERE schemaname = $2 ORDER BY indexname', [
              `${s}.`,
              s,
            ])
          ).rows,
        });
        expect(await shape(schema)).toEqual(await shape(fresh));
      } finally {
        await admin.query(`DROP SCHEMA ${fresh} CASCADE`);
      }
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

/** The tables of store schema 1, as its PostgresStore created them. */
const V1_SCHEMA = `
CREATE TABLE IF NOT EXISTS settings (key text COLLATE "C" PRIMARY KEY, value text NOT NULL);
CREATE TABLE IF NOT EXISTS residents (
  id            text COLLATE "C" PRIMARY KEY,
  name          text NOT NULL,
  birth_date    text,
  timezone      text NOT NULL,
  home_location jsonb,
  created_at    bigint NOT NULL
);
CREATE TABLE IF NOT EXISTS devices (
  device_id   text COLLATE "C" PRIMARY KEY,
  resident_id text COLLATE "C" NOT NULL REFERENCES residents(id),
  token_hash  text COLLATE "C" NOT NULL,
  created_at  bigint NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS devices_token_hash ON devices(token_hash);
CREATE INDEX IF NOT EXISTS devices_resident ON devices(resident_id);
CREATE TABLE IF NOT EXISTS contacts (
  id             text COLLATE "C" PRIMARY KEY,
  resident_id    text COLLATE "C" NOT NULL REFERENCES residents(id),
  name           text NOT NULL,
  phone          text,
  email          text,
  webhook_url    text,
  webhook_secret text,
  created_at     bigint NOT NULL
);
CREATE INDEX IF NOT EXISTS contacts_resident ON contacts(resident_id);
CREATE TABLE IF NOT EXISTS alerts (
  id              text COLLATE "C" PRIMARY KEY,
  resident_id     text COLLATE "C" NOT NULL,
  device_id       text COLLATE "C" NOT NULL,
  type            text COLLATE "C" NOT NULL,
  severity        text NOT NULL CHECK (severity IN ('critical', 'high', 'medium', 'low')),
  state           text NOT NULL CHECK (state IN ('open', 'acknowledged', 'resolved')),
  opened_at       bigint NOT NULL,
  detected_at     bigint NOT NULL,
  delay_ms        bigint,
  acknowledged_at bigint,
  acknowledged_by text,
  ack_note        text,
  resolved_at     bigint,
  last_seen_at    bigint NOT NULL,
  occurrences     integer NOT NULL,
  evidence        jsonb NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS alerts_one_unresolved ON alerts(resident_id, type) WHERE state <> 'resolved';
CREATE INDEX IF NOT EXISTS alerts_opened ON alerts(opened_at, id);
CREATE INDEX IF NOT EXISTS alerts_resident_opened ON alerts(resident_id, opened_at, id);
CREATE TABLE IF NOT EXISTS outbox (
  id              text COLLATE "C" PRIMARY KEY CHECK (id = alert_id || ':' || step || ':' || contact_id || ':' || channel),
  alert_id        text COLLATE "C" NOT NULL REFERENCES alerts(id),
  step            integer NOT NULL,
  contact_id      text COLLATE "C" NOT NULL,
  channel         text COLLATE "C" NOT NULL,
  payload         jsonb NOT NULL,
  status          text NOT NULL CHECK (status IN ('queued', 'sending', 'sent', 'failed')),
  attempts        integer NOT NULL,
  next_attempt_at bigint NOT NULL,
  last_error      text,
  provider_id     text,
  created_at      bigint NOT NULL,
  updated_at      bigint NOT NULL
);
CREATE INDEX IF NOT EXISTS outbox_due ON outbox(next_attempt_at, created_at, id) WHERE status = 'queued';
CREATE INDEX IF NOT EXISTS outbox_alert ON outbox(alert_id);
CREATE TABLE IF NOT EXISTS leases (
  grp        text COLLATE "C" NOT NULL,
  part       integer NOT NULL,
  owner      text NOT NULL,
  epoch      bigint NOT NULL,
  expires_at bigint NOT NULL,
  PRIMARY KEY (grp, part)
);
CREATE TABLE IF NOT EXISTS checkpoints (
  grp        text COLLATE "C" NOT NULL,
  part       integer NOT NULL,
  sequence   text,
  snapshot   jsonb,
  updated_at bigint NOT NULL,
  PRIMARY KEY (grp, part)
);
`;
