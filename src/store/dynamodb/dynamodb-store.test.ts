import { randomBytes } from 'node:crypto';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, PutCommand } from '@aws-sdk/lib-dynamodb';
import dynalite from 'dynalite';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { storeConformance } from '../testing/conformance.js';
import { checkpointOf, outboxFor, raise, T0 } from '../testing/fixtures.js';
import { LeaseLostError, type Alert, type Lease } from '../types.js';
import { DynamoDbStore } from './dynamodb-store.js';
import { startTransactionProxy, type TransactionProxy } from './testing/dynalite-transactions.js';

const credentials = { accessKeyId: 'test', secretAccessKey: 'test' };

describe('DynamoDB store (dynalite)', () => {
  let server: Server;
  let proxy: TransactionProxy;
  let table = '';
  beforeAll(async () => {
    server = dynalite({ createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    proxy = await startTransactionProxy(`http://127.0.0.1:${port}`);
  });
  afterAll(async () => {
    await proxy.close();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  beforeEach(() => {
    table = `vigil-test-${randomBytes(6).toString('hex')}`;
  });
  const open = () => DynamoDbStore.open({ table, region: 'us-east-1', endpoint: proxy.endpoint, credentials });

  storeConformance('DynamoDB', open);

  describe('with several clients', () => {
    it('turns a raise into a recurrence when another client opened that alert while outboxFor ran', async () => {
      const [a, b] = await Promise.all([open(), open()]);
      try {
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
      } finally {
        await Promise.all([a.close(), b.close()]);
      }
    });

    it('applies concurrent batches of one resident without losing an update', async () => {
      const [a, b] = await Promise.all([open(), open()]);
      try {
        const la = (await a.acquireLease('alerts', 0, 'worker-a', 60_000, T0))!;
        const lb = (await b.acquireLease('alerts', 1, 'worker-b', 60_000, T0))!;
        const rounds = 8;
        const run = async (store: DynamoDbStore, lease: Lease, p: string, order: string[]) => {
          const ids: string[] = [];
          for (let i = 0; i < rounds; i++) {
            const batch = order.map((t) => raise(`${p}-${i}-${t}`, `${t}${i}`));
            ids.push(...(await store.commitAlertBatch(batch, outboxFor, checkpointOf(lease, String(i)))).map((x) => x.id));
          }
          return ids;
        };
        const ids = (await Promise.all([run(a, la, 'a', ['X', 'Y']), run(b, lb, 'b', ['Y', 'X'])])).flat();
        expect(ids).toHaveLength(rounds * 2);
        expect(await a.countOpenAlerts()).toBe(rounds * 2);
        for (const id of ids) {
          expect(await a.getAlert(id)).toMatchObject({ state: 'open', occurrences: 2 });
          expect(await a.listOutbox(id)).toHaveLength(2);
        }
      } finally {
        await Promise.all([a.close(), b.close()]);
      }
    });

    it('never hands a lease or an outbox row to two clients', async () => {
      const setup = await open();
      const [a, b] = await Promise.all([open(), open()]);
      try {
        const lease = (await setup.acquireLease('alerts', 0, 'setup', 10_000, T0))!;
        const alerts = 40;
        await setup.commitAlertBatch(
          Array.from({ length: alerts }, (_, i) => raise(`alr-${i}`, `T${i}`)),
          outboxFor,
          checkpointOf(lease),
        );
        const contend = async (store: DynamoDbStore, owner: string) => {
          const leases: number[] = [];
          for (let p = 0; p < 30; p++) if (await store.acquireLease('contended', p, owner, 60_000, T0)) leases.push(p);
          const claimed: string[] = [];
          for (let batch; (batch = await store.claimOutbox(T0, 3)).length; ) claimed.push(...batch.map((o) => o.id));
          return { leases, claimed };
        };
        const results = await Promise.all([contend(a, 'a'), contend(b, 'b')]);
        expect(results.flatMap((r) => r.leases).sort((x, y) => x - y)).toEqual(Array.from({ length: 30 }, (_, p) => p));
        const claimed = results.flatMap((r) => r.claimed);
        expect(claimed).toHaveLength(alerts * 2);
        expect(new Set(claimed).size).toBe(alerts * 2);
      } finally {
        await Promise.all([setup.close(), a.close(), b.close()]);
      }
    });

    it('refuses the batch in its transaction when the lease changes hands while outboxFor runs', async () => {
      const [a, b] = await Promise.all([open(), open()]);
      try {
        const old = (await a.acquireLease('alerts', 0, 'worker-a', 10_000, T0))!;
        await a.writeCheckpoint('alerts', 0, '1', { v: 1 }, { owner: old.owner, epoch: old.epoch });
        // The fence is checked before outboxFor; the takeover happens after it, so only the
        // ConditionCheck on the lease inside TransactWriteItems can catch it.
        const err = await a
          .commitAlertBatch(
            [raise('alr-1'), raise('alr-2', 'SOS')],
            async (alert) => {
              await b.acquireLease('alerts', 0, 'worker-b', 10_000, T0 + 10_000);
              return outboxFor(alert);
            },
            checkpointOf(old, '2'),
          )
          .catch((e: unknown) => e);
        expect(err).toBeInstanceOf(LeaseLostError);
        expect(await a.getAlert('alr-1')).toBeNull();
        expect(await a.getAlert('alr-2')).toBeNull();
        expect(await a.listOutbox('alr-1')).toEqual([]);
        expect(await a.countOpenAlerts()).toBe(0);
        expect(await a.getCheckpoint('alerts', 0)).toMatchObject({ sequence: '1', snapshot: { v: 1 } });
      } finally {
        await Promise.all([a.close(), b.close()]);
      }
    });

    it('splits a batch larger than one transaction, with the checkpoint in the last part', async () => {
      const store = await open();
      try {
        const lease = (await store.acquireLease('alerts', 0, 'worker-a', 10_000, T0))!;
        const batch = Array.from({ length: 120 }, (_, i) => raise(`alr-${i}`, `T${i}`));
        const created = await store.commitAlertBatch(batch, outboxFor, checkpointOf(lease, '9'));
        expect(created).toHaveLength(120);
        expect(await store.countOpenAlerts()).toBe(120);
        expect(await store.listOutbox('alr-119')).toHaveLength(2);
        expect(await store.getCheckpoint('alerts', 0)).toMatchObject({ sequence: '9' });
        // A replay changes nothing.
        expect(await store.commitAlertBatch(batch, outboxFor, checkpointOf(lease, '9'))).toEqual([]);
        expect(await store.getAlert('alr-0')).toMatchObject({ occurrences: 1 });
      } finally {
        await store.close();
      }
    });

    it('lets a person’s resolve free the (resident, type) for a batch under way on another client', async () => {
      const [a, b] = await Promise.all([open(), open()]);
      try {
        await a.createResident({ id: 'res-1', name: 'Ada', birthDate: null, timezone: 'UTC', homeLocation: null });
        const lease = (await a.acquireLease('alerts', 0, 'worker-a', 10_000, T0))!;
        await a.commitAlertBatch([raise('alr-1')], outboxFor, checkpointOf(lease, '1'));
        // The batch first reads alr-1 as the open HR_HIGH alert; b resolves it while outboxFor
        // runs for the SOS alert, so the rerun must open alr-2 rather than count a recurrence.
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
        // alr-2 holds the guard now: a resolve by the detector reaches it.
        await a.commitAlertBatch([{ kind: 'resolve', residentId: 'res-1', type: 'HR_HIGH', at: T0 + 9000 }], outboxFor, checkpointOf(lease, '3'));
        expect(await a.getAlert('alr-2')).toMatchObject({ state: 'resolved', resolvedAt: T0 + 9000 });
      } finally {
        await Promise.all([a.close(), b.close()]);
      }
    });

    it('finds a delivery report’s row through its lookup item, on the right channel', async () => {
      const [a, b] = await Promise.all([open(), open()]);
      try {
        await a.createResident({ id: 'res-1', name: 'Ada', birthDate: null, timezone: 'UTC', homeLocation: null });
        const lease = (await a.acquireLease('alerts', 0, 'worker-a', 10_000, T0))!;
        // One webhook row and one SMS row.
        const twoChannels = (alert: Alert) =>
          outboxFor(alert).map((o, i) => (i ? { ...o, channel: 'sms', id: o.id.replace(/webhook$/, 'sms') } : o));
        await a.commitAlertBatch([raise('alr-1')], twoChannels, checkpointOf(lease));
        const [x, y] = await a.claimOutbox(T0, 2);
        // Two providers that happen to use the same id: the channel tells the rows apart.
        await a.completeOutbox(x.id, { ok: true, providerId: 'P1' }, T0 + 100);
        await a.completeOutbox(y.id, { ok: true, providerId: 'P1' }, T0 + 100);
        expect(await b.recordDelivery(y.channel, 'P1', 'delivered', null, T0 + 200)).toMatchObject({ id: y.id, status: 'delivered' });
        expect(await b.recordDelivery(x.channel, 'P1', 'failed', 'bounced', T0 + 300)).toMatchObject({ id: x.id, status: 'failed', lastError: 'bounced' });
        // A row sent without a provider id has no lookup item; a failed send writes none either.
        expect(await b.recordDelivery('sms', 'P2', 'delivered', null, T0 + 300)).toBeNull();
      } finally {
        await Promise.all([a.close(), b.close()]);
      }
    });

    it('reads residents and contacts written before medical notes and preferences existed', async () => {
      const store = await open();
      const raw = DynamoDBDocumentClient.from(new DynamoDBClient({ region: 'us-east-1', endpoint: proxy.endpoint, credentials }));
      try {
        // The items exactly as the previous version of the store wrote them.
        const put = (Item: Record<string, unknown>) => raw.send(new PutCommand({ TableName: table, Item }));
        await put({ pk: 'RESIDENT#res-1', sk: 'RESIDENT', id: 'res-1', name: 'Ada', birthDate: null, timezone: 'UTC', homeLocation: '{"lat":1,"lon":2}', createdAt: T0, g1pk: 'RESIDENTS', g1sk: 'res-1' });
        const contact = { id: 'con-a', residentId: 'res-1', name: 'Son', phone: '+15550100', email: null, webhookUrl: null, webhookSecret: null, createdAt: T0 };
        await put({ pk: 'CONTACT#con-a', sk: 'CONTACT', ...contact });
        await put({ pk: 'RESIDENT#res-1', sk: 'CONTACT#con-a', ...contact });

        expect(await store.getResident('res-1')).toEqual({ id: 'res-1', name: 'Ada', birthDate: null, timezone: 'UTC', homeLocation: { lat: 1, lon: 2 }, medicalNotes: null, createdAt: T0 });
        expect(await store.listResidents()).toMatchObject([{ id: 'res-1', medicalNotes: null }]);
        expect(await store.getContact('con-a')).toEqual({ ...contact, preferences: {} });
        expect(await store.listContacts('res-1')).toEqual([{ ...contact, preferences: {} }]);

        expect(await store.updateResident('res-1', { medicalNotes: 'penicillin allergy' })).toMatchObject({ name: 'Ada', medicalNotes: 'penicillin allergy' });
        const updated = { ...contact, phone: '+15550199', preferences: { priority: 2 } };
        expect(await store.updateContact('con-a', { phone: '+15550199', preferences: { priority: 2 } })).toEqual(updated);
        expect(await store.listContacts('res-1')).toEqual([updated]); // the resident's copy too
        expect(await store.deleteContact('con-a')).toBe(true);
        expect(await store.listContacts('res-1')).toEqual([]);
      } finally {
        raw.destroy();
        await store.close();
      }
    });

    it('reopens an existing table', async () => {
      const first = await open();
      await first.setSetting('k', 'v');
      await first.close();
      const again = await open();
      try {
        expect(await again.getSetting('k')).toBe('v');
      } finally {
        await again.close();
      }
    });
  });
});
