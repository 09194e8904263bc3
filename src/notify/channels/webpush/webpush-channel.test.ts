import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import webpush from 'web-push';
import { loadConfig } from '../../../core/config.js';
import { SqliteStore } from '../../../store/sqlite/sqlite-store.js';
import type { Alert, Contact, OutboxItem, Resident } from '../../../store/types.js';
import { PermanentDeliveryError, type Delivery } from '../../types.js';
import { testAlert, testItem } from '../../testing/deliveries.js';
import { createPushAndEmailChannels } from '../index-push-email.js';
import { removePushSubscription } from './subscriptions.js';
import { startPushService, type PushService } from './testing/push-service.js';
import { vapidKeys, WebPushChannel, type VapidKeys } from './webpush-channel.js';

const T0 = Date.UTC(2026, 10, 26, 10, 0, 0);
const SUBJECT = 'mailto:ops@vigil.test';

const resident: Resident = { id: 'res-1', name: 'Ada', birthDate: null, timezone: 'UTC', homeLocation: null, medicalNotes: null, createdAt: T0 };
const alertOf = (severity: Alert['severity'], type = 'FALL'): Alert =>
  testAlert({ id: `alr_${severity}`, residentId: resident.id, type, severity, openedAt: T0, detectedAt: T0 + 400, delayMs: 400, lastSeenAt: T0 });
const itemFor = (alert: Alert, contactId: string): OutboxItem => testItem(alert, contactId, 'push');

let dir = '';
let store: SqliteStore;
let service: PushService;
let keys: VapidKeys;
let channel: WebPushChannel;

