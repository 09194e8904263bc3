/**
 * The store conformance suite: the guarantees of `Store` (see ../types.ts), written against
 * the interface only. Every backend's test file calls `storeConformance` with a factory.
 *
 * `open` must give a store on empty storage at the start of each test, and a store on that
 * same storage when it is called again within the test (a second connection, or a restart
 * after `close`). The suite closes every store it opened.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { VigilError } from '../../core/errors.js';
import { LeaseLostError, type Alert, type AlertChange, type ApiKey, type Fence, type Lease, type OutboxItem, type Store } from '../types.js';

const T0 = 1_700_000_000_000;
const TTL = 10_000;
const GROUP = 'alerts';

type Raise = Extract<AlertChange, { kind: 'raise' }>;

function raise(id: string, over: Partial<Raise['alert']> = {}): Raise {
  return {
    kind: 'raise',
    alert: {
      id,
      residentId: 'res-1',
      deviceId: 'band-1',
      type: 'HR_HIGH',
      severity: 'high',
      openedAt: T0,
      detectedAt: T0 + 1000,
      delayMs: null,
      evidence: { hr: 150 },
      ...over,
    },
  };
}

const resolve = (type: string, at: number, evidence?: Record<string, unknown>): AlertChange => ({
  kind: 'resolve',
  residentId: 'res-1',
  type,
  at,
  ...(evidence && { evidence }),
});

/** Two notifications per alert: a webhook to one contact and an SMS to another. */
function outboxFor(alert: Alert): OutboxItem[] {
  return [
    { contactId: 'con-a', channel: 'webhook', payload: { url: 'https://example.test/hook', alert: alert.id } },
    { contactId: 'con-b', channel: 'sms', payload: { to: '+15550100', text: `${alert.type} alert` } },
  ].map((n) => ({
    id: `${alert.id}:0:${n.contactId}:${n.channel}`,
    alertId: alert.id,
    step: 0,
    contactId: n.contactId,
    channel: n.channel,
    payload: n.payload,
    status: 'queued',
    attempts: 0,
    nextAttemptAt: alert.detectedAt,
    lastError: null,
    providerId: null,
    createdAt: alert.detectedAt,
    updatedAt: alert.detectedAt,
  }));
}

const fenceOf = (lease: Lease): Fence => ({ owner: lease.owner, epoch: lease.epoch });

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (err) {
    return err;
  }
  throw new Error('expected the promise to reject');
}

async function expectVigilError(promise: Promise<unknown>, code: string): Promise<void> {
  const err = await rejection(promise);
  expect(err).toBeInstanceOf(VigilError);
  expect((err as VigilError).code).toBe(code);
}

