import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AdminAuth } from '../../../api/admin-auth.js';
import { createHttpServer } from '../../../api/http-server.js';
import { createLogger } from '../../../core/logger.js';
import { SqliteStore } from '../../../store/sqlite/sqlite-store.js';
import { MAX_SUBSCRIPTIONS } from './subscriptions.js';
import { browserSubscription } from './testing/push-service.js';
import { registerWebPushApi } from './webpush-api.js';

const ADMIN = 'vadm_test-key';
const auth = { authorization: `Bearer ${ADMIN}` };
const PUBLIC_KEY = 'BPublicKeyForTheTest';

let dir = '';
let store: SqliteStore;
let app: FastifyInstance;

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'vigil-push-api-'));
  store = SqliteStore.open(dir);
  await store.createResident({ id: 'res-1', name: 'Ada', birthDate: null, timezone: 'UTC', homeLocation: null });
  await store.createContact({
    id: 'con-1', residentId: 'res-1', name: 'Grace', phone: '+15550100', email: null, webhookUrl: null, webhookSecret: null,
    preferences: { priority: 2, channels: ['push', 'sms'] },
  });
  const { auth: admin } = await AdminAuth.init(store, ADMIN);
  app = createHttpServer({ log: createLogger('silent'), bodyLimit: 1 << 20 });
  registerWebPushApi(app, store, admin, PUBLIC_KEY);
  await app.ready();
});
afterEach(async () => {
  await app.close();
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

const subscribe = (body: unknown, contactId = 'con-1', headers: Record<string, string> = auth) =>
  app.inject({ method: 'POST', url: `/v1/contacts/${contactId}/push-subscriptions`, headers, payload: body as object });
const endpoints = async () => ((await store.getContact('con-1'))!.preferences.pushSubscriptions ?? []).map((s) => s.endpoint);

describe('Web Push API', () => {
  it('serves the VAPID public key without auth', async () => {
    const res = await app.inject({ method: 'GET', url: '/v1/push/vapid-public-key' });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ publicKey: PUBLIC_KEY });
  });

  it('adds what PushSubscription.toJSON() gives, keeps the other preferences, and dedupes by endpoint', async () => {
    const phone = browserSubscription('https://push.example.org/send/phone');
    const res = await subscribe({ ...phone.subscription, expirationTime: null });
    expect(res.statusCode).toBe(201);
    expect(res.json()).toEqual({ contactId: 'con-1', endpoint: phone.subscription.endpoint, subscriptions: 1 });

    const laptop = browserSubscription('https://push.example.org/send/laptop');
    expect((await subscribe(laptop.subscription)).json().subscriptions).toBe(2);
    // The phone subscribes again (new keys, same endpoint): replaced, not added.
    const again = browserSubscription(phone.subscription.endpoint);
    expect((await subscribe(again.subscription)).json().subscriptions).toBe(2);

    const contact = (await store.getContact('con-1'))!;
    expect(contact.preferences).toMatchObject({ priority: 2, channels: ['push', 'sms'] });
    expect(contact.preferences.pushSubscriptions).toEqual([laptop.subscription, again.subscription]);
  });

  it(`keeps at most ${MAX_SUBSCRIPTIONS} subscriptions, dropping the oldest`, async () => {
    for (let i = 0; i <= MAX_SUBSCRIPTIONS; i++) expect((await subscribe(browserSubscription(`https://push.example.org/${i}`).subscription)).statusCode).toBe(201);
    const kept = await endpoints();
    expect(kept).toHaveLength(MAX_SUBSCRIPTIONS);
    expect(kept[0]).toBe('https://push.example.org/1');
  });

  it('requires the admin key', async () => {
    const sub = browserSubscription('https://push.example.org/x').subscription;
    expect((await subscribe(sub, 'con-1', {})).json()).toMatchObject({ status: 401, code: 'MISSING_TOKEN' });
    expect((await subscribe(sub, 'con-1', { authorization: 'Bearer nope' })).json()).toMatchObject({ status: 401, code: 'INVALID_TOKEN' });
    const del = await app.inject({ method: 'DELETE', url: '/v1/contacts/con-1/push-subscriptions?endpoint=x' });
    expect(del.statusCode).toBe(401);
    expect(await endpoints()).toEqual([]);
  });

  it('refuses what no push service would take', async () => {
    const good = browserSubscription('https://push.example.org/x').subscription;
    const offCurve = Buffer.alloc(65, 1);
    offCurve[0] = 4;
    const cases: [unknown, RegExp][] = [
      [{ ...good, endpoint: 'http://push.example.org/x' }, /endpoint/],
      [{ ...good, endpoint: 'https://' }, /URL/],
      [{ endpoint: good.endpoint }, /keys/],
      [{ ...good, keys: { ...good.keys, auth: 'short' } }, /auth/],
      [{ ...good, keys: { ...good.keys, p256dh: offCurve.toString('base64url') } }, /P-256/],
      [{ ...good, keys: { ...good.keys, auth: Buffer.alloc(17).toString('base64url') } }, /16 bytes/],
      [{ ...good, extra: 1 }, /additional/],
    ];
    for (const [body, detail] of cases) {
      const res = await subscribe(body);
      expect(res.statusCode, JSON.stringify(body)).toBe(400);
      expect(res.headers['content-type']).toContain('application/problem+json');
      expect(res.json()).toMatchObject({ code: 'INVALID_BODY', detail: expect.stringMatching(detail) });
    }
    expect(await endpoints()).toEqual([]);
  });

  it('answers 404 for an unknown contact', async () => {
    const res = await subscribe(browserSubscription('https://push.example.org/x').subscription, 'con-nobody');
    expect(res.json()).toMatchObject({ status: 404, code: 'NOT_FOUND' });
    const del = await app.inject({ method: 'DELETE', url: '/v1/contacts/con-nobody/push-subscriptions?endpoint=x', headers: auth });
    expect(del.statusCode).toBe(404);
  });

  it('removes a subscription by endpoint, and answers 204 again when it is already gone', async () => {
    const a = browserSubscription('https://push.example.org/send/a?x=1&y=2').subscription;
    const b = browserSubscription('https://push.example.org/send/b').subscription;
    await subscribe(a);
    await subscribe(b);
    const url = `/v1/contacts/con-1/push-subscriptions?endpoint=${encodeURIComponent(a.endpoint)}`;
    const res = await app.inject({ method: 'DELETE', url, headers: auth });
    expect(res.statusCode).toBe(204);
    expect(res.body).toBe('');
    expect(await endpoints()).toEqual([b.endpoint]);
    expect((await app.inject({ method: 'DELETE', url, headers: auth })).statusCode).toBe(204);
    expect(await endpoints()).toEqual([b.endpoint]);
    const missing = await app.inject({ method: 'DELETE', url: '/v1/contacts/con-1/push-subscriptions', headers: auth });
    expect(missing.json()).toMatchObject({ status: 400, code: 'INVALID_BODY' });
  });
});
