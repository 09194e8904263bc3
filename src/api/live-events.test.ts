/**
 * Live events without the pipeline: the source against an in-memory alert store (events from
 * state changes, once each; replay, resume by time, reset; vitals throttled per resident), the
 * scope filter, and the SSE route (auth, heartbeats, pokes, slow and closing connections).
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { createLogger } from '../core/logger.js';
import { VigilError } from '../core/errors.js';
import type { Alert, AlertFilter } from '../store/types.js';
import type { AppendEntry, AppendResult } from '../stream/types.js';
import { createHttpServer } from './http-server.js';
import { ADMIN_PRINCIPAL, canSee, eventIdTime, LiveEventSource, type LiveEvent, type LivePrincipal } from './live-event-source.js';
import { registerLiveEvents, sseFrame } from './live-events.js';
import { connectSse, SseParser, type SseMessage } from '../testing/sse-client.js';

const log = createLogger('silent', 'test');

class MemoryAlerts {
  readonly alerts = new Map<string, Alert>();
  reads = 0;
  failing = false;

  async listAlerts(filter: AlertFilter = {}): Promise<Alert[]> {
    this.reads++;
    if (this.failing) throw new Error('store down');
    const limit = Math.min(filter.limit ?? 100, 1000);
    return [...this.alerts.values()]
      .filter((a) => (filter.state === undefined || a.state === filter.state) && (filter.residentId === undefined || a.residentId === filter.residentId))
      .sort((a, b) => b.openedAt - a.openedAt || (b.id < a.id ? -1 : 1))
      .slice(0, limit)
      .map((a) => ({ ...a }));
  }

  async getAlert(id: string): Promise<Alert | null> {
    const a = this.alerts.get(id);
    return a ? { ...a } : null;
  }

  open(id: string, residentId = 'res_a', at = Date.now()): Alert {
    const alert: Alert = {
      id, residentId, deviceId: 'band-1', type: 'SOS', severity: 'critical', state: 'open', openedAt: at, detectedAt: at, delayMs: null,
      acknowledgedAt: null, acknowledgedBy: null, ackNote: null, resolvedAt: null, lastSeenAt: at, occurrences: 1, evidence: {},
    };
    this.alerts.set(id, alert);
    return alert;
  }

  ack(id: string, at = Date.now()): void {
    Object.assign(this.alerts.get(id)!, { state: 'acknowledged', acknowledgedAt: at, acknowledgedBy: 'nurse' });
  }

  resolve(id: string, at = Date.now()): void {
    Object.assign(this.alerts.get(id)!, { state: 'resolved', resolvedAt: at });
  }
}

/** A subscriber that records what it is sent. */
function recorder(principal: LivePrincipal = ADMIN_PRINCIPAL) {
  const events: LiveEvent[] = [];
  return { events, sub: { principal, send: (e: LiveEvent) => void events.push(e) } };
}