export function storeConformance(name: string, open: () => Promise<Store>): void {
  describe(`store conformance: ${name}`, () => {
    const opened: Store[] = [];
    const connect = async () => {
      const store = await open();
      opened.push(store);
      return store;
    };
    const restart = async (store: Store) => {
      await store.close();
      opened.splice(opened.indexOf(store), 1);
      return connect();
    };
    afterEach(async () => {
      await Promise.all(opened.splice(0).map((s) => s.close()));
    });

    /** A store holding res-1 and a lease on (alerts, 0) for committing batches. */
    async function withLease() {
      const store = await connect();
      await store.createResident({ id: 'res-1', name: 'Ada', birthDate: null, timezone: 'Europe/Paris', homeLocation: null });
      const lease = (await store.acquireLease(GROUP, 0, 'worker-1', TTL, T0))!;
      const checkpoint = (sequence: string, snapshot: unknown = { at: sequence }) => ({
        group: GROUP,
        partition: 0,
        sequence,
        snapshot,
        fence: fenceOf(lease),
      });
      return { store, lease, checkpoint };
    }

    describe('settings', () => {
      it('sets a value only if absent, and overwrites on set', async () => {
        const store = await connect();
        expect(await store.getSetting('k')).toBeNull();
        expect(await store.setSettingIfAbsent('k', 'one')).toBe(true);
        expect(await store.setSettingIfAbsent('k', 'two')).toBe(false);
        expect(await store.getSetting('k')).toBe('one');
        await store.setSetting('k', 'three');
        await store.setSetting('fresh', 'x');
        expect(await store.getSetting('k')).toBe('three');
        expect(await store.getSetting('fresh')).toBe('x');
      });
    });

    describe('residents, devices, contacts', () => {
      it('creates and reads residents, with optional fields as null', async () => {
        const store = await connect();
        const before = Date.now();
        const r = await store.createResident({
          id: 'res-1',
          name: 'Ada',
          birthDate: '1941-03-02',
          timezone: 'Europe/Paris',
          homeLocation: { lat: 48.85, lon: 2.35, radiusM: 300 },
        });
        expect(r.createdAt).toBeGreaterThanOrEqual(before);
        expect(await store.getResident('res-1')).toEqual(r);
        await store.createResident({ id: 'res-2', name: 'Bo', birthDate: null, timezone: 'UTC', homeLocation: null });
        expect(await store.getResident('res-2')).toMatchObject({ birthDate: null, homeLocation: null });
        expect(await store.getResident('nobody')).toBeNull();
        await expectVigilError(
          store.createResident({ id: 'res-1', name: 'Again', birthDate: null, timezone: 'UTC', homeLocation: null }),
          'CONFLICT',
        );
      });

      it('lists residents by id with keyset pagination', async () => {
        const store = await connect();
        for (const id of ['res-c', 'res-a', 'res-e', 'res-b', 'res-d']) {
          await store.createResident({ id, name: id, birthDate: null, timezone: 'UTC', homeLocation: null });
        }
        const ids = async (opts?: { limit?: number; after?: string }) => (await store.listResidents(opts)).map((r) => r.id);
        expect(await ids()).toEqual(['res-a', 'res-b', 'res-c', 'res-d', 'res-e']);
        expect(await ids({ limit: 2 })).toEqual(['res-a', 'res-b']);
        expect(await ids({ limit: 2, after: 'res-b' })).toEqual(['res-c', 'res-d']);
        expect(await ids({ limit: 2, after: 'res-d' })).toEqual(['res-e']);
        expect(await ids({ after: 'res-e' })).toEqual([]);
      });

      it('registers devices, finds them by token hash, and rejects a taken deviceId or unknown resident', async () => {
        const store = await connect();
        await store.createResident({ id: 'res-1', name: 'Ada', birthDate: null, timezone: 'UTC', homeLocation: null });
        const d = await store.createDevice({ deviceId: 'band-1', residentId: 'res-1', tokenHash: 'a'.repeat(64) });
        expect(d).toMatchObject({ deviceId: 'band-1', residentId: 'res-1' });
        expect(d).not.toHaveProperty('tokenHash');
        await store.createDevice({ deviceId: 'band-2', residentId: 'res-1', tokenHash: 'b'.repeat(64) });

        expect(await store.findDeviceByTokenHash('a'.repeat(64))).toEqual(d);
        expect(await store.findDeviceByTokenHash('c'.repeat(64))).toBeNull();
        expect(await store.getDevice(d.deviceId)).toEqual(d);
        expect(await store.getDevice('band-nope')).toBeNull();
        expect((await store.listDevices('res-1')).map((x) => x.deviceId).sort()).toEqual(['band-1', 'band-2']);
        expect(await store.listDevices('res-2')).toEqual([]);

        const taken = await rejection(store.createDevice({ deviceId: 'band-1', residentId: 'res-1', tokenHash: 'd'.repeat(64) }));
        expect(taken).toBeInstanceOf(VigilError);
        expect(taken).toMatchObject({ code: 'CONFLICT', message: 'device band-1 is already registered' });
        await expectVigilError(store.createDevice({ deviceId: 'band-9', residentId: 'nobody', tokenHash: 'e'.repeat(64) }), 'NOT_FOUND');
        expect(await store.findDeviceByTokenHash('d'.repeat(64))).toBeNull();
        expect(await store.findDeviceByTokenHash('e'.repeat(64))).toBeNull();
      });

      it('rotates and revokes a device token: the old hash finds nothing, the device stays', async () => {
        const store = await connect();
        await store.createResident({ id: 'res-1', name: 'Ada', birthDate: null, timezone: 'UTC', homeLocation: null });
        const d1 = await store.createDevice({ deviceId: 'band-1', residentId: 'res-1', tokenHash: 'a'.repeat(64) });
        const d2 = await store.createDevice({ deviceId: 'band-2', residentId: 'res-1', tokenHash: 'b'.repeat(64) });

        // Rotation: the new hash finds the device, the old one nothing.
        expect(await store.setDeviceToken('band-1', 'c'.repeat(64))).toEqual(d1);
        expect(await store.findDeviceByTokenHash('a'.repeat(64))).toBeNull();
        expect(await store.findDeviceByTokenHash('c'.repeat(64))).toEqual(d1);
        expect(await store.setDeviceToken('band-1', 'c'.repeat(64))).toEqual(d1); // the same hash again: unchanged
        expect(await store.findDeviceByTokenHash('c'.repeat(64))).toEqual(d1);

        // A hash another device holds is refused; nothing changes.
        await expectVigilError(store.setDeviceToken('band-2', 'c'.repeat(64)), 'CONFLICT');
        expect(await store.findDeviceByTokenHash('b'.repeat(64))).toEqual(d2);
        expect(await store.findDeviceByTokenHash('c'.repeat(64))).toEqual(d1);

        // Revocation: no hash finds the device, which stays registered; two revoked devices do not collide.
        expect(await store.setDeviceToken('band-1', null)).toEqual(d1);
        expect(await store.setDeviceToken('band-2', null)).toEqual(d2);
        expect(await store.setDeviceToken('band-2', null)).toEqual(d2);
        for (const h of ['a', 'b', 'c']) expect(await store.findDeviceByTokenHash(h.repeat(64))).toBeNull();
        expect(await store.getDevice('band-1')).toEqual(d1);
        expect((await store.listDevices('res-1')).map((x) => x.deviceId).sort()).toEqual(['band-1', 'band-2']);

        // A revoked device can get a token again; the old hashes stay dead.
        expect(await store.setDeviceToken('band-2', 'd'.repeat(64))).toEqual(d2);
        expect(await store.findDeviceByTokenHash('d'.repeat(64))).toEqual(d2);

        // Unknown device: null, and nothing is written.
        expect(await store.setDeviceToken('band-nope', 'e'.repeat(64))).toBeNull();
        expect(await store.setDeviceToken('band-nope', null)).toBeNull();
        expect(await store.findDeviceByTokenHash('e'.repeat(64))).toBeNull();
        expect(await store.getDevice('band-nope')).toBeNull();

        const restarted = await restart(store);
        expect(await restarted.findDeviceByTokenHash('d'.repeat(64))).toEqual(d2);
        for (const h of ['a', 'b', 'c']) expect(await restarted.findDeviceByTokenHash(h.repeat(64))).toBeNull();
        expect(await restarted.getDevice('band-1')).toEqual(d1);
      });

      it('creates contacts with their webhook secret and rejects an unknown resident', async () => {
        const store = await connect();
        await store.createResident({ id: 'res-1', name: 'Ada', birthDate: null, timezone: 'UTC', homeLocation: null });
        const c = await store.createContact({
          id: 'con-a',
          residentId: 'res-1',
          name: 'Daughter',
          phone: '+15550100',
          email: null,
          webhookUrl: 'https://example.test/hook',
          webhookSecret: 'whsec_x',
        });
        await store.createContact({
          id: 'con-b',
          residentId: 'res-1',
          name: 'Nurse',
          phone: null,
          email: 'nurse@example.test',
          webhookUrl: null,
          webhookSecret: null,
        });
        const list = await store.listContacts('res-1');
        expect(list.map((x) => x.id).sort()).toEqual(['con-a', 'con-b']);
        expect(list.find((x) => x.id === 'con-a')).toEqual(c);
        expect(list.find((x) => x.id === 'con-b')).toMatchObject({ phone: null, webhookUrl: null, webhookSecret: null });
        await expectVigilError(
          store.createContact({ id: 'con-z', residentId: 'nobody', name: 'X', phone: null, email: null, webhookUrl: null, webhookSecret: null }),
          'NOT_FOUND',
        );
      });
    });

    describe('updates to residents and contacts', () => {
      it('stores medical notes and replaces only the fields a patch sets', async () => {
        const store = await connect();
        const r = await store.createResident({ id: 'res-1', name: 'Ada', birthDate: '1941-03-02', timezone: 'UTC', homeLocation: null, medicalNotes: 'penicillin allergy' });
        expect(r.medicalNotes).toBe('penicillin allergy');
        expect((await store.createResident({ id: 'res-2', name: 'Bo', birthDate: null, timezone: 'UTC', homeLocation: null })).medicalNotes).toBeNull();
        const updated = await store.updateResident('res-1', { name: 'Ada L.', homeLocation: { lat: 1, lon: 2, radiusM: 50 }, birthDate: undefined });
        expect(updated).toEqual({ ...r, name: 'Ada L.', homeLocation: { lat: 1, lon: 2, radiusM: 50 } });
        expect(await store.getResident('res-1')).toEqual(updated);
        expect(await store.updateResident('res-1', { medicalNotes: null, birthDate: null })).toMatchObject({ medicalNotes: null, birthDate: null, name: 'Ada L.' });
        expect(await store.updateResident('nobody', { name: 'X' })).toBeNull();
        const restarted = await restart(store);
        expect(await restarted.getResident('res-1')).toMatchObject({ name: 'Ada L.', medicalNotes: null });
      });

      it('keeps contact preferences, updates and deletes contacts', async () => {
        const store = await connect();
        await store.createResident({ id: 'res-1', name: 'Ada', birthDate: null, timezone: 'UTC', homeLocation: null });
        const plain = await store.createContact({ id: 'con-a', residentId: 'res-1', name: 'Son', phone: '+15550100', email: null, webhookUrl: null, webhookSecret: null });
        expect(plain.preferences).toEqual({});
        const prefs = { priority: 2, channels: ['push', 'sms'], quietHours: { start: '22:00', end: '07:00' }, pushSubscriptions: [{ endpoint: 'https://push.example/1', keys: { p256dh: 'p', auth: 'a' } }] };
        const b = await store.createContact({ id: 'con-b', residentId: 'res-1', name: 'Nurse', phone: null, email: 'n@example.test', webhookUrl: null, webhookSecret: null, preferences: prefs });
        expect(await store.getContact('con-b')).toEqual(b);
        expect(b.preferences).toEqual(prefs);
        expect(await store.getContact('nope')).toBeNull();
        const changed = await store.updateContact('con-a', { phone: '+15550199', preferences: { priority: 1 } });
        expect(changed).toEqual({ ...plain, phone: '+15550199', preferences: { priority: 1 } });
        expect((await store.listContacts('res-1')).find((c) => c.id === 'con-a')).toEqual(changed);
        expect(await store.updateContact('nope', { name: 'X' })).toBeNull();
        expect(await store.deleteContact('con-b')).toBe(true);
        expect(await store.deleteContact('con-b')).toBe(false);
        expect((await store.listContacts('res-1')).map((c) => c.id)).toEqual(['con-a']);
        const restarted = await restart(store);
        expect(await restarted.getContact('con-a')).toEqual(changed);
      });
    });

    describe('alerts', () => {
      it('raises a new alert, queues its outbox rows and writes the checkpoint', async () => {
        const { store, checkpoint } = await withLease();
        const created = await store.commitAlertBatch([raise('alr-1')], outboxFor, checkpoint('10', { window: [1, 2] }));
        const expected: Alert = {
          ...raise('alr-1').alert,
          state: 'open',
          acknowledgedAt: null,
          acknowledgedBy: null,
          ackNote: null,
          resolvedAt: null,
          lastSeenAt: T0,
          occurrences: 1,
        };
        expect(created).toEqual([expected]);
        expect(await store.getAlert('alr-1')).toEqual(expected);
        expect(await store.listOutbox('alr-1')).toEqual(outboxFor(expected));
        expect(await store.getCheckpoint(GROUP, 0)).toMatchObject({ sequence: '10', snapshot: { window: [1, 2] } });
        expect(await store.getAlert('nope')).toBeNull();
      });

      it('accepts an async outboxFor', async () => {
        const { store, checkpoint } = await withLease();
        const created = await store.commitAlertBatch([raise('alr-1')], async (a) => outboxFor(a), checkpoint('1'));
        expect(created.map((a) => a.id)).toEqual(['alr-1']);
        expect(await store.listOutbox('alr-1')).toHaveLength(2);
      });

      it('turns a recurrence into an update of the unresolved alert', async () => {
        const { store, checkpoint } = await withLease();
        await store.commitAlertBatch([raise('alr-1')], outboxFor, checkpoint('1'));
        const again = await store.commitAlertBatch(
          [raise('alr-2', { openedAt: T0 + 60_000, severity: 'critical', evidence: { hr: 190 } })],
          outboxFor,
          checkpoint('2'),
        );
        expect(again).toEqual([]);
        expect(await store.getAlert('alr-2')).toBeNull();
        expect(await store.listOutbox('alr-2')).toEqual([]);
        expect(await store.getAlert('alr-1')).toMatchObject({
          state: 'open',
          occurrences: 2,
          openedAt: T0,
          lastSeenAt: T0 + 60_000,
          severity: 'critical',
          evidence: { hr: 190 },
        });

        // A late, milder occurrence: counted, but neither lowers the severity nor moves lastSeenAt back.
        await store.commitAlertBatch([raise('alr-3', { openedAt: T0 + 30_000, severity: 'low', evidence: { hr: 140 } })], outboxFor, checkpoint('3'));
        expect(await store.getAlert('alr-1')).toMatchObject({
          occurrences: 3,
          lastSeenAt: T0 + 60_000,
          severity: 'critical',
          evidence: { hr: 140 },
        });
        expect(await store.countOpenAlerts()).toBe(1);
        expect(await store.listOutbox('alr-1')).toHaveLength(2);
      });

      it('treats a replayed batch as a no-op and queues each notification once', async () => {
        const { store, checkpoint } = await withLease();
        const batch = [raise('alr-1'), raise('alr-9', { type: 'SOS', severity: 'critical' })];
        expect(await store.commitAlertBatch(batch, outboxFor, checkpoint('5'))).toHaveLength(2);
        const claimed = await store.claimOutbox(T0 + 1000, 10);
        expect(claimed).toHaveLength(4);
        const before = { alert: await store.getAlert('alr-1'), outbox: await store.listOutbox('alr-1') };

        expect(await store.commitAlertBatch(batch, outboxFor, checkpoint('5'))).toEqual([]);
        expect(await store.getAlert('alr-1')).toEqual(before.alert);
        expect(await store.listOutbox('alr-1')).toEqual(before.outbox);
        expect(await store.listOutbox('alr-9')).toHaveLength(2);
        expect(await store.claimOutbox(T0 + 1000, 10)).toEqual([]);
      });

      it('does not create an alert twice when a batch repeats a raise', async () => {
        const { store, checkpoint } = await withLease();
        const created = await store.commitAlertBatch([raise('alr-1'), raise('alr-1')], outboxFor, checkpoint('1'));
        expect(created.map((a) => a.id)).toEqual(['alr-1']);
        expect(await store.getAlert('alr-1')).toMatchObject({ occurrences: 1 });
        expect(await store.listOutbox('alr-1')).toHaveLength(2);
      });

      it('resolves the unresolved alert of a (resident, type), keeping resolution evidence', async () => {
        const { store, checkpoint } = await withLease();
        await store.commitAlertBatch([raise('alr-1'), raise('alr-s', { type: 'SOS' })], outboxFor, checkpoint('1'));
        await store.commitAlertBatch([resolve('HR_HIGH', T0 + 90_000, { hr: 80 })], outboxFor, checkpoint('2'));
        expect(await store.getAlert('alr-1')).toMatchObject({
          state: 'resolved',
          resolvedAt: T0 + 90_000,
          evidence: { hr: 150, resolution: { hr: 80 } },
        });
        expect(await store.getAlert('alr-s')).toMatchObject({ state: 'open' });
        expect(await store.countOpenAlerts()).toBe(1);

        // Nothing unresolved of that type: a no-op.
        await store.commitAlertBatch([resolve('HR_HIGH', T0 + 99_000), resolve('TEMP_LOW', T0)], outboxFor, checkpoint('3'));
        expect(await store.getAlert('alr-1')).toMatchObject({ resolvedAt: T0 + 90_000 });

        // Once resolved, the next raise of that type is a new alert; resolving without evidence keeps it.
        const next = await store.commitAlertBatch([raise('alr-2', { openedAt: T0 + 120_000 })], outboxFor, checkpoint('4'));
        expect(next.map((a) => a.id)).toEqual(['alr-2']);
        await store.commitAlertBatch([resolve('SOS', T0 + 130_000)], outboxFor, checkpoint('5'));
        expect(await store.getAlert('alr-s')).toMatchObject({ state: 'resolved', evidence: { hr: 150 } });
        expect(await store.countOpenAlerts()).toBe(1);
      });

      it('keeps one unresolved alert per (resident, type), applying a batch in order', async () => {
        const { store, checkpoint } = await withLease();
        await store.createResident({ id: 'res-2', name: 'Bo', birthDate: null, timezone: 'UTC', homeLocation: null });
        const created = await store.commitAlertBatch(
          [
            raise('alr-1'),
            raise('alr-2'),
            resolve('HR_HIGH', T0 + 5000),
            raise('alr-3', { openedAt: T0 + 6000 }),
            raise('alr-4', { type: 'SPO2_LOW' }),
            raise('alr-5', { residentId: 'res-2' }),
          ],
          outboxFor,
          checkpoint('1'),
        );
        expect(created.map((a) => a.id)).toEqual(['alr-1', 'alr-3', 'alr-4', 'alr-5']);
        expect(await store.getAlert('alr-1')).toMatchObject({ state: 'resolved', occurrences: 2 });
        expect(await store.getAlert('alr-2')).toBeNull();
        expect(await store.getAlert('alr-3')).toMatchObject({ state: 'open', occurrences: 1 });
        expect(await store.countOpenAlerts()).toBe(3);
        for (const id of ['alr-1', 'alr-3', 'alr-4', 'alr-5']) expect(await store.listOutbox(id)).toHaveLength(2);
      });

      it('resolves an open or acknowledged alert on a person’s word, once', async () => {
        const { store, checkpoint } = await withLease();
        await store.commitAlertBatch([raise('alr-1'), raise('alr-2', { type: 'SOS' })], outboxFor, checkpoint('1'));
        const resolved = await store.resolveAlert('alr-1', 'nurse', 'checked on her', T0 + 5000);
        expect(resolved).toMatchObject({ state: 'resolved', resolvedAt: T0 + 5000, acknowledgedBy: 'nurse', acknowledgedAt: T0 + 5000, ackNote: 'checked on her' });
        expect(await store.resolveAlert('alr-1', 'other', null, T0 + 9000)).toMatchObject({ resolvedAt: T0 + 5000, acknowledgedBy: 'nurse' });
        await store.acknowledgeAlert('alr-2', 'son', null, T0 + 1000);
        expect(await store.resolveAlert('alr-2', 'nurse', null, T0 + 6000)).toMatchObject({ state: 'resolved', acknowledgedBy: 'son', acknowledgedAt: T0 + 1000 });
        expect(await store.resolveAlert('nope', 'x', null, T0)).toBeNull();
        // A new alert of that type may open again.
        await store.commitAlertBatch([raise('alr-3')], outboxFor, checkpoint('2'));
        expect((await store.getAlert('alr-3'))!.state).toBe('open');
      });

      it('acknowledges only open alerts', async () => {
        const { store, checkpoint } = await withLease();
        await store.commitAlertBatch([raise('alr-1'), raise('alr-2', { type: 'SOS' })], outboxFor, checkpoint('1'));
        const acked = await store.acknowledgeAlert('alr-1', 'con-a', 'on my way', T0 + 5000);
        expect(acked).toMatchObject({ state: 'acknowledged', acknowledgedBy: 'con-a', ackNote: 'on my way', acknowledgedAt: T0 + 5000 });
        expect(await store.acknowledgeAlert('alr-1', 'con-b', null, T0 + 9000)).toEqual(acked);
        expect(await store.countOpenAlerts()).toBe(2);

        // An acknowledged alert still counts as unresolved: a recurrence updates it, a resolve closes it.
        await store.commitAlertBatch([raise('alr-3', { openedAt: T0 + 7000 })], outboxFor, checkpoint('2'));
        expect(await store.getAlert('alr-1')).toMatchObject({ state: 'acknowledged', occurrences: 2 });
        await store.commitAlertBatch([resolve('HR_HIGH', T0 + 8000), resolve('SOS', T0 + 8000)], outboxFor, checkpoint('3'));
        const resolved = await store.getAlert('alr-2');
        expect(resolved).toMatchObject({ state: 'resolved', acknowledgedAt: null });
        expect(await store.acknowledgeAlert('alr-2', 'con-a', null, T0 + 9000)).toEqual(resolved);
        expect(await store.acknowledgeAlert('nope', 'con-a', null, T0)).toBeNull();
        expect(await store.countOpenAlerts()).toBe(0);
      });

      it('lists alerts newest first, filtered and limited', async () => {
        const { store, checkpoint } = await withLease();
        await store.createResident({ id: 'res-2', name: 'Bo', birthDate: null, timezone: 'UTC', homeLocation: null });
        const types = ['FALL', 'SOS', 'HR_HIGH', 'SPO2_LOW', 'INACTIVITY'];
        await store.commitAlertBatch(
          types.map((type, i) => raise(`alr-${i}`, { type, openedAt: T0 + i * 1000, residentId: i % 2 ? 'res-2' : 'res-1' })),
          outboxFor,
          checkpoint('1'),
        );
        await store.commitAlertBatch([resolve('FALL', T0 + 9000)], outboxFor, checkpoint('2'));
        const ids = async (filter?: Parameters<Store['listAlerts']>[0]) => (await store.listAlerts(filter)).map((a) => a.id);
        expect(await ids()).toEqual(['alr-4', 'alr-3', 'alr-2', 'alr-1', 'alr-0']);
        expect(await ids({ limit: 2 })).toEqual(['alr-4', 'alr-3']);
        expect(await ids({ residentId: 'res-2' })).toEqual(['alr-3', 'alr-1']);
        expect(await ids({ state: 'resolved' })).toEqual(['alr-0']);
        expect(await ids({ state: 'open', residentId: 'res-1' })).toEqual(['alr-4', 'alr-2']);
        expect(await ids({ type: 'SOS' })).toEqual(['alr-1']);
        expect(await ids({ type: 'SOS', residentId: 'res-1' })).toEqual([]);
      });

      it('pages alerts with the last one of a page as the cursor, whatever the filters', async () => {
        const { store, checkpoint } = await withLease();
        await store.createResident({ id: 'res-2', name: 'Bo', birthDate: null, timezone: 'UTC', homeLocation: null });
        // alr-0..alr-4 share one openedAt, so the id breaks the tie; alr-5..alr-6 are newer.
        const raises = Array.from({ length: 7 }, (_, i) =>
          raise(`alr-${i}`, { type: `T${i}`, openedAt: i < 5 ? T0 : T0 + i * 1000, residentId: i === 3 ? 'res-2' : 'res-1' }),
        );
        await store.commitAlertBatch(raises, outboxFor, checkpoint('1'));
        const pages = async (filter: Omit<NonNullable<Parameters<Store['listAlerts']>[0]>, 'after' | 'limit'>, limit: number) => {
          const out: string[][] = [];
          let after: { openedAt: number; id: string } | undefined;
          for (;;) {
            const page = await store.listAlerts({ ...filter, limit, after });
            if (page.length) out.push(page.map((a) => a.id));
            if (page.length < limit) return out;
            const last = page[page.length - 1];
            after = { openedAt: last.openedAt, id: last.id };
          }
        };
        expect(await pages({}, 3)).toEqual([['alr-6', 'alr-5', 'alr-4'], ['alr-3', 'alr-2', 'alr-1'], ['alr-0']]);
        expect(await pages({ residentId: 'res-1' }, 2)).toEqual([['alr-6', 'alr-5'], ['alr-4', 'alr-2'], ['alr-1', 'alr-0']]);
        expect(await pages({ state: 'open' }, 4)).toEqual([['alr-6', 'alr-5', 'alr-4', 'alr-3'], ['alr-2', 'alr-1', 'alr-0']]);
        expect(await pages({ type: 'T2' }, 1)).toEqual([['alr-2']]);
        expect(await store.listAlerts({ after: { openedAt: T0, id: 'alr-0' } })).toEqual([]);
        expect((await store.listAlerts({ after: { openedAt: T0 + 6000, id: 'zzz' } })).map((a) => a.id)).toEqual(['alr-6', 'alr-5', 'alr-4', 'alr-3', 'alr-2', 'alr-1', 'alr-0']);
      });

      it('caps listAlerts at 100 by default and 1000 at most', async () => {
        const { store, checkpoint } = await withLease();
        const many = Array.from({ length: 1005 }, (_, i) => raise(`alr-${i}`, { type: `T${i}`, openedAt: T0 + i }));
        await store.commitAlertBatch(many, () => [], checkpoint('1'));
        expect(await store.listAlerts()).toHaveLength(100);
        expect(await store.listAlerts({ limit: 5000 })).toHaveLength(1000);
        expect(await store.countOpenAlerts()).toBe(1005);
      });
    });

    describe('API keys', () => {
      const newKey = (id: string, over: Partial<Omit<ApiKey, 'revokedAt'>> = {}): Omit<ApiKey, 'revokedAt'> => ({
        id,
        name: `app ${id}`,
        keyHash: id.padEnd(64, '0'),
        scopes: ['vitals:read', 'alerts:read'],
        residentIds: null,
        createdAt: T0,
        ...over,
      });

      it('creates keys, finds them by hash only, and lists them oldest first', async () => {
        const store = await connect();
        const a = await store.createApiKey(newKey('key-a', { residentIds: ['res-1', 'res-2'], createdAt: T0 + 1 }));
        expect(a).toEqual({ ...newKey('key-a', { residentIds: ['res-1', 'res-2'], createdAt: T0 + 1 }), revokedAt: null });
        await store.createApiKey(newKey('key-c', { scopes: [] }));
        await store.createApiKey(newKey('key-b', { scopes: ['admin'] }));
        expect(await store.findApiKeyByHash('key-a'.padEnd(64, '0'))).toEqual(a);
        expect(await store.findApiKeyByHash('f'.repeat(64))).toBeNull();
        expect(await store.findApiKeyByHash('key-a')).toBeNull();
        const listed = await store.listApiKeys();
        expect(listed.map((k) => k.id)).toEqual(['key-b', 'key-c', 'key-a']);
        expect(listed[1]).toEqual({ ...newKey('key-c', { scopes: [] }), revokedAt: null });
      });

      it('refuses a taken id or hash', async () => {
        const store = await connect();
        await store.createApiKey(newKey('key-a'));
        await expectVigilError(store.createApiKey(newKey('key-a', { keyHash: 'e'.repeat(64) })), 'CONFLICT');
        await expectVigilError(store.createApiKey(newKey('key-b', { keyHash: 'key-a'.padEnd(64, '0') })), 'CONFLICT');
        expect((await store.listApiKeys()).map((k) => k.id)).toEqual(['key-a']);
        expect(await store.findApiKeyByHash('e'.repeat(64))).toBeNull();
      });

      it('revokes once: the first time stays, the key is still found (as revoked)', async () => {
        const store = await connect();
        await store.createApiKey(newKey('key-a'));
        await store.createApiKey(newKey('key-b'));
        const revoked = await store.revokeApiKey('key-a', T0 + 5000);
        expect(revoked).toMatchObject({ id: 'key-a', revokedAt: T0 + 5000, scopes: ['vitals:read', 'alerts:read'] });
        expect(await store.revokeApiKey('key-a', T0 + 9000)).toEqual(revoked);
        expect(await store.findApiKeyByHash('key-a'.padEnd(64, '0'))).toEqual(revoked);
        expect(await store.revokeApiKey('nope', T0)).toBeNull();
        expect((await store.listApiKeys()).map((k) => [k.id, k.revokedAt])).toEqual([
          ['key-a', T0 + 5000],
          ['key-b', null],
        ]);
        const reopened = await restart(store);
        expect(await reopened.findApiKeyByHash('key-a'.padEnd(64, '0'))).toEqual(revoked);
      });
    });

    describe('outbox', () => {
      /** Three alerts whose rows come due at T0+1000, T0+2000, T0+3000. */
      async function queued() {
        const ctx = await withLease();
        await ctx.store.commitAlertBatch(
          [1, 2, 3].map((i) => raise(`alr-${i}`, { type: `T${i}`, detectedAt: T0 + i * 1000 })),
          outboxFor,
          ctx.checkpoint('1'),
        );
        return ctx.store;
      }

      it('claims due rows oldest first, marking them sending so they are not claimed twice', async () => {
        const store = await queued();
        expect(await store.claimOutbox(T0, 10)).toEqual([]);
        const first = await store.claimOutbox(T0 + 2000, 3);
        expect(first.map((o) => o.alertId)).toEqual(['alr-1', 'alr-1', 'alr-2']);
        for (const o of first) expect(o).toMatchObject({ status: 'sending', attempts: 1 });
        expect(first.find((o) => o.channel === 'webhook')!.payload).toEqual({ url: 'https://example.test/hook', alert: 'alr-1' });
        const second = await store.claimOutbox(T0 + 5000, 10);
        expect(second.map((o) => o.alertId)).toEqual(['alr-2', 'alr-3', 'alr-3']);
        expect(await store.claimOutbox(T0 + 5000, 10)).toEqual([]);
        expect((await store.listOutbox('alr-1')).map((o) => o.status)).toEqual(['sending', 'sending']);
      });

      it('completes, retries and fails deliveries', async () => {
        const store = await queued();
        const [a, b] = await store.claimOutbox(T0 + 1000, 10);
        await store.completeOutbox(a.id, { ok: true, providerId: 'msg-42' }, T0 + 1100);
        await store.completeOutbox(b.id, { ok: false, error: 'HTTP 503', retryAt: T0 + 4000 }, T0 + 1100);
        const rows = await store.listOutbox('alr-1');
        expect(rows.find((o) => o.id === a.id)).toMatchObject({ status: 'sent', providerId: 'msg-42', attempts: 1, updatedAt: T0 + 1100 });
        expect(rows.find((o) => o.id === b.id)).toMatchObject({ status: 'queued', lastError: 'HTTP 503', nextAttemptAt: T0 + 4000, attempts: 1 });

        expect((await store.claimOutbox(T0 + 3999, 10)).map((o) => o.id)).not.toContain(b.id);
        const retry = (await store.claimOutbox(T0 + 4000, 10)).find((o) => o.id === b.id);
        expect(retry).toMatchObject({ status: 'sending', attempts: 2 });
        await store.completeOutbox(b.id, { ok: false, error: 'HTTP 410', retryAt: null }, T0 + 4100);
        expect((await store.listOutbox('alr-1')).find((o) => o.id === b.id)).toMatchObject({ status: 'failed', lastError: 'HTTP 410' });
        expect((await store.claimOutbox(T0 + 99_000, 10)).map((o) => o.id)).not.toContain(b.id);

        // A sent row stays sent, whatever a late report says.
        await store.completeOutbox(a.id, { ok: false, error: 'late', retryAt: T0 }, T0 + 5000);
        expect((await store.listOutbox('alr-1')).find((o) => o.id === a.id)).toMatchObject({ status: 'sent' });
      });

      it('requeues rows left sending by a crash, not rows a live sender claimed since', async () => {
        const store = await queued();
        const claimed = await store.claimOutbox(T0 + 2000, 10);
        expect(claimed).toHaveLength(4);
        await store.completeOutbox(claimed[0].id, { ok: true }, T0 + 2100);
        const restarted = await restart(store);
        expect(await restarted.requeueStuckOutbox(T0 + 2000, T0 + 9000)).toBe(0); // claimed at T0+2000: not before
        expect(await restarted.requeueStuckOutbox(T0 + 2001, T0 + 9000)).toBe(3);
        expect(await restarted.requeueStuckOutbox(T0 + 9000, T0 + 9000)).toBe(0);
        const again = await restarted.claimOutbox(T0 + 9000, 10);
        const requeued = again.filter((o) => o.alertId !== 'alr-3');
        expect(requeued.map((o) => o.id).sort()).toEqual(claimed.slice(1).map((o) => o.id).sort());
        for (const o of requeued) expect(o.attempts).toBe(2);
        expect(again.filter((o) => o.alertId === 'alr-3')).toHaveLength(2);
      });

      it('enqueues only rows that are not there yet', async () => {
        const store = await queued();
        const [row] = await store.listOutbox('alr-1');
        const repeat = { ...row, id: 'alr-1:5:con-a:webhook', step: 5, nextAttemptAt: T0 + 60_000 };
        expect(await store.enqueueOutbox([row, repeat])).toBe(1);
        expect(await store.enqueueOutbox([repeat])).toBe(0);
        expect((await store.listOutbox('alr-1')).map((o) => o.step)).toEqual([0, 0, 5]);
        expect(await store.enqueueOutbox([])).toBe(0);
      });

      it('cancels an alert’s queued rows, not those being sent or done', async () => {
        const store = await queued();
        const [sending] = await store.claimOutbox(T0 + 1000, 1);
        expect(await store.cancelOutbox('alr-1', 'acknowledged', T0 + 1500)).toBe(1);
        const rows = await store.listOutbox('alr-1');
        expect(rows.find((o) => o.id === sending.id)!.status).toBe('sending');
        expect(rows.find((o) => o.id !== sending.id)).toMatchObject({ status: 'cancelled', lastError: 'acknowledged', updatedAt: T0 + 1500 });
        expect((await store.claimOutbox(T0 + 99_000, 10)).map((o) => o.alertId)).not.toContain('alr-1');
        expect(await store.cancelOutbox('alr-1', 'again', T0 + 2000)).toBe(0);
      });

      it('records a provider’s delivery report against the row it took', async () => {
        const store = await queued();
        const [a, b] = await store.claimOutbox(T0 + 1000, 2);
        await store.completeOutbox(a.id, { ok: true, providerId: 'SM1' }, T0 + 1100);
        await store.completeOutbox(b.id, { ok: true, providerId: 'SM2' }, T0 + 1100);
        expect(await store.recordDelivery(a.channel, 'SM1', 'delivered', null, T0 + 2000)).toMatchObject({ id: a.id, status: 'delivered', updatedAt: T0 + 2000 });
        expect(await store.recordDelivery(b.channel, 'SM2', 'failed', '30003 unreachable', T0 + 2000)).toMatchObject({ id: b.id, status: 'failed', lastError: '30003 unreachable' });
        // Delivered is final; an unknown id or another channel's id matches nothing.
        expect(await store.recordDelivery(a.channel, 'SM1', 'failed', 'late', T0 + 3000)).toMatchObject({ status: 'delivered' });
        expect(await store.recordDelivery(a.channel, 'SM-unknown', 'delivered', null, T0 + 3000)).toBeNull();
        expect(await store.recordDelivery('voice', 'SM1', 'delivered', null, T0 + 3000)).toBeNull();
      });

      it('lists an alert’s rows by creation time, step and contact', async () => {
        const { store, checkpoint } = await withLease();
        const steps = (a: Alert): OutboxItem[] =>
          [1, 0].flatMap((step) =>
            outboxFor(a)
              .reverse()
              .map((o) => ({ ...o, step, id: `${a.id}:${step}:${o.contactId}:${o.channel}`, createdAt: T0 })),
          );
        await store.commitAlertBatch([raise('alr-1')], steps, checkpoint('1'));
        expect((await store.listOutbox('alr-1')).map((o) => o.id)).toEqual([
          'alr-1:0:con-a:webhook',
          'alr-1:0:con-b:sms',
          'alr-1:1:con-a:webhook',
          'alr-1:1:con-b:sms',
        ]);
        expect(await store.listOutbox('nope')).toEqual([]);
      });
    });

    describe('leases and checkpoints', () => {
      it('lets only one of two competing owners take a lease', async () => {
        const one = await connect();
        const two = await connect();
        const results = await Promise.all([
          one.acquireLease(GROUP, 3, 'worker-1', TTL, T0),
          two.acquireLease(GROUP, 3, 'worker-2', TTL, T0),
        ]);
        const winners = results.filter((l) => l !== null);
        expect(winners).toHaveLength(1);
        expect(winners[0]).toMatchObject({ group: GROUP, partition: 3, epoch: 1, expiresAt: T0 + TTL });
        expect(await one.listLeases(GROUP)).toEqual(winners);
      });

      it('keeps the epoch when the owner re-acquires, and raises it on takeover after expiry', async () => {
        const store = await connect();
        const mine = (await store.acquireLease(GROUP, 0, 'worker-1', TTL, T0))!;
        expect(mine).toEqual({ group: GROUP, partition: 0, owner: 'worker-1', epoch: 1, expiresAt: T0 + TTL });
        expect(await store.acquireLease(GROUP, 0, 'worker-2', TTL, T0 + TTL - 1)).toBeNull();
        expect(await store.acquireLease(GROUP, 0, 'worker-1', TTL, T0 + 5000)).toEqual({ ...mine, expiresAt: T0 + 5000 + TTL });

        const theirs = (await store.acquireLease(GROUP, 0, 'worker-2', TTL, T0 + 5000 + TTL))!;
        expect(theirs).toMatchObject({ owner: 'worker-2', epoch: 2 });
        expect(await store.renewLease(mine, TTL, T0 + 5000 + TTL)).toBeNull();
        expect(await store.acquireLease(GROUP, 0, 'worker-1', TTL, T0 + 5000 + TTL)).toBeNull();
        expect(await store.renewLease(theirs, TTL, T0 + 20_000)).toEqual({ ...theirs, expiresAt: T0 + 20_000 + TTL });

        // Leases of other partitions and groups are independent.
        expect(await store.acquireLease(GROUP, 1, 'worker-1', TTL, T0)).toMatchObject({ epoch: 1 });
        expect(await store.acquireLease('warehouse', 0, 'worker-1', TTL, T0)).toMatchObject({ epoch: 1 });
        expect((await store.listLeases(GROUP)).map((l) => [l.partition, l.owner, l.epoch])).toEqual([
          [0, 'worker-2', 2],
          [1, 'worker-1', 1],
        ]);
      });

      it('renews an expired lease nobody took, and releases only with the current epoch', async () => {
        const store = await connect();
        const mine = (await store.acquireLease(GROUP, 0, 'worker-1', TTL, T0))!;
        expect(await store.renewLease(mine, TTL, T0 + 3 * TTL)).toEqual({ ...mine, expiresAt: T0 + 4 * TTL });

        await store.releaseLease({ ...mine, epoch: 0 });
        expect(await store.acquireLease(GROUP, 0, 'worker-2', TTL, T0 + 3 * TTL)).toBeNull();
        await store.releaseLease(mine);
        const theirs = (await store.acquireLease(GROUP, 0, 'worker-2', TTL, T0 + 3 * TTL))!;
        expect(theirs).toMatchObject({ owner: 'worker-2', epoch: 2 });
        expect(await store.renewLease(mine, TTL, T0 + 3 * TTL)).toBeNull();
        await store.releaseLease(mine);
        expect(await store.acquireLease(GROUP, 0, 'worker-3', TTL, T0 + 3 * TTL)).toBeNull();
      });

      it('writes checkpoints under a current fence and round-trips their snapshot', async () => {
        const store = await connect();
        const lease = (await store.acquireLease(GROUP, 0, 'worker-1', TTL, T0))!;
        expect(await store.getCheckpoint(GROUP, 0)).toBeNull();
        const snapshot = { devices: { 'band-1': { hr: [72, 75.5], since: T0, worn: true, note: 'é"\\' } }, empty: [], n: null };
        const before = Date.now();
        await store.writeCheckpoint(GROUP, 0, '1234567890123', snapshot, fenceOf(lease));
        const cp = await store.getCheckpoint(GROUP, 0);
        expect(cp).toEqual({ group: GROUP, partition: 0, sequence: '1234567890123', snapshot, updatedAt: expect.any(Number) });
        expect(cp!.updatedAt).toBeGreaterThanOrEqual(before);

        await store.writeCheckpoint(GROUP, 0, null, undefined, fenceOf(lease));
        expect(await store.getCheckpoint(GROUP, 0)).toMatchObject({ sequence: null, snapshot: null });

        const other = (await store.acquireLease(GROUP, 1, 'worker-1', TTL, T0))!;
        await store.writeCheckpoint(GROUP, 1, '7', [1, 2, 3], fenceOf(other));
        expect((await store.listCheckpoints(GROUP)).map((c) => [c.partition, c.sequence, c.snapshot])).toEqual([
          [0, null, null],
          [1, '7', [1, 2, 3]],
        ]);
        expect(await store.listCheckpoints('warehouse')).toEqual([]);
      });

      it('keeps state entries beside the checkpoint: each write replaces the keys it puts, clear starts afresh', async () => {
        const store = await connect();
        const lease = (await store.acquireLease(GROUP, 0, 'worker-1', TTL, T0))!;
        const other = (await store.acquireLease(GROUP, 1, 'worker-1', TTL, T0))!;
        expect(await store.getCheckpointState(GROUP, 0)).toEqual(new Map());
        const big = { ring: Array.from({ length: 500 }, (_, i) => i / 7), text: 'é"\\'.repeat(50) };
        await store.writeCheckpoint(GROUP, 0, '10', null, fenceOf(lease), { put: [['band-1', { v: 1 }], ['band-2', big]] });
        await store.writeCheckpoint(GROUP, 1, '3', null, fenceOf(other), { put: [['band-1', 'partition 1']] });
        // Only what changed is written: band-2 keeps its entry.
        await store.writeCheckpoint(GROUP, 0, '11', { base: true }, fenceOf(lease), { put: [['band-1', { v: 2 }], ['band-3', [1, null]]] });
        expect(await store.getCheckpoint(GROUP, 0)).toMatchObject({ sequence: '11', snapshot: { base: true } });
        expect(await store.getCheckpointState(GROUP, 0)).toEqual(new Map<string, unknown>([['band-1', { v: 2 }], ['band-2', big], ['band-3', [1, null]]]));
        // A checkpoint written without changes leaves the state alone.
        await store.writeCheckpoint(GROUP, 0, '12', null, fenceOf(lease));
        expect((await store.getCheckpointState(GROUP, 0)).size).toBe(3);

        await store.writeCheckpoint(GROUP, 0, null, null, fenceOf(lease), { clear: true, put: [['band-9', 9]] });
        expect(await store.getCheckpointState(GROUP, 0)).toEqual(new Map([['band-9', 9]]));
        expect(await store.getCheckpointState(GROUP, 1)).toEqual(new Map([['band-1', 'partition 1']]));
        expect(await store.getCheckpointState('warehouse', 0)).toEqual(new Map());
      });

      it('writes many state entries in one checkpoint (more than one DynamoDB transaction holds)', async () => {
        const store = await connect();
        const lease = (await store.acquireLease(GROUP, 0, 'worker-1', TTL, T0))!;
        const put = Array.from({ length: 250 }, (_, i) => [`band-${i}`, { i, hr: [60 + (i % 40)] }] as const);
        await store.writeCheckpoint(GROUP, 0, '5', null, fenceOf(lease), { put });
        const state = await store.getCheckpointState(GROUP, 0);
        expect(state.size).toBe(250);
        expect(state.get('band-249')).toEqual({ i: 249, hr: [69] });
        await store.writeCheckpoint(GROUP, 0, '6', null, fenceOf(lease), { clear: true, put: [] });
        expect(await store.getCheckpointState(GROUP, 0)).toEqual(new Map());
      });

      it('writes no state entry under a stale fence', async () => {
        const store = await connect();
        const old = (await store.acquireLease(GROUP, 0, 'worker-1', TTL, T0))!;
        await store.writeCheckpoint(GROUP, 0, '5', null, fenceOf(old), { put: [['band-1', 1]] });
        await store.acquireLease(GROUP, 0, 'worker-2', TTL, T0 + TTL);
        expect(await rejection(store.writeCheckpoint(GROUP, 0, '9', null, fenceOf(old), { put: [['band-1', 2], ['band-2', 2]] }))).toBeInstanceOf(LeaseLostError);
        expect(await rejection(store.writeCheckpoint(GROUP, 0, null, null, fenceOf(old), { clear: true, put: [] }))).toBeInstanceOf(LeaseLostError);
        expect(await store.getCheckpointState(GROUP, 0)).toEqual(new Map([['band-1', 1]]));
      });

      it('refuses a checkpoint from a stale fence', async () => {
        const store = await connect();
        const old = (await store.acquireLease(GROUP, 0, 'worker-1', TTL, T0))!;
        await store.writeCheckpoint(GROUP, 0, '5', { v: 1 }, fenceOf(old));
        const current = (await store.acquireLease(GROUP, 0, 'worker-2', TTL, T0 + TTL))!;

        expect(await rejection(store.writeCheckpoint(GROUP, 0, '9', { v: 2 }, fenceOf(old)))).toBeInstanceOf(LeaseLostError);
        expect(await rejection(store.writeCheckpoint(GROUP, 0, '9', { v: 2 }, { owner: 'worker-2', epoch: 1 }))).toBeInstanceOf(LeaseLostError);
        expect(await rejection(store.writeCheckpoint(GROUP, 7, '9', null, fenceOf(current)))).toBeInstanceOf(LeaseLostError);
        expect(await store.getCheckpoint(GROUP, 0)).toMatchObject({ sequence: '5', snapshot: { v: 1 } });
        expect(await store.getCheckpoint(GROUP, 7)).toBeNull();

        await store.writeCheckpoint(GROUP, 0, '9', { v: 2 }, fenceOf(current));
        expect(await store.getCheckpoint(GROUP, 0)).toMatchObject({ sequence: '9', snapshot: { v: 2 } });
      });

      it('rolls back the whole alert batch when its fence is stale', async () => {
        const { store, lease, checkpoint } = await withLease();
        await store.commitAlertBatch([raise('alr-1')], outboxFor, checkpoint('1', { v: 1 }));
        await store.acquireLease(GROUP, 0, 'worker-2', TTL, lease.expiresAt);

        const err = await rejection(
          store.commitAlertBatch(
            [raise('alr-2', { type: 'SOS' }), raise('alr-3', { openedAt: T0 + 50_000 }), resolve('HR_HIGH', T0 + 60_000)],
            outboxFor,
            checkpoint('2', { v: 2 }),
          ),
        );
        expect(err).toBeInstanceOf(LeaseLostError);
        expect(await store.getAlert('alr-2')).toBeNull();
        expect(await store.listOutbox('alr-2')).toEqual([]);
        expect(await store.getAlert('alr-1')).toMatchObject({ state: 'open', occurrences: 1, lastSeenAt: T0 });
        expect(await store.getCheckpoint(GROUP, 0)).toMatchObject({ sequence: '1', snapshot: { v: 1 } });
      });

      it('commits the state changes with the alert batch, and none of them when its fence is stale', async () => {
        const { store, lease, checkpoint } = await withLease();
        await store.commitAlertBatch([raise('alr-1')], outboxFor, { ...checkpoint('1'), state: { put: [['band-1', { fall: [1, 2] }]] } });
        expect(await store.getCheckpointState(GROUP, 0)).toEqual(new Map([['band-1', { fall: [1, 2] }]]));
        await store.commitAlertBatch([], outboxFor, { ...checkpoint('2'), state: { put: [['band-2', 2]] } });
        expect(await store.getCheckpointState(GROUP, 0)).toEqual(new Map<string, unknown>([['band-1', { fall: [1, 2] }], ['band-2', 2]]));
        await store.acquireLease(GROUP, 0, 'worker-2', TTL, lease.expiresAt);
        const err = await rejection(store.commitAlertBatch([raise('alr-2', { type: 'SOS' })], outboxFor, { ...checkpoint('3'), state: { put: [['band-1', 'stale']] } }));
        expect(err).toBeInstanceOf(LeaseLostError);
        expect((await store.getCheckpointState(GROUP, 0)).get('band-1')).toEqual({ fall: [1, 2] });
        expect(await store.getCheckpoint(GROUP, 0)).toMatchObject({ sequence: '2' });
      });

      it('applies nothing when outboxFor fails', async () => {
        const { store, checkpoint } = await withLease();
        const boom = async () => {
          throw new Error('contacts unavailable');
        };
        await expect(store.commitAlertBatch([raise('alr-1')], boom, checkpoint('1'))).rejects.toThrow('contacts unavailable');
        expect(await store.getAlert('alr-1')).toBeNull();
        expect(await store.getCheckpoint(GROUP, 0)).toBeNull();
      });
    });

    it('keeps everything across close and reopen', async () => {
      const { store, lease, checkpoint } = await withLease();
      await store.setSetting('k', 'v');
      await store.createDevice({ deviceId: 'band-1', residentId: 'res-1', tokenHash: 'f'.repeat(64) });
      await store.createContact({ id: 'con-a', residentId: 'res-1', name: 'Son', phone: null, email: null, webhookUrl: 'https://example.test/h', webhookSecret: 's3cret' });
      await store.commitAlertBatch([raise('alr-1')], outboxFor, checkpoint('42', { open: ['alr-1'] }));
      await store.acknowledgeAlert('alr-1', 'con-a', null, T0 + 2000);
      const [claimed] = await store.claimOutbox(T0 + 1000, 1);
      await store.completeOutbox(claimed.id, { ok: true, providerId: 'p-1' }, T0 + 1500);
      const snapshot = {
        resident: await store.getResident('res-1'),
        devices: await store.listDevices('res-1'),
        contacts: await store.listContacts('res-1'),
        alert: await store.getAlert('alr-1'),
        outbox: await store.listOutbox('alr-1'),
        leases: await store.listLeases(GROUP),
        checkpoint: await store.getCheckpoint(GROUP, 0),
      };

      const reopened = await restart(store);
      expect(await reopened.getSetting('k')).toBe('v');
      expect(await reopened.findDeviceByTokenHash('f'.repeat(64))).toEqual(snapshot.devices[0]);
      expect({
        resident: await reopened.getResident('res-1'),
        devices: await reopened.listDevices('res-1'),
        contacts: await reopened.listContacts('res-1'),
        alert: await reopened.getAlert('alr-1'),
        outbox: await reopened.listOutbox('alr-1'),
        leases: await reopened.listLeases(GROUP),
        checkpoint: await reopened.getCheckpoint(GROUP, 0),
      }).toEqual(snapshot);
      expect(await reopened.renewLease(lease, TTL, T0 + 1)).not.toBeNull();
    });
  });
}
