/**
 * The third-party API end to end on the embedded backends (SQLite store, DuckDB warehouse):
 * API keys, scopes and resident limits on every route (a table of routes × keys), alert
 * pagination, CSV, rate limits, revocation, and the OpenAPI document.
 */
import SwaggerParser from '@apidevtools/swagger-parser';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startVigil, type Vigil } from '../src/app.js';
import { loadConfig } from '../src/core/config.js';
import { createLogger } from '../src/core/logger.js';
import { SCOPES, type Scope } from '../src/api/principal.js';
import type { AlertChange } from '../src/store/types.js';
import { ADMIN_KEY, api, reading, registerResident, startTestVigil, tempDir, waitFor, type ApiResponse } from './helpers.js';

const MINUTE = 60_000;

/** Alerts put straight into the store, under a lease of a group of their own (no detector involved). */
async function putAlerts(vigil: Vigil, alerts: { id: string; residentId: string; type: string; openedAt: number }[]): Promise<void> {
  const lease = (await vigil.store.acquireLease('test-alerts', 0, 'test', 60_000, Date.now()))!;
  const changes: AlertChange[] = alerts.map((a) => ({
    kind: 'raise',
    alert: { ...a, deviceId: 'band-x', severity: 'high', detectedAt: a.openedAt, delayMs: null, evidence: { note: 'a, "quoted" value', n: 1 } },
  }));
  await vigil.store.commitAlertBatch(changes, () => [], {
    group: 'test-alerts',
    partition: 0,
    sequence: String(Date.now()),
    snapshot: null,
    fence: { owner: lease.owner, epoch: lease.epoch },
  });
}

