/**
 * Live events end to end (embedded backends): GET /v1/events streams the vitals of readings
 * posted to this Vigil, an SOS raised by the alerts group (found by polling the store), its
 * acknowledgement and resolution through the API; a reconnect with Last-Event-ID gets what
 * followed that id again; the admin key in the header or in ?access_token=; heartbeats.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Vigil } from '../src/app.js';
import { connectSse, type SseConnection } from '../src/testing/sse-client.js';
import { ADMIN_KEY, api, reading, registerResident, startTestVigil } from './helpers.js';

describe('live events (GET /v1/events)', () => {
  let vigil: Vigil;
  let base: string;
  const open: SseConnection[] = [];
  const connect = async (query = '', headers: Record<string, string> = { authorization: `Bearer ${ADMIN_KEY}` }) => {
    const c = await connectSse(`${base}/v1/events${query}`, headers);
    open.push(c);
    return c;
  };

  beforeAll(async () => {
    vigil = await startTestVigil();
    base = vigil.url;
  });
  afterAll(async () => {
    for (const c of open) c.close();
    await vigil?.stop();
  });

  it('streams vitals, an SOS opened, acknowledged and resolved; resumes from Last-Event-ID; sends heartbeats', async () => {
    const connectedAt = Date.now();
    const sse = await connect();
    expect(sse.status).toBe(200);
    expect(sse.headers.get('content-type')).toBe('text/event-stream; charset=utf-8');
    await sse.waitForComment((c) => c === 'connected');
    expect(sse.retry).toBe(3000);

    const band = await registerResident(base, 'band-live');
    const t0 = Date.now() - 20_000;
    const normal = Array.from({ length: 3 }, (_, i) => reading('band-live', i, t0 + i * 5000, { hr: 70 + i }));
    expect((await api(base, 'POST', '/v1/readings', { token: band.token, body: { readings: normal } })).status).toBe(202);

    const vitals = await sse.waitFor((m) => m.event === 'vitals');
    expect(vitals.id).toBeNull(); // not replayed, does not move Last-Event-ID
    expect(JSON.parse(vitals.data)).toEqual({
      event: 'vitals',
      vitals: { residentId: band.residentId, deviceId: 'band-live', ts: new Date(t0 + 10_000).toISOString(), receivedAt: expect.any(String), hr: 72, spo2: 97, skinTemp: 33.1, battery: 80, worn: true },
    });

    const sos = await api(base, 'POST', '/v1/readings', { token: band.token, body: reading('band-live', 3, t0 + 15_000, { events: ['SOS'] }) });
    expect(sos.status).toBe(202);
    const opened = await sse.waitFor((m) => m.event === 'alert.opened');
    const { event, alert } = JSON.parse(opened.data);
    expect(event).toBe('alert.opened');
    expect(alert).toMatchObject({ type: 'SOS', severity: 'critical', state: 'open', residentId: band.residentId, deviceId: 'band-live', openedAt: new Date(t0 + 15_000).toISOString() });
    expect(opened.id).toBe(`${Date.parse(alert.detectedAt)}-${alert.id}-opened`);
    expect(opened.data).not.toContain('Resident of'); // ids only, no names

    const ack = await api(base, 'POST', `/v1/alerts/${alert.id}/ack`, { token: ADMIN_KEY, body: { by: 'nurse' } });
    expect(ack.status).toBe(200);
    const acknowledged = await sse.waitFor((m) => m.event === 'alert.acknowledged');
    expect(acknowledged.id).toBe(`${Date.parse(ack.body.acknowledgedAt)}-${alert.id}-acknowledged`);
    expect(JSON.parse(acknowledged.data).alert).toMatchObject({ id: alert.id, state: 'acknowledged', acknowledgedBy: 'nurse' });
    expect(sse.lastEventId).toBe(acknowledged.id);

    // A reconnect from the first event gets the second again, and then live events.
    const resumed = await connect('', { authorization: `Bearer ${ADMIN_KEY}`, 'last-event-id': opened.id! });
    const again = await resumed.waitFor((m) => m.event.startsWith('alert.'));
    expect(again).toEqual(acknowledged);
    const resolve = await api(base, 'POST', `/v1/alerts/${alert.id}/resolve`, { token: ADMIN_KEY, body: { by: 'nurse' } });
    expect(resolve.status).toBe(200);
    for (const c of [sse, resumed]) {
      const resolved = await c.waitFor((m) => m.event === 'alert.resolved');
      expect(resolved.id).toBe(`${Date.parse(resolve.body.resolvedAt)}-${alert.id}-resolved`);
    }
    expect(resumed.messages.filter((m) => m.event.startsWith('alert.')).map((m) => m.event)).toEqual(['alert.acknowledged', 'alert.resolved']);
    expect(sse.messages.filter((m) => m.event.startsWith('alert.')).map((m) => m.event)).toEqual(['alert.opened', 'alert.acknowledged', 'alert.resolved']);

    // An id from before this process polled (or long gone): reset, then live.
    const stale = await connect('', { authorization: `Bearer ${ADMIN_KEY}`, 'last-event-id': `${connectedAt - 3_600_000}-alr_gone-opened` });
    const reset = await stale.waitFor((m) => m.event === 'reset');
    expect(JSON.parse(reset.data)).toMatchObject({ event: 'reset', lastEventId: `${connectedAt - 3_600_000}-alr_gone-opened` });

    // A comment at least every 15 s keeps the connection alive through proxies (one timer for all connections).
    const heartbeat = await sse.waitForComment((c) => c.startsWith('heartbeat '), 20_000);
    expect(Date.parse(heartbeat.slice('heartbeat '.length))).toBeGreaterThan(connectedAt);
  }, 60_000);

  it('takes the admin key as ?access_token= (EventSource cannot send headers); refuses a wrong or missing key', async () => {
    const wrong = await connect('', { authorization: 'Bearer not-the-key' });
    expect(wrong.status).toBe(401);
    expect(JSON.parse(wrong.text)).toMatchObject({ code: 'INVALID_TOKEN' });
    const wrongQuery = await connect('?access_token=not-the-key', {});
    expect(wrongQuery.status).toBe(401);
    const missing = await connect('', {});
    expect(missing.status).toBe(401);
    expect(JSON.parse(missing.text)).toMatchObject({ code: 'MISSING_TOKEN' });

    const viaQuery = await connect(`?access_token=${encodeURIComponent(ADMIN_KEY)}`, {});
    expect(viaQuery.status).toBe(200);
    await viaQuery.waitForComment((c) => c === 'connected');
    // Only this route takes a key in the URL.
    expect((await api(base, 'GET', `/v1/alerts?access_token=${encodeURIComponent(ADMIN_KEY)}`)).status).toBe(401);
  });

  it('filters by an API key’s scopes and residents', async () => {
    const mine = await registerResident(base, 'band-live-key');
    const other = await registerResident(base, 'band-live-other');
    const key = await api(base, 'POST', '/v1/api-keys', { token: ADMIN_KEY, body: { name: 'family app', scopes: ['vitals:read'], residentIds: [mine.residentId] } });
    expect(key.status).toBe(201);
    const sse = await connect(`?access_token=${key.body.key}`, {});
    expect(sse.status).toBe(200);
    await sse.waitForComment((c) => c === 'connected');
    const t0 = Date.now() - 10_000;
    for (const b of [other, mine]) {
      const res = await api(base, 'POST', '/v1/readings', { token: b.token, body: { readings: [reading(b.deviceId, 0, t0, { hr: 66 }), reading(b.deviceId, 1, t0 + 5000, { events: ['SOS'] })] } });
      expect(res.status).toBe(202);
    }
    const vitals = await sse.waitFor((m) => m.event === 'vitals');
    expect(JSON.parse(vitals.data).vitals.residentId).toBe(mine.residentId);
    // Both SOS alerts open; a vitals-only key sees neither, and never the other resident.
    await new Promise((r) => setTimeout(r, 2500));
    expect(sse.messages.filter((m) => m.event.startsWith('alert.'))).toEqual([]);
    expect(sse.messages.some((m) => m.data.includes(other.residentId))).toBe(false);
    const noScope = await api(base, 'POST', '/v1/api-keys', { token: ADMIN_KEY, body: { name: 'acker', scopes: ['alerts:ack'] } });
    expect((await connect(`?access_token=${noScope.body.key}`, {})).status).toBe(403);
  });
});