beforeAll(async () => {
  service = await startPushService();
});
afterAll(async () => {
  await service.close();
});

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'vigil-push-'));
  store = SqliteStore.open(dir);
  await store.createResident({ id: resident.id, name: resident.name, birthDate: null, timezone: 'UTC', homeLocation: null });
  keys = webpush.generateVAPIDKeys();
  channel = new WebPushChannel({
    keys,
    subject: SUBJECT,
    timeoutMs: 5000,
    agent: service.agent,
    onGone: async (contactId, endpoint) => {
      await removePushSubscription(store, contactId, endpoint);
    },
  });
  service.received.length = 0;
  service.rejected.length = 0;
});
afterEach(async () => {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

let contacts = 0;
async function contactWith(...names: string[]): Promise<Contact> {
  const pushSubscriptions = names.map((n) => service.subscribe(n).subscription);
  return store.createContact({
    id: `con-${++contacts}`,
    residentId: resident.id,
    name: 'Grace',
    phone: null,
    email: null,
    webhookUrl: null,
    webhookSecret: null,
    preferences: { pushSubscriptions },
  });
}
const delivery = (alert: Alert, contact: Contact | null): Delivery => ({ item: itemFor(alert, contact?.id ?? 'con-x'), alert, resident, contact });

describe('WebPushChannel', () => {
  it('sends an encrypted, VAPID-signed message that the browser can decrypt', async () => {
    const contact = await contactWith('ada-phone');
    const alert = alertOf('critical');
    const { providerId } = await channel.send(delivery(alert, contact));

    expect(service.rejected).toEqual([]);
    expect(service.received).toHaveLength(1);
    const got = service.received[0];
    expect(providerId).toMatch(new RegExp(`^${service.origin}/message/\\d+$`));
    expect(got.path).toBe('/push/ada-phone');
    expect(got.vapid.publicKey).toBe(keys.publicKey);
    expect(got.vapid.claims).toMatchObject({ aud: service.origin, sub: SUBJECT });
    expect(got.ttl).toBe(24 * 3600);
    expect(got.urgency).toBe('high');
    expect(got.message).toEqual({
      title: 'Vigil: fall',
      body: 'Ada may have fallen at 2026-11-26 10:00 UTC.',
      alertId: alert.id,
      type: 'FALL',
      severity: 'critical',
      url: `/#/alerts/${alert.id}`,
    });
  });

  it('gives non-urgent alerts a shorter TTL and normal urgency', async () => {
    const contact = await contactWith('medium');
    await channel.send(delivery(alertOf('medium', 'BATTERY_LOW'), contact));
    await channel.send(delivery(alertOf('high', 'HR_HIGH'), contact));
    expect(service.received.map((r) => [r.ttl, r.urgency, (r.message as { severity: string }).severity])).toEqual([
      [3600, 'normal', 'medium'],
      [3600, 'high', 'high'],
    ]);
  });

  it('sends to every subscription and succeeds when one took it; a 410 removes that subscription', async () => {
    const contact = await contactWith('old-laptop', 'new-phone');
    service.answer('old-laptop', 410);
    const { providerId } = await channel.send(delivery(alertOf('high'), contact));
    expect(providerId).toMatch(/\/message\/\d+$/);
    expect(service.received.map((r) => r.path)).toEqual(['/push/new-phone']);
    const after = await store.getContact(contact.id);
    expect(after!.preferences.pushSubscriptions!.map((s) => s.endpoint)).toEqual([`${service.origin}/push/new-phone`]);
  });

  it('fails for good when every subscription is gone (404/410), and removes them', async () => {
    const contact = await contactWith('gone-1', 'gone-2');
    service.answer('gone-1', 410);
    service.answer('gone-2', 404);
    const err = await channel.send(delivery(alertOf('high'), contact)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PermanentDeliveryError);
    expect((err as Error).message).toContain('gone (410)');
    expect((err as Error).message).not.toContain('/push/'); // endpoints are capabilities: origin only
    expect((await store.getContact(contact.id))!.preferences.pushSubscriptions).toEqual([]);
  });

  it('fails for good without a subscription or a contact', async () => {
    const contact = await contactWith();
    await expect(channel.send(delivery(alertOf('high'), contact))).rejects.toBeInstanceOf(PermanentDeliveryError);
    await expect(channel.send(delivery(alertOf('high'), null))).rejects.toBeInstanceOf(PermanentDeliveryError);
  });

  it('fails for good on an unusable subscription or a refusal (403)', async () => {
    const contact = await contactWith('refuses');
    service.answer('refuses', 403);
    await expect(channel.send(delivery(alertOf('high'), contact))).rejects.toBeInstanceOf(PermanentDeliveryError);
    const broken = { ...contact, preferences: { pushSubscriptions: [{ endpoint: `${service.origin}/push/x`, keys: { p256dh: 'AAAA', auth: 'AAAA' } }] } };
    await expect(channel.send(delivery(alertOf('high'), broken))).rejects.toThrow(/unusable subscription/);
  });

  it.each([429, 500, 503])('lets the outbox retry a %i', async (status) => {
    const contact = await contactWith(`busy-${status}`);
    service.answer(`busy-${status}`, status);
    const err = await channel.send(delivery(alertOf('high'), contact)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    expect(err).not.toBeInstanceOf(PermanentDeliveryError);
    expect((err as Error).message).toContain(`answered ${status}`);
    expect((await store.getContact(contact.id))!.preferences.pushSubscriptions).toHaveLength(1);
  });

  it('retries when one subscription is busy and the others are gone', async () => {
    const contact = await contactWith('mix-gone', 'mix-busy');
    service.answer('mix-gone', 410);
    service.answer('mix-busy', 503);
    const err = await channel.send(delivery(alertOf('high'), contact)).catch((e: unknown) => e);
    expect(err).not.toBeInstanceOf(PermanentDeliveryError);
    expect((await store.getContact(contact.id))!.preferences.pushSubscriptions!.map((s) => s.endpoint)).toEqual([`${service.origin}/push/mix-busy`]);
  });

  it('lets the outbox retry when the push service cannot be reached', async () => {
    const closed = await startPushService();
    const browser = closed.subscribe('down');
    await closed.close();
    const contact = await store.createContact({
      id: 'con-down', residentId: resident.id, name: 'G', phone: null, email: null, webhookUrl: null, webhookSecret: null,
      preferences: { pushSubscriptions: [browser.subscription] },
    });
    const err = await channel.send(delivery(alertOf('high'), contact)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    expect(err).not.toBeInstanceOf(PermanentDeliveryError);
    expect((err as Error).message).toMatch(/ECONNREFUSED/);
  });

  it('does not trust a push service whose certificate it cannot verify', async () => {
    const contact = await contactWith('tls');
    const strict = new WebPushChannel({ keys, subject: SUBJECT, timeoutMs: 5000, onGone: async () => undefined });
    const err = await strict.send(delivery(alertOf('high'), contact)).catch((e: unknown) => e);
    expect(err).not.toBeInstanceOf(PermanentDeliveryError);
    expect(service.received).toHaveLength(0);
  });
});

describe('vapidKeys', () => {
  it('generates a key pair once and every process reads the same one back', async () => {
    const config = loadConfig({ env: {} });
    const other = SqliteStore.open(dir);
    try {
      const [a, b] = await Promise.all([vapidKeys(store, config), vapidKeys(other, config)]);
      expect(a).toEqual(b);
      expect(Buffer.from(a.publicKey, 'base64url')).toHaveLength(65);
      expect(await vapidKeys(store, config)).toEqual(a);
      expect(JSON.parse((await store.getSetting('push.vapid'))!)).toEqual(a);
    } finally {
      await other.close();
    }
  });

  it('uses the configured pair, and refuses half of one', async () => {
    const pair = webpush.generateVAPIDKeys();
    const config = loadConfig({ env: {}, overrides: { 'push.vapidPublicKey': pair.publicKey, 'push.vapidPrivateKey': pair.privateKey } });
    expect(await vapidKeys(store, config)).toEqual({ publicKey: pair.publicKey, privateKey: pair.privateKey });
    expect(await store.getSetting('push.vapid')).toBeNull();
    const half = loadConfig({ env: {}, overrides: { 'push.vapidPublicKey': pair.publicKey } });
    await expect(vapidKeys(store, half)).rejects.toThrow(/set together/);
    const bad = loadConfig({ env: {}, overrides: { 'push.vapidPublicKey': 'abc', 'push.vapidPrivateKey': 'def' } });
    await expect(vapidKeys(store, bad)).rejects.toThrow(/not a VAPID key pair/);
  });
});

describe('createPushAndEmailChannels', () => {
  it('always has push, email only with an SMTP URL, and serves the stored public key', async () => {
    const without = await createPushAndEmailChannels(loadConfig({ env: {} }), store);
    expect(without.channels.map((c) => c.name)).toEqual(['push']);
    expect(without.vapidPublicKey).toBe(JSON.parse((await store.getSetting('push.vapid'))!).publicKey);
    const withEmail = await createPushAndEmailChannels(loadConfig({ env: {}, overrides: { 'email.smtpUrl': 'smtp://127.0.0.1:2525' } }), store);
    expect(withEmail.channels.map((c) => c.name)).toEqual(['push', 'email']);
    expect(withEmail.vapidPublicKey).toBe(without.vapidPublicKey);
  });
});