async function createKey(base: string, body: { name: string; scopes: string[]; residentIds?: string[] | null }, token = ADMIN_KEY) {
  const res = await api(base, 'POST', '/v1/api-keys', { token, body });
  if (res.status !== 201) throw new Error(`api key: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body as { id: string; key: string; scopes: string[]; residentIds: string[] | null };
}

function expectProblem(res: ApiResponse, status: number, code: string): void {
  expect({ status: res.status, code: res.body?.code }).toEqual({ status, code });
  expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  expect(res.body).toMatchObject({ type: expect.stringMatching(/^https:\/\/vigil\.dev\/problems\//), title: expect.any(String), detail: expect.any(String) });
}

/** Parses RFC 4180 CSV (quoted fields, doubled quotes, CRLF) into rows of fields. */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') (field += '"'), i++;
      else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') row.push(field), (field = '');
    else if (c === '\r' && text[i + 1] === '\n') {
      row.push(field), rows.push(row), (row = []), (field = ''), i++;
    } else field += c;
  }
  if (field !== '' || row.length) row.push(field), rows.push(row);
  return rows;
}

describe('third-party API', () => {
  let vigil: Vigil;
  let base: string;
  const now = Date.now();
  const t0 = now - 10 * MINUTE;
  let a: Awaited<ReturnType<typeof registerResident>>;
  let b: Awaited<ReturnType<typeof registerResident>>;
  /** One key per scope, named by it. */
  const keys = {} as Record<Scope, string>;
  /** Every scope, but only resident A. */
  let limited: { id: string; key: string };
  let revoked: { id: string; key: string };
  const alertOf = { A: '', B: '' };

  beforeAll(async () => {
    vigil = await startTestVigil();
    base = vigil.url;
    a = await registerResident(base, 'band-a');
    b = await registerResident(base, 'band-b');
    const readingsA = Array.from({ length: 12 }, (_, i) =>
      reading('band-a', i, t0 + i * 30_000, { battery: 90 - i, charging: i === 11, ...(i === 3 && { location: { lat: 48.85, lon: 2.35, accuracyM: 10 }, hr: 400 }) }),
    );
    expect((await api(base, 'POST', '/v1/readings', { token: a.token, body: { readings: readingsA } })).status).toBe(202);
    const readingsB = Array.from({ length: 3 }, (_, i) => reading('band-b', i, t0 + i * 30_000));
    expect((await api(base, 'POST', '/v1/readings', { token: b.token, body: { readings: readingsB } })).status).toBe(202);

    // Five alerts of A (one about its band), three of B, at distinct times; two share one to test the id tie-break.
    const alerts = [
      ...['SOS', 'FALL', 'HR_HIGH', 'SPO2_LOW', 'BATTERY_LOW'].map((type, i) => ({ id: `alr-a${i}`, residentId: a.residentId, type, openedAt: t0 + i * MINUTE })),
      ...['SOS', 'FALL', 'HR_LOW'].map((type, i) => ({ id: `alr-b${i}`, residentId: b.residentId, type, openedAt: t0 + (i === 2 ? 1 : i) * MINUTE })),
    ];
    await putAlerts(vigil, alerts);
    alertOf.A = 'alr-a0';
    alertOf.B = 'alr-b0';

    for (const scope of SCOPES) keys[scope] = (await createKey(base, { name: `only ${scope}`, scopes: [scope] })).key;
    limited = await createKey(base, { name: 'care home A', scopes: [...SCOPES], residentIds: [a.residentId] });
    revoked = await createKey(base, { name: 'old app', scopes: [...SCOPES] });
    expect((await api(base, 'DELETE', `/v1/api-keys/${revoked.id}`, { token: ADMIN_KEY })).status).toBe(204);

    // The warehouse has loaded both residents' readings.
    for (const r of [a, b]) {
      await waitFor(`readings of ${r.deviceId}`, async () => {
        const res = await api(base, 'GET', `/v1/residents/${r.residentId}/readings?from=${t0 - 1}`, { token: ADMIN_KEY });
        return res.body.readings?.length === (r === a ? 12 : 3);
      });
    }
  });
  afterAll(async () => {
    await vigil?.stop();
  });

  interface RouteCase {
    route: string;
    scope: Scope | 'any';
    method: 'GET' | 'POST';
    /** The path for a request about resident A or B (the same for routes about no resident). */
    path: (who: 'A' | 'B') => string;
    body?: unknown;
    /** Whether the request is about one resident (so a key limited to A is refused for B). */
    aboutResident: boolean;
    ok: number;
  }
  const residentOf = (who: 'A' | 'B') => (who === 'A' ? a : b).residentId;
  const routes: RouteCase[] = [
    { route: 'GET readings', scope: 'readings:read', method: 'GET', path: (w) => `/v1/residents/${residentOf(w)}/readings?from=${t0 - 1}`, aboutResident: true, ok: 200 },
    { route: 'GET vitals', scope: 'vitals:read', method: 'GET', path: (w) => `/v1/residents/${residentOf(w)}/vitals?step=15m`, aboutResident: true, ok: 200 },
    { route: 'GET sleep', scope: 'sleep:read', method: 'GET', path: (w) => `/v1/residents/${residentOf(w)}/sleep`, aboutResident: true, ok: 200 },
    { route: 'GET activity', scope: 'activity:read', method: 'GET', path: (w) => `/v1/residents/${residentOf(w)}/activity`, aboutResident: true, ok: 200 },
    { route: 'GET device-status', scope: 'alerts:read', method: 'GET', path: (w) => `/v1/residents/${residentOf(w)}/device-status`, aboutResident: true, ok: 200 },
    { route: 'GET alerts of a resident', scope: 'alerts:read', method: 'GET', path: (w) => `/v1/alerts?residentId=${residentOf(w)}`, aboutResident: true, ok: 200 },
    { route: 'GET alert', scope: 'alerts:read', method: 'GET', path: (w) => `/v1/alerts/${alertOf[w]}`, aboutResident: true, ok: 200 },
    { route: 'GET alert notifications', scope: 'alerts:read', method: 'GET', path: (w) => `/v1/alerts/${alertOf[w]}/notifications`, aboutResident: true, ok: 200 },
    { route: 'POST alert ack', scope: 'alerts:ack', method: 'POST', path: (w) => `/v1/alerts/${alertOf[w]}/ack`, body: { by: 'partner app' }, aboutResident: true, ok: 200 },
    { route: 'GET alerts', scope: 'alerts:read', method: 'GET', path: () => '/v1/alerts', aboutResident: false, ok: 200 },
    { route: 'GET residents', scope: 'any', method: 'GET', path: () => '/v1/residents', aboutResident: false, ok: 200 },
    { route: 'GET overview', scope: 'any', method: 'GET', path: () => '/v1/overview', aboutResident: false, ok: 200 },
    { route: 'GET whoami', scope: 'any', method: 'GET', path: () => '/v1/whoami', aboutResident: false, ok: 200 },
    { route: 'GET api-keys', scope: 'admin', method: 'GET', path: () => '/v1/api-keys', aboutResident: false, ok: 200 },
    {
      route: 'POST api-keys',
      scope: 'admin',
      method: 'POST',
      path: () => '/v1/api-keys',
      body: { name: 'made by a key', scopes: ['vitals:read'], residentIds: ['__A__'] },
      aboutResident: false,
      ok: 201,
    },
  ];
  const call = (r: RouteCase, token: string, who: 'A' | 'B') =>
    api(base, r.method, r.path(who), { token, ...(r.body !== undefined && { body: JSON.parse(JSON.stringify(r.body).replace('__A__', a.residentId)) }) });

  describe.each(routes)('$route (scope $scope)', (r) => {
    it.each(SCOPES.map((s) => [s]))('with a key of scope %s: allowed only with the scope', async (scope) => {
      const res = await call(r, keys[scope], 'A');
      if (r.scope === 'any' || scope === r.scope || scope === 'admin') expect(res.status, JSON.stringify(res.body)).toBe(r.ok);
      else {
        expectProblem(res, 403, 'FORBIDDEN');
        expect(res.body.scope).toBe(r.scope);
      }
    });

    it('with the admin key: allowed', async () => {
      for (const who of ['A', 'B'] as const) expect((await call(r, ADMIN_KEY, who)).status).toBe(r.ok);
    });

    it('with a key limited to resident A: allowed for A, 403 for B', async () => {
      expect((await call(r, limited.key, 'A')).status).toBe(r.ok);
      const other = await call(r, limited.key, 'B');
      if (r.aboutResident) {
        expectProblem(other, 403, 'FORBIDDEN');
        expect(other.body.residentId).toBe(b.residentId);
      } else expect(other.status).toBe(r.ok);
    });

    it('with a revoked key, an unknown key or none: 401', async () => {
      expectProblem(await call(r, revoked.key, 'A'), 401, 'INVALID_TOKEN');
      expectProblem(await call(r, `vkey_${'x'.repeat(43)}`, 'A'), 401, 'INVALID_TOKEN');
      expectProblem(await api(base, r.method, r.path('A')), 401, 'MISSING_TOKEN');
    });
  });

  it('GET /v1/overview: a card per resident the key may see, each part only with its scope', async () => {
    const overview = async (token: string) => {
      const res = await api(base, 'GET', '/v1/overview', { token });
      expect(res.status).toBe(200);
      return new Map((res.body.residents as { residentId: string }[]).map((c) => [c.residentId, c as Record<string, any>]));
    };
    const all = await overview(ADMIN_KEY);
    expect([...all.keys()].sort()).toEqual([a.residentId, b.residentId].sort());
    const cardA = all.get(a.residentId)!;
    // The newest reading of A is its 12th: battery 79, charging.
    expect(cardA.name).toEqual(expect.any(String));
    expect(cardA.lastReading).toMatchObject({ deviceId: 'band-a', ts: new Date(t0 + 11 * 30_000).toISOString(), battery: 79, charging: true, hr: expect.any(Number) });
    expect(cardA.stepsToday).toEqual(expect.any(Number));
    // Unresolved alerts only (acknowledged ones stay until resolved), most severe then oldest first.
    const unresolved = (await api(base, 'GET', `/v1/alerts?residentId=${a.residentId}`, { token: ADMIN_KEY })).body.alerts.filter((x: { state: string }) => x.state !== 'resolved');
    expect(cardA.alerts.map((x: { id: string }) => x.id).sort()).toEqual(unresolved.map((x: { id: string }) => x.id).sort());
    const opened = cardA.alerts.map((x: { openedAt: string }) => x.openedAt);
    expect(opened).toEqual([...opened].sort());

    // Vitals only: no name, no band state, no alerts, steps or sleep.
    const vitalsOnly = (await overview(keys['vitals:read'])).get(a.residentId)!;
    expect(vitalsOnly).toMatchObject({ name: null, alerts: null, stepsToday: null, lastNight: null });
    expect(vitalsOnly.lastReading).toMatchObject({ hr: expect.any(Number), battery: null, worn: null, charging: null });
    // Names only: no reading at all.
    expect((await overview(keys['residents:read'])).get(a.residentId)).toMatchObject({ name: cardA.name, lastReading: null, alerts: null });
    // A key limited to A sees A alone.
    expect([...(await overview(limited.key)).keys()]).toEqual([a.residentId]);
  });

  it('GET /v1/whoami tells a key what it may do', async () => {
    expect((await api(base, 'GET', '/v1/whoami', { token: ADMIN_KEY })).body).toEqual({ kind: 'admin', id: 'admin', scopes: [...SCOPES], residentIds: null });
    expect((await api(base, 'GET', '/v1/whoami', { token: limited.key })).body).toMatchObject({ kind: 'apiKey', id: limited.id, scopes: [...SCOPES], residentIds: [a.residentId] });
  });

  it('keeps the admin routes admin-only: an API key, even of scope admin, is refused there', async () => {
    for (const token of [keys.admin, keys['residents:read']]) {
      expectProblem(await api(base, 'GET', `/v1/residents/${a.residentId}`, { token }), 401, 'INVALID_TOKEN');
      expectProblem(await api(base, 'POST', '/v1/residents', { token, body: { name: 'X' } }), 401, 'INVALID_TOKEN');
    }
    expectProblem(await api(base, 'POST', `/v1/alerts/${alertOf.B}/resolve`, { token: keys['alerts:ack'], body: { by: 'app' } }), 403, 'FORBIDDEN');
  });

  it('audits every 403: a counter per scope and reason in /metrics', async () => {
    const metrics = await fetch(`${base}/metrics`).then((r) => r.text());
    expect(metrics).toMatch(/vigil_api_forbidden_total\{scope="vitals:read",reason="scope"\} [1-9]/);
    expect(metrics).toMatch(/vigil_api_forbidden_total\{scope="alerts:read",reason="resident"\} [1-9]/);
  });

  it('limits lists to the key’s residents, and shows personal data only with residents:read', async () => {
    const residents = await api(base, 'GET', '/v1/residents', { token: limited.key });
    expect(residents.body.residents).toEqual([expect.objectContaining({ id: a.residentId, name: `Resident of band-a` })]);
    const pseudonymous = await api(base, 'GET', '/v1/residents', { token: keys['vitals:read'] });
    const ids = pseudonymous.body.residents.map((r: { id: string }) => r.id);
    expect(ids).toEqual(expect.arrayContaining([a.residentId, b.residentId]));
    for (const r of pseudonymous.body.residents) expect(Object.keys(r).sort()).toEqual(['createdAt', 'id', 'timezone']);
    const admin = await api(base, 'GET', '/v1/residents', { token: ADMIN_KEY });
    expect(admin.body.residents.find((r: { id: string }) => r.id === a.residentId)).toMatchObject({ name: 'Resident of band-a', timezone: 'Europe/Paris', birthDate: null });

    const alerts = await api(base, 'GET', '/v1/alerts?limit=1000', { token: limited.key });
    expect(new Set(alerts.body.alerts.map((x: { residentId: string }) => x.residentId))).toEqual(new Set([a.residentId]));

    // A reading's location only with residents:read.
    const path = `/v1/residents/${a.residentId}/readings?from=${t0 - 1}`;
    const located = (res: ApiResponse) => res.body.readings.find((x: { seq: number }) => x.seq === 3);
    expect(located(await api(base, 'GET', path, { token: keys['readings:read'] }))).toMatchObject({ lat: null, lon: null, accuracyM: null });
    expect(located(await api(base, 'GET', path, { token: limited.key }))).toMatchObject({ lat: 48.85, lon: 2.35, accuracyM: 10 });
  });

  it('pages alerts with after/next, newest first, to the same list as one page', async () => {
    for (const [token, expected] of [
      [ADMIN_KEY, null],
      [limited.key, 5],
    ] as const) {
      const all = (await api(base, 'GET', '/v1/alerts?limit=1000', { token })).body.alerts.map((x: { id: string }) => x.id);
      if (expected !== null) expect(all).toHaveLength(expected);
      const paged: string[] = [];
      let after: string | null = null;
      let pages = 0;
      do {
        const res: ApiResponse = await api(base, 'GET', `/v1/alerts?limit=2${after ? `&after=${after}` : ''}`, { token });
        expect(res.status).toBe(200);
        paged.push(...res.body.alerts.map((x: { id: string }) => x.id));
        after = res.body.next;
        pages++;
      } while (after);
      expect(paged).toEqual(all);
      expect(pages).toBe(Math.floor(all.length / 2) + 1);
    }
    const a2 = await api(base, 'GET', `/v1/alerts?residentId=${b.residentId}&limit=2`, { token: ADMIN_KEY });
    // alr-b1 and alr-b2 opened at t0 + 1 min: the larger id first.
    expect(a2.body.alerts.map((x: { id: string }) => x.id)).toEqual(['alr-b2', 'alr-b1']);
    const rest = await api(base, 'GET', `/v1/alerts?residentId=${b.residentId}&limit=2&after=${a2.body.next}`, { token: ADMIN_KEY });
    expect(rest.body).toMatchObject({ alerts: [expect.objectContaining({ id: 'alr-b0' })], next: null });
    expectProblem(await api(base, 'GET', '/v1/alerts?after=nonsense', { token: ADMIN_KEY }), 400, 'INVALID_BODY');
  });

  it('answers CSV for Accept: text/csv, RFC 4180 quoted', async () => {
    const csv = { accept: 'text/csv' };
    const vitals = await api(base, 'GET', `/v1/residents/${a.residentId}/vitals?from=${t0 - MINUTE}&step=1m`, { token: keys['vitals:read'], headers: csv });
    expect(vitals.status).toBe(200);
    expect(vitals.headers.get('content-type')).toMatch(/^text\/csv/);
    const rows = parseCsv(vitals.body as string);
    expect(rows[0]).toEqual(['bucket', 'hrAvg', 'hrMin', 'hrMax', 'spo2Avg', 'spo2Min', 'skinTempAvg', 'steps', 'readings']);
    expect(rows.slice(1).reduce((n, r) => n + Number(r[8]), 0)).toBe(12);
    expect((vitals.body as string).endsWith('\r\n')).toBe(true);

    // Free text with a comma, quotes and a newline, and one that would be a spreadsheet formula.
    await api(base, 'POST', `/v1/alerts/alr-a1/ack`, { token: ADMIN_KEY, body: { by: '=HYPERLINK("x")', note: 'on my way, "soon"\nok' } });
    const alerts = await api(base, 'GET', `/v1/alerts?residentId=${a.residentId}&limit=2`, { token: ADMIN_KEY, headers: { accept: 'text/csv, application/json;q=0.5' } });
    expect(alerts.headers.get('content-type')).toMatch(/^text\/csv/);
    expect(alerts.headers.get('link')).toMatch(/^<\/v1\/alerts\?residentId=[^>]*&limit=2&after=[^>]+>; rel="next"$/);
    const table = parseCsv(alerts.body as string);
    expect(table[0]).toEqual(['id', 'residentId', 'deviceId', 'type', 'severity', 'state', 'openedAt', 'detectedAt', 'delayMs', 'acknowledgedAt', 'acknowledgedBy', 'ackNote', 'resolvedAt', 'lastSeenAt', 'occurrences', 'evidence']);
    expect(table).toHaveLength(3);
    expect(table.every((r) => r.length === 16)).toBe(true);
    const all = (await api(base, 'GET', `/v1/alerts?residentId=${a.residentId}&limit=1000`, { token: ADMIN_KEY, headers: csv })).body as string;
    expect(all).toContain(`,"'=HYPERLINK(""x"")","on my way, ""soon""\nok",`);
    expect(all).toContain(`"{""note"":""a, \\""quoted\\"" value"",""n"":1}"`);
    const acked = parseCsv(all).find((r) => r[0] === 'alr-a1')!;
    expect(acked.slice(10, 12)).toEqual([`'=HYPERLINK("x")`, 'on my way, "soon"\nok']);
    // Without residents:read, who acknowledged and the note are empty.
    const plain = parseCsv((await api(base, 'GET', `/v1/alerts?residentId=${a.residentId}&limit=1000`, { token: keys['alerts:read'], headers: csv })).body as string);
    expect(plain.find((r) => r[0] === 'alr-a1')!.slice(10, 12)).toEqual(['', '']);

    const readings = await api(base, 'GET', `/v1/residents/${a.residentId}/readings?from=${t0 - 1}&limit=5`, { token: ADMIN_KEY, headers: csv });
    const rr = parseCsv(readings.body as string);
    expect(rr[0].slice(0, 4)).toEqual(['deviceId', 'seq', 'ts', 'receivedAt']);
    expect(rr).toHaveLength(6);
    expect(readings.headers.get('link')).toMatch(/cursor=/);
    expect(readings.body as string).toContain('"[""hr:out_of_range""]"');

    for (const [path, header] of [
      [`/v1/residents/${a.residentId}/sleep`, 'deviceId,night,start,end,totalSleepMin,efficiency,wasoMin,awakenings,onsetLatencyMin'],
      [`/v1/residents/${a.residentId}/activity`, 'deviceId,day,steps,activeMinutes,longestSedentaryMin,wornMinutes,final'],
    ]) {
      const res = await api(base, 'GET', path, { token: ADMIN_KEY, headers: csv });
      expect(res.headers.get('content-type')).toMatch(/^text\/csv/);
      expect((res.body as string).split('\r\n')[0]).toBe(header);
    }
    // JSON stays the default.
    expect((await api(base, 'GET', `/v1/residents/${a.residentId}/sleep`, { token: ADMIN_KEY })).body).toMatchObject({ sessions: [] });
  });

  it('reports device status from the newest reading and the open device alerts', async () => {
    const res = await api(base, 'GET', `/v1/residents/${a.residentId}/device-status`, { token: keys['alerts:read'] });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({
      residentId: a.residentId,
      devices: [{ deviceId: 'band-a', registeredAt: expect.any(String) }],
      lastReading: { deviceId: 'band-a', seq: 11, ts: new Date(t0 + 11 * 30_000).toISOString(), battery: 79, worn: true, charging: true },
      deviceAlerts: [expect.objectContaining({ id: 'alr-a4', type: 'BATTERY_LOW', state: 'open' })],
    });
    const fresh = await registerResident(base, 'band-new');
    expect((await api(base, 'GET', `/v1/residents/${fresh.residentId}/device-status`, { token: ADMIN_KEY })).body).toMatchObject({ lastReading: null, deviceAlerts: [] });
    expectProblem(await api(base, 'GET', '/v1/residents/res_nobody/device-status', { token: ADMIN_KEY }), 404, 'NOT_FOUND');
  });

  it('manages keys: shown once, listed without the secret, limited keys create only limited keys, revocation at once', async () => {
    const created = await api(base, 'POST', '/v1/api-keys', { token: ADMIN_KEY, body: { name: 'partner', scopes: ['vitals:read'] } });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ id: expect.stringMatching(/^key_/), key: expect.stringMatching(/^vkey_[A-Za-z0-9_-]{43}$/), residentIds: null, revokedAt: null });
    const listed = (await api(base, 'GET', '/v1/api-keys', { token: ADMIN_KEY })).body.apiKeys;
    const mine = listed.find((k: { id: string }) => k.id === created.body.id);
    expect(mine).toEqual({ id: created.body.id, name: 'partner', scopes: ['vitals:read'], residentIds: null, createdAt: expect.any(String), revokedAt: null });
    expect(JSON.stringify(listed)).not.toContain(created.body.key);
    expect(listed.find((k: { id: string }) => k.id === revoked.id).revokedAt).toEqual(expect.any(String));

    // A key limited to A cannot mint a key for every resident, nor for B.
    expectProblem(await api(base, 'POST', '/v1/api-keys', { token: limited.key, body: { name: 'x', scopes: ['admin'] } }), 403, 'FORBIDDEN');
    expectProblem(await api(base, 'POST', '/v1/api-keys', { token: limited.key, body: { name: 'x', scopes: ['admin'], residentIds: [b.residentId] } }), 403, 'FORBIDDEN');
    expectProblem(await api(base, 'POST', '/v1/api-keys', { token: ADMIN_KEY, body: { name: 'x', scopes: ['vitals:read'], residentIds: ['res_nobody'] } }), 400, 'INVALID_BODY');
    expectProblem(await api(base, 'POST', '/v1/api-keys', { token: ADMIN_KEY, body: { name: 'x', scopes: ['everything'] } }), 400, 'INVALID_BODY');
    expectProblem(await api(base, 'DELETE', '/v1/api-keys/key_nobody', { token: ADMIN_KEY }), 404, 'NOT_FOUND');

    const vitals = `/v1/residents/${a.residentId}/vitals`;
    expect((await api(base, 'GET', vitals, { token: created.body.key })).status).toBe(200);
    expect((await api(base, 'DELETE', `/v1/api-keys/${created.body.id}`, { token: ADMIN_KEY })).status).toBe(204);
    expectProblem(await api(base, 'GET', vitals, { token: created.body.key }), 401, 'INVALID_TOKEN');
  });

  it('refuses a key revoked by another process within 2 s', async () => {
    const key = await createKey(base, { name: 'elsewhere', scopes: ['vitals:read'] });
    const vitals = `/v1/residents/${a.residentId}/vitals`;
    expect((await api(base, 'GET', vitals, { token: key.key })).status).toBe(200);
    // Straight in the store, as `DELETE /v1/api-keys/…` on another process would: this one's cache is not told.
    const at = Date.now();
    await vigil.store.revokeApiKey(key.id, at);
    await waitFor('the revocation', async () => (await api(base, 'GET', vitals, { token: key.key })).status === 401, 5000, 50);
    expect(Date.now() - at).toBeLessThan(2_500);
  });

  it('serves a valid OpenAPI 3 document listing the routes, and the reference UI at /docs', async () => {
    const res = await api(base, 'GET', '/openapi.json');
    expect(res.status).toBe(200);
    const doc = res.body;
    expect(doc.openapi).toMatch(/^3\./);
    await SwaggerParser.validate(structuredClone(doc));
    const paths = Object.keys(doc.paths);
    for (const p of [
      '/v1/api-keys',
      '/v1/api-keys/{id}',
      '/v1/residents',
      '/v1/residents/{id}/readings',
      '/v1/residents/{id}/vitals',
      '/v1/residents/{id}/sleep',
      '/v1/residents/{id}/activity',
      '/v1/residents/{id}/device-status',
      '/v1/alerts',
      '/v1/alerts/{id}',
      '/v1/alerts/{id}/notifications',
      '/v1/alerts/{id}/ack',
      '/v1/readings',
    ]) {
      expect(paths).toContain(p);
    }
    expect(doc.components.securitySchemes.bearer).toMatchObject({ type: 'http', scheme: 'bearer' });
    const vitals = doc.paths['/v1/residents/{id}/vitals'].get;
    expect(vitals.tags).toEqual(['Warehouse']);
    expect(vitals.description).toContain('vitals:read');
    expect(vitals.parameters.map((p: { name: string }) => p.name)).toEqual(expect.arrayContaining(['id', 'from', 'to', 'step']));
    expect(Object.keys(vitals.responses['200'].content)).toEqual(['application/json', 'text/csv']);
    for (const status of ['401', '403', '429', 'default']) expect(vitals.responses[status].content['application/problem+json']).toBeDefined();
    expect(doc.paths['/healthz'].get.security).toEqual([]);
    expect(doc.security).toEqual([{ bearer: [] }]);

    const ui = await fetch(`${base}/docs`);
    expect(ui.status).toBe(200);
    expect(ui.headers.get('content-type')).toMatch(/text\/html/);
    expect(await ui.text()).toMatch(/swagger/i);
  });
});