async function until<T>(what: string, probe: () => T | undefined | null | false, timeoutMs = 5000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = probe();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

const entry = (residentId: string, deviceId: string, readings: object[]): AppendEntry => ({
  deviceId,
  residentId,
  seqs: readings.map((_, i) => i),
  readings: readings.map((r) => JSON.stringify(r)),
});

describe('canSee', () => {
  const alert = { type: 'alert.opened' as const, residentId: 'res_a' };
  const vitals = { type: 'vitals' as const, residentId: 'res_a' };
  it('lets the admin see everything, and a scope only its kind of event', () => {
    expect(canSee(alert, ADMIN_PRINCIPAL) && canSee(vitals, ADMIN_PRINCIPAL)).toBe(true);
    const alertsOnly = { scopes: ['alerts:read'], residentIds: null };
    expect(canSee(alert, alertsOnly)).toBe(true);
    expect(canSee(vitals, alertsOnly)).toBe(false);
    const vitalsOnly = { scopes: ['vitals:read'], residentIds: null };
    expect(canSee(alert, vitalsOnly)).toBe(false);
    expect(canSee(vitals, vitalsOnly)).toBe(true);
    expect(canSee(alert, { scopes: ['readings:write'], residentIds: null })).toBe(false);
  });

  it('limits a principal to its residents; a reset goes to everyone', () => {
    const mine = { scopes: ['alerts:read', 'vitals:read'], residentIds: ['res_a'] };
    expect(canSee({ type: 'alert.resolved', residentId: 'res_a' }, mine)).toBe(true);
    expect(canSee({ type: 'alert.resolved', residentId: 'res_b' }, mine)).toBe(false);
    expect(canSee({ type: 'vitals', residentId: 'res_b' }, mine)).toBe(false);
    expect(canSee({ type: 'reset', residentId: null }, { scopes: [], residentIds: [] })).toBe(true);
  });
});

describe('LiveEventSource: alerts', () => {
  let source: LiveEventSource;
  afterEach(async () => source?.close());

  it('turns state changes into one event each, after learning the state it starts from', async () => {
    const store = new MemoryAlerts();
    store.open('alr_before');
    source = new LiveEventSource(store, { log, pollMs: 10 });
    const { events, sub } = recorder();
    await source.subscribe(sub, null);

    const t = Date.now();
    store.open('alr_1', 'res_a', t);
    await until('opened', () => events.length === 1);
    expect(events[0]).toMatchObject({ id: `${t}-alr_1-opened`, type: 'alert.opened', residentId: 'res_a', at: t });
    expect(JSON.parse(events[0].data)).toMatchObject({ event: 'alert.opened', alert: { id: 'alr_1', state: 'open', openedAt: new Date(t).toISOString() } });

    store.ack('alr_1', t + 1);
    store.resolve('alr_before', t + 2);
    await until('ack and resolve', () => events.length === 3);
    expect(events.slice(1).map((e) => e.id)).toEqual([`${t + 1}-alr_1-acknowledged`, `${t + 2}-alr_before-resolved`]);

    // Opened, acknowledged and resolved between two polls: all three, in time order.
    const a = store.open('alr_2', 'res_b', t + 3);
    store.ack(a.id, t + 4);
    store.resolve(a.id, t + 5);
    await until('three more', () => events.length === 6);
    expect(events.slice(3).map((e) => e.type)).toEqual(['alert.opened', 'alert.acknowledged', 'alert.resolved']);
    await new Promise((r) => setTimeout(r, 50));
    expect(events).toHaveLength(6); // nothing twice
  });

  it('sees an alert resolved after it left the recent page (read by id)', async () => {
    const store = new MemoryAlerts();
    const t = Date.now() - 1000;
    store.open('alr_old', 'res_a', t - 3_600_000);
    for (let i = 0; i < 150; i++) store.open(`alr_${String(i).padStart(3, '0')}`, 'res_a', t + i);
    source = new LiveEventSource(store, { log, pollMs: 10 });
    const { events, sub } = recorder();
    await source.subscribe(sub, null);
    store.resolve('alr_old');
    await until('resolved', () => events.find((e) => e.id?.endsWith('-alr_old-resolved')));
    expect(events).toHaveLength(1);
  });

  it('never emits transitions older than the replay window', async () => {
    const store = new MemoryAlerts();
    source = new LiveEventSource(store, { log, pollMs: 10, replayMs: 60_000 });
    const { events, sub } = recorder();
    await source.subscribe(sub, null);
    store.open('alr_late', 'res_a', Date.now() - 120_000); // committed long after its time
    store.open('alr_now');
    await until('the recent one', () => events.length >= 1);
    await new Promise((r) => setTimeout(r, 50));
    expect(events.map((e) => e.id)).toEqual([expect.stringMatching(/-alr_now-opened$/)]);
  });

  it('replays after a buffered id, resumes by time for an id of another process, else resets', async () => {
    const store = new MemoryAlerts();
    source = new LiveEventSource(store, { log, pollMs: 10 });
    const first = recorder();
    const unsubscribe = await source.subscribe(first.sub, null);
    const t = Date.now();
    store.open('alr_1', 'res_a', t);
    await until('opened', () => first.events.length === 1);
    store.ack('alr_1', t + 1);
    store.open('alr_2', 'res_b', t + 2);
    await until('two more', () => first.events.length === 3);
    unsubscribe();

    // Exactly what followed, in the order it was sent.
    const again = recorder();
    await source.subscribe(again.sub, first.events[0].id);
    expect(again.events.map((e) => e.id)).toEqual(first.events.slice(1).map((e) => e.id));

    // An id this process never emitted but within what it covers: everything from a little before it.
    const other = source.replayAfter(`${t + 1}-alr_x-opened`);
    expect(other.map((e) => e.id)).toEqual(first.events.map((e) => e.id));

    // Older than what the buffer covers, or not an id at all: reset.
    for (const id of [`${t - 3_600_000}-alr_0-opened`, 'garbage']) {
      const [reset, ...rest] = source.replayAfter(id);
      expect(rest).toHaveLength(0);
      expect(reset.type).toBe('reset');
      expect(eventIdTime(reset.id!)).toBeGreaterThanOrEqual(t);
      expect(JSON.parse(reset.data)).toMatchObject({ event: 'reset', lastEventId: id });
    }
    // The reset's own id resumes from then on (nothing new since).
    expect(source.replayAfter(source.replayAfter('garbage')[0].id!).every((e) => e.at >= Date.now() - 20_000)).toBe(true);

    // A subscriber limited to res_b gets only its resident's part of a replay.
    const limited = recorder({ scopes: ['alerts:read'], residentIds: ['res_b'] });
    await source.subscribe(limited.sub, first.events[0].id);
    expect(limited.events.map((e) => e.id)).toEqual([first.events[2].id]);
  });

  it('keeps at most replayMax events: an evicted id resets', async () => {
    const store = new MemoryAlerts();
    source = new LiveEventSource(store, { log, pollMs: 10, replayMax: 2 });
    const { events, sub } = recorder();
    await source.subscribe(sub, null);
    const t = Date.now();
    for (let i = 0; i < 4; i++) store.open(`alr_${i}`, 'res_a', t + i);
    await until('four', () => events.length === 4);
    expect(source.replayAfter(events[2].id!).map((e) => e.id)).toEqual([events[3].id]);
    expect(source.replayAfter(events[0].id!)[0].type).toBe('reset');
  });

  it('a client connecting before polling started gets a reset for its old id; a store failure is retried', async () => {
    const store = new MemoryAlerts();
    source = new LiveEventSource(store, { log, pollMs: 10 });
    const { events, sub } = recorder();
    await source.subscribe(sub, `${Date.now() - 1000}-alr_1-opened`);
    expect(events.map((e) => e.type)).toEqual(['reset']);
    store.failing = true;
    await new Promise((r) => setTimeout(r, 40));
    store.failing = false;
    store.open('alr_after');
    await until('an event after the failure', () => events.length === 2, 10_000);
  });

  it('polls at once when poked, and stops polling replayMs after the last subscriber left', async () => {
    const store = new MemoryAlerts();
    source = new LiveEventSource(store, { log, pollMs: 60_000, replayMs: 30 });
    const { events, sub } = recorder();
    const unsubscribe = await source.subscribe(sub, null);
    store.open('alr_1');
    source.poke();
    await until('the poked poll', () => events.length === 1, 1000);
    unsubscribe();
    expect(source.active).toBe(true);
    await new Promise((r) => setTimeout(r, 40));
    source.poke(); // the next poll finds nobody for longer than replayMs
    await until('stopped', () => !source.active, 1000);
  });
});

describe('LiveEventSource: vitals', () => {
  let source: LiveEventSource;
  afterEach(async () => source?.close());

  it('records appends only while someone listens, at most one event per resident per period', async () => {
    const appended: AppendEntry[][] = [];
    const stream = {
      append: async (entries: AppendEntry[]): Promise<AppendResult[]> => {
        appended.push(entries);
        return entries.map((e) => ({ partition: 0, sequence: '1', duplicates: e.readings.length > 1 && e.residentId === 'res_dup' ? e.readings.map((_, i) => i) : [] }));
      },
    };
    source = new LiveEventSource(new MemoryAlerts(), { log, vitalsEveryMs: 60_000 });
    const tapped = source.tapStream(stream);
    const t = Date.now();
    await tapped.append([entry('res_a', 'band-1', [{ ts: t - 5000, receivedAt: t, hr: 60 }])]);
    source.flushVitals();
    expect(appended).toHaveLength(1);

    const { events, sub } = recorder();
    await source.subscribe(sub, null);
    expect(events).toHaveLength(0); // nothing recorded before
    await tapped.append([
      entry('res_a', 'band-1', [
        { ts: t - 2000, receivedAt: t, hr: 70, spo2: 96, battery: 80, worn: true },
        { ts: t - 1000, receivedAt: t, hr: 72, skinTemp: 33.2 },
      ]),
      entry('res_dup', 'band-2', [{ ts: t, receivedAt: t, hr: 1 }, { ts: t, receivedAt: t, hr: 2 }]),
    ]);
    source.flushVitals();
    expect(events.map((e) => [e.type, e.id, e.residentId])).toEqual([['vitals', null, 'res_a']]);
    expect(JSON.parse(events[0].data)).toEqual({
      event: 'vitals',
      vitals: { residentId: 'res_a', deviceId: 'band-1', ts: new Date(t - 1000).toISOString(), receivedAt: new Date(t).toISOString(), hr: 72, spo2: 96, skinTemp: 33.2, battery: 80, worn: true },
    });

    // Within the period: held, and only the newest batch counts.
    await tapped.append([entry('res_a', 'band-1', [{ ts: t, receivedAt: t, hr: 75 }])]);
    await tapped.append([entry('res_a', 'band-1', [{ ts: t + 1, receivedAt: t + 1, hr: 77 }])]);
    source.flushVitals();
    expect(events).toHaveLength(1);

    // A new subscriber gets the latest vitals it may see at once.
    const late = recorder();
    await source.subscribe(late.sub, null);
    expect(late.events.map((e) => JSON.parse(e.data).vitals.hr)).toEqual([72]);
    const alertsOnly = recorder({ scopes: ['alerts:read'], residentIds: null });
    await source.subscribe(alertsOnly.sub, null);
    expect(alertsOnly.events).toHaveLength(0);
  });

  it('emits again after the period, carrying over fields the batch lacks, ignoring older data', async () => {
    let now = Date.now();
    source = new LiveEventSource(new MemoryAlerts(), { log, vitalsEveryMs: 5000, now: () => now });
    const { events, sub } = recorder();
    await source.subscribe(sub, null);
    const t = now;
    source.recordReadings([entry('res_a', 'band-1', [{ ts: t, receivedAt: t, hr: 70, battery: 50 }])]);
    source.flushVitals();
    now += 5000;
    source.recordReadings([entry('res_a', 'band-1', [{ ts: t - 60_000, receivedAt: now, hr: 99 }])]); // late data
    source.flushVitals();
    source.recordReadings([entry('res_a', 'band-1', [{ ts: t + 5000, receivedAt: now, hr: 80 }])]);
    source.flushVitals();
    expect(events).toHaveLength(2);
    expect(JSON.parse(events[1].data).vitals).toMatchObject({ hr: 80, battery: 50, ts: new Date(t + 5000).toISOString() });
  });
});

describe('GET /v1/events', () => {
  let app: FastifyInstance;
  let store: MemoryAlerts;
  let source: LiveEventSource;
  let base: string;
  const principals: Record<string, LivePrincipal> = {
    admin: ADMIN_PRINCIPAL,
    'vitals-b': { scopes: ['vitals:read'], residentIds: ['res_b'] },
    'alerts-only': { scopes: ['alerts:read'], residentIds: null },
    readings: { scopes: ['readings:read'], residentIds: null },
  };

  async function start(heartbeatMs = 60_000) {
    store = new MemoryAlerts();
    source = new LiveEventSource(store, { log, pollMs: 60_000, vitalsEveryMs: 10 });
    app = createHttpServer({ log, bodyLimit: 1 << 20 });
    // A state-changing route in a plugin registered before the live events, as the alerts API is.
    app.register(async (scope) => {
      scope.post('/v1/alerts/:id/ack', async (req) => {
        store.ack((req.params as { id: string }).id);
        return { ok: true };
      });
    });
    registerLiveEvents(app, source, {
      heartbeatMs,
      authenticate: async (token) => {
        const p = principals[token];
        if (!p) throw new VigilError('INVALID_TOKEN', 'unknown key');
        return p;
      },
    });
    await app.listen({ port: 0, host: '127.0.0.1' });
    base = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`;
  }
  afterEach(async () => app?.close());

  it('streams events to a Bearer key, pokes a poll on a state change, and sends heartbeats', async () => {
    await start(50);
    const sse = await connectSse(`${base}/v1/events`, { authorization: 'Bearer admin' });
    expect(sse.status).toBe(200);
    expect(sse.headers.get('content-type')).toBe('text/event-stream; charset=utf-8');
    expect(sse.headers.get('cache-control')).toBe('no-cache, no-transform');
    await sse.waitForComment((c) => c === 'connected');
    store.open('alr_1');
    // Polls every minute: only the poke of the ack's answer makes these arrive now.
    const ack = await fetch(`${base}/v1/alerts/alr_1/ack`, { method: 'POST' });
    expect(ack.status).toBe(200);
    const opened = await sse.waitFor((m) => m.event === 'alert.opened', 2000);
    await sse.waitFor((m) => m.event === 'alert.acknowledged', 2000);
    expect(opened.id).toMatch(/^\d+-alr_1-opened$/);
    expect(sse.retry).toBe(3000);
    await sse.waitForComment((c) => c.startsWith('heartbeat '), 2000);
    sse.close();
    await until('unsubscribed', () => source.subscriberCount === 0);
  });

  it('takes ?access_token= and Last-Event-ID, filters by the principal, refuses a bad key', async () => {
    await start();
    const missing = await connectSse(`${base}/v1/events`);
    expect(missing.status).toBe(401);
    expect(JSON.parse(missing.text)).toMatchObject({ code: 'MISSING_TOKEN' });
    const wrong = await connectSse(`${base}/v1/events?access_token=nope`);
    expect(wrong.status).toBe(401);
    expect(JSON.parse(wrong.text)).toMatchObject({ code: 'INVALID_TOKEN' });
    expect((await connectSse(`${base}/v1/events`, { authorization: 'Bearer nope' })).status).toBe(401);
    const useless = await connectSse(`${base}/v1/events`, { authorization: 'Bearer readings' });
    expect(useless.status).toBe(403);
    expect(JSON.parse(useless.text)).toMatchObject({ code: 'FORBIDDEN' });

    const vitalsB = await connectSse(`${base}/v1/events?access_token=vitals-b`);
    expect(vitalsB.status).toBe(200);
    const admin = await connectSse(`${base}/v1/events?access_token=admin`);
    const alertsOnly = await connectSse(`${base}/v1/events`, { authorization: 'Bearer alerts-only' });
    source.recordReadings([entry('res_a', 'band-1', [{ ts: Date.now(), receivedAt: Date.now(), hr: 61 }])]);
    source.recordReadings([entry('res_b', 'band-2', [{ ts: Date.now(), receivedAt: Date.now(), hr: 62 }])]);
    store.open('alr_b', 'res_b');
    source.poke();
    await admin.waitFor((m) => m.event === 'alert.opened');
    await admin.waitFor((m) => m.event === 'vitals' && JSON.parse(m.data).vitals.residentId === 'res_a');
    await vitalsB.waitFor((m) => m.event === 'vitals');
    await new Promise((r) => setTimeout(r, 50));
    expect(vitalsB.messages.map((m) => [m.event, JSON.parse(m.data).vitals?.residentId])).toEqual([['vitals', 'res_b']]);

    // Resume: what followed the id, then live.
    store.ack('alr_b');
    source.poke();
    const acked = await admin.waitFor((m) => m.event === 'alert.acknowledged');
    // Who acknowledged is personal: only for keys with residents:read (as in the alerts API).
    expect(JSON.parse(acked.data).alert).toMatchObject({ acknowledgedBy: 'nurse', ackNote: null });
    const pseudonymous = await alertsOnly.waitFor((m) => m.event === 'alert.acknowledged');
    expect(pseudonymous.id).toBe(acked.id);
    expect(JSON.parse(pseudonymous.data).alert).toMatchObject({ id: 'alr_b', state: 'acknowledged', acknowledgedBy: null });
    expect(alertsOnly.messages.some((m) => m.event === 'vitals')).toBe(false);
    const opened = admin.messages.find((m) => m.event === 'alert.opened')!;
    const resumed = await connectSse(`${base}/v1/events?access_token=admin`, { 'last-event-id': opened.id! });
    const replayed = await resumed.waitFor((m) => m.event === 'alert.acknowledged');
    expect(replayed.id).toBe(acked.id);
    expect(resumed.messages.filter((m) => m.event.startsWith('alert.'))).toHaveLength(1);
    const reset = await connectSse(`${base}/v1/events?access_token=admin&lastEventId=1-alr_zz-opened`);
    await reset.waitFor((m) => m.event === 'reset');
    for (const c of [vitalsB, admin, alertsOnly, resumed, reset]) c.close();
  });

  it('ends open streams when the server closes, without waiting for the clients', async () => {
    await start();
    const sse = await connectSse(`${base}/v1/events`, { authorization: 'Bearer admin' });
    await sse.waitForComment((c) => c === 'connected');
    const started = Date.now();
    await app.close();
    await sse.ended;
    expect(Date.now() - started).toBeLessThan(2000);
  });

  it('answers 503 when the store cannot be read to start', async () => {
    await start();
    store.failing = true;
    const res = await connectSse(`${base}/v1/events`, { authorization: 'Bearer admin' });
    expect(res.status).toBe(503);
    store.failing = false;
    const ok = await connectSse(`${base}/v1/events`, { authorization: 'Bearer admin' });
    expect(ok.status).toBe(200);
    ok.close();
  });
});

describe('SSE framing', () => {
  it('frames an event so that a parser reads it back; vitals carry no id', () => {
    const got: SseMessage[] = [];
    const parser = new SseParser((m) => got.push(m));
    const alert: LiveEvent = { id: '1-alr_1-opened', type: 'alert.opened', residentId: 'r', at: 1, data: JSON.stringify({ note: 'two\nlines' }) };
    const vitals: LiveEvent = { id: null, type: 'vitals', residentId: 'r', at: 1, data: '{}' };
    const text = sseFrame(alert) + ': comment\n\n' + sseFrame(vitals);
    for (const ch of text) parser.push(ch); // split anywhere
    expect(got).toEqual([
      { id: '1-alr_1-opened', event: 'alert.opened', data: '{"note":"two\\nlines"}' },
      { id: null, event: 'vitals', data: '{}' },
    ]);
  });
});