describe('third-party API rate limit', () => {
  let vigil: Vigil;
  beforeAll(async () => {
    // No consumer groups: only the API runs (alerts come from the store).
    const config = loadConfig({ env: {}, file: undefined, overrides: { port: 0, dataDir: tempDir(), adminKey: ADMIN_KEY, 'log.level': 'warn', 'api.rateLimitPerMinute': 3 } });
    vigil = await startVigil({ config, log: createLogger('warn', 'test'), groups: [] });
  });
  afterAll(async () => {
    await vigil?.stop();
  });

  it('answers 429 problem+json with Retry-After past the key’s requests per minute; other keys and the admin key go on', async () => {
    const one = await createKey(vigil.url, { name: 'busy', scopes: ['alerts:read'] });
    const two = await createKey(vigil.url, { name: 'quiet', scopes: ['alerts:read'] });
    for (let i = 0; i < 3; i++) expect((await api(vigil.url, 'GET', '/v1/alerts', { token: one.key })).status).toBe(200);
    const limited = await api(vigil.url, 'GET', '/v1/alerts', { token: one.key });
    expectProblem(limited, 429, 'RATE_LIMITED');
    const retryAfter = Number(limited.headers.get('retry-after'));
    expect(retryAfter).toBeGreaterThan(0);
    expect(retryAfter).toBeLessThanOrEqual(60);
    expect(limited.body.detail).toContain(one.id);
    // A 403 counts too: the limit is per key, whatever it asks.
    expectProblem(await api(vigil.url, 'GET', '/v1/api-keys', { token: one.key }), 429, 'RATE_LIMITED');
    expect((await api(vigil.url, 'GET', '/v1/alerts', { token: two.key })).status).toBe(200);
    for (let i = 0; i < 10; i++) expect((await api(vigil.url, 'GET', '/v1/alerts', { token: ADMIN_KEY })).status).toBe(200);
  });
});
