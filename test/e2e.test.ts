/**
 * End to end on each full combination of backends this machine can run: the embedded one (SQLite
 * stream and store, DuckDB, local archive) and the self-hosted one of docs/deploy.md (b) (NATS
 * JetStream, PostgreSQL store and warehouse, S3-compatible archive on s3rver); both with MQTT
 * ingest next to HTTP when Mosquitto runs. Register, ingest, alerts (device events and sustained
 * vitals), acknowledgement, signed webhooks through the outbox, warehouse rows and per-minute
 * vitals, archive objects, each front door followed to every sink, replay that changes nothing,
 * metrics and health. The AWS combination runs the same checks in aws-e2e.test.ts.
 */
import { createHmac } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Vigil } from '../src/app.js';
import {
  ADMIN_KEY, api, followToEverySink, mqttFrontDoor, readArchive, reading, registerResident, selfHosted, startTestVigil, waitFor, webhookReceiver, type Ingest,
} from './helpers.js';
import { serviceUp } from '../src/testing/services.js';

// Same code, same guarantees, whatever the engines: each combination runs every test below.
const engines = [
  { name: 'embedded (SQLite, DuckDB, local archive)', embedded: true, setup: async () => ({ overrides: {}, cleanup: async () => undefined }) },
  ...((await serviceUp('postgres')) && (await serviceUp('nats'))
    ? [{ name: 'self-hosted (NATS JetStream, PostgreSQL store and warehouse, S3 archive on s3rver)', embedded: false, setup: selfHosted }]
    : []),
];
// MQTT is a front door of every combination (docs/deploy.md); without Mosquitto only HTTP is followed.
const mqttUp = await serviceUp('mosquitto');
const ingests: Ingest[] = ['http', ...(mqttUp ? (['mqtt'] as const) : [])];

describe.each(engines)('pipeline end to end on $name', ({ setup, embedded }) => {
  let vigil: Vigil;
  let engine: Awaited<ReturnType<typeof selfHosted>>;
  let mqtt: Awaited<ReturnType<typeof mqttFrontDoor>> | undefined;
  let hooks: Awaited<ReturnType<typeof webhookReceiver>>;
  let base: string;
  // Event time on an hour boundary one to two hours ago, so minute and hour buckets are exact.
  const t0 = Math.floor((Date.now() - 7_200_000) / 3_600_000) * 3_600_000;

  beforeAll(async () => {
    hooks = await webhookReceiver(1);
    engine = await setup();
    if (mqttUp) mqtt = await mqttFrontDoor();
    vigil = await startTestVigil({ ...engine.overrides, ...mqtt?.overrides });
    base = vigil.url;
  });
  afterAll(async () => {
    await vigil?.stop();
    await mqtt?.cleanup(...(vigil ? [vigil.config] : []));
    await hooks?.close();
    await engine?.cleanup();
  });

  it('raises an SOS at once, notifies the contact with a signed webhook (retrying a failure), and takes an ack', async () => {
    const band = await registerResident(base, 'band-sos', hooks.url);
    const normal = Array.from({ length: 5 }, (_, i) => reading('band-sos', i, t0 + i * 5000));
    const first = await api(base, 'POST', '/v1/readings', { token: band.token, body: { readings: normal } });
    expect(first.status).toBe(202);
    expect(first.body).toEqual({ accepted: 5, duplicates: 0, rejected: [] });

    const sos = await api(base, 'POST', '/v1/readings', { token: band.token, body: reading('band-sos', 5, t0 + 25_000, { events: ['SOS'] }) });
    expect(sos.status).toBe(202);

    const alert = await waitFor('SOS alert', async () => {
      const res = await api(base, 'GET', `/v1/alerts?residentId=${band.residentId}&type=SOS`, { token: ADMIN_KEY });
      return res.body.alerts?.[0];
    });
    expect(alert).toMatchObject({ type: 'SOS', severity: 'critical', state: 'open', deviceId: 'band-sos', residentId: band.residentId });
    expect(alert.openedAt).toBe(new Date(t0 + 25_000).toISOString());
    expect(alert.delayMs).toBeGreaterThan(3_000_000); // the reading was an hour old

    // The receiver failed the first attempt; the outbox retried.
    const delivery = await waitFor('webhook', async () => hooks.deliveries.find((d) => JSON.parse(d.body).alert.id === alert.id));
    const expected = 'sha256=' + createHmac('sha256', band.webhookSecret!).update(delivery.body).digest('hex');
    expect(delivery.headers['x-vigil-signature']).toBe(expected);
    expect(delivery.headers['x-vigil-event']).toBe('alert.opened');
    expect(JSON.parse(delivery.body)).toMatchObject({ event: 'alert.opened', alert: { id: alert.id, type: 'SOS' } });

    const notes = await waitFor('notification sent', async () => {
      const res = await api(base, 'GET', `/v1/alerts/${alert.id}/notifications`, { token: ADMIN_KEY });
      return res.body.notifications?.[0]?.status === 'sent' && res.body.notifications;
    });
    expect(notes).toHaveLength(1);
    expect(notes[0]).toMatchObject({ channel: 'webhook', step: 0, status: 'sent', attempts: 2 });
    expect(JSON.stringify(notes)).not.toContain(band.webhookSecret);

    const ack = await api(base, 'POST', `/v1/alerts/${alert.id}/ack`, { token: ADMIN_KEY, body: { by: 'nurse Ana', note: 'called her, she is fine' } });
    expect(ack.status).toBe(200);
    expect(ack.body).toMatchObject({ state: 'acknowledged', acknowledgedBy: 'nurse Ana', ackNote: 'called her, she is fine' });
    const acked = await api(base, 'GET', `/v1/alerts?residentId=${band.residentId}&state=acknowledged`, { token: ADMIN_KEY });
    expect(acked.body.alerts.map((a: { id: string }) => a.id)).toEqual([alert.id]);

    // A second SOS while this one is unresolved updates it: one alert, one notification.
    await api(base, 'POST', '/v1/readings', { token: band.token, body: reading('band-sos', 6, t0 + 30_000, { events: ['SOS'] }) });
    await waitFor('recurrence', async () => (await api(base, 'GET', `/v1/alerts/${alert.id}`, { token: ADMIN_KEY })).body.occurrences === 2);
    const all = await api(base, 'GET', `/v1/alerts?residentId=${band.residentId}`, { token: ADMIN_KEY });
    expect(all.body.alerts).toHaveLength(1);
    expect(hooks.deliveries.filter((d) => JSON.parse(d.body).alert.id === alert.id)).toHaveLength(1);
  });

  it('opens HR_HIGH after 30 s of sustained tachycardia in event time and resolves it with hysteresis', async () => {
    const band = await registerResident(base, 'band-hr');
    const hrs = [72, 75, 150, 152, 149, 151, 150, 153, 150, 148, 125, 118, 115, 112, 110, 108, 105, 100, 98];
    const readings = hrs.map((hr, i) => reading('band-hr', i, t0 + i * 5000, { hr }));
    // Sent as three requests to cross request boundaries.
    for (const part of [readings.slice(0, 6), readings.slice(6, 12), readings.slice(12)]) {
      expect((await api(base, 'POST', '/v1/readings', { token: band.token, body: { readings: part } })).status).toBe(202);
    }
    const alert = await waitFor('HR_HIGH resolved', async () => {
      const res = await api(base, 'GET', `/v1/alerts?residentId=${band.residentId}&type=HR_HIGH`, { token: ADMIN_KEY });
      return res.body.alerts?.[0]?.state === 'resolved' && res.body.alerts[0];
    });
    expect(alert.openedAt).toBe(new Date(t0 + 2 * 5000).toISOString()); // first reading ≥ 131
    expect(alert.evidence).toMatchObject({ peak: 153, threshold: 131 });
    // Back to ≤ 120 from seq 11 (118); resolved 30 s later, at seq 17.
    expect(alert.resolvedAt).toBe(new Date(t0 + 17 * 5000).toISOString());
    const lows = await api(base, 'GET', `/v1/alerts?residentId=${band.residentId}`, { token: ADMIN_KEY });
    expect(lows.body.alerts).toHaveLength(1);
  });

  it('does not open SPO2_LOW for a dip shorter than 30 s', async () => {
    const band = await registerResident(base, 'band-dip');
    const spo2 = [97, 90, 89, 90, 89, 90, 96, 97, 97];
    await api(base, 'POST', '/v1/readings', { token: band.token, body: { readings: spo2.map((v, i) => reading('band-dip', i, t0 + i * 5000, { spo2: v })) } });
    await new Promise((r) => setTimeout(r, 1000));
    await waitFor('alerts caught up', async () => (await api(base, 'GET', '/v1/admin/groups', { token: ADMIN_KEY })).body.groups.every((g: { lag: number }) => g.lag === 0));
    const res = await api(base, 'GET', `/v1/alerts?residentId=${band.residentId}`, { token: ADMIN_KEY });
    expect(res.body.alerts).toEqual([]);
  });

  it('loads the warehouse exactly once, with per-minute vitals, and serves them', async () => {
    const band = await registerResident(base, 'band-wh');
    // 24 readings = 2 minutes; HR 60..83, SpO2 alternating 95/97.
    const readings = Array.from({ length: 24 }, (_, i) => reading('band-wh', i, t0 + i * 5000, { hr: 60 + i, spo2: i % 2 ? 97 : 95, steps: 10 }));
    await api(base, 'POST', '/v1/readings', { token: band.token, body: { readings } });
    // The same batch again: all duplicates, nothing new anywhere.
    const again = await api(base, 'POST', '/v1/readings', { token: band.token, body: { readings } });
    expect(again.body).toEqual({ accepted: 0, duplicates: 24, rejected: [] });

    const rows = await waitFor('warehouse rows', async () => {
      const res = await api(base, 'GET', `/v1/residents/${band.residentId}/readings?from=${t0}&to=${t0 + 3_600_000}`, { token: ADMIN_KEY });
      return res.body.readings?.length === 24 && res.body.readings;
    });
    expect(rows.map((r: { seq: number }) => r.seq)).toEqual(Array.from({ length: 24 }, (_, i) => i));
    expect(rows[3]).toMatchObject({ deviceId: 'band-wh', residentId: band.residentId, hr: 63, spo2: 97, steps: 10, worn: true });

    const page = await api(base, 'GET', `/v1/residents/${band.residentId}/readings?from=${t0}&to=${t0 + 3_600_000}&limit=10`, { token: ADMIN_KEY });
    expect(page.body.readings).toHaveLength(10);
    const page2 = await api(base, 'GET', `/v1/residents/${band.residentId}/readings?from=${t0}&to=${t0 + 3_600_000}&limit=10&cursor=${page.body.next}`, { token: ADMIN_KEY });
    expect(page2.body.readings.map((r: { seq: number }) => r.seq)).toEqual(Array.from({ length: 10 }, (_, i) => i + 10));

    const vitals = await api(base, 'GET', `/v1/residents/${band.residentId}/vitals?from=${t0}&to=${t0 + 120_000}&step=1m`, { token: ADMIN_KEY });
    expect(vitals.status).toBe(200);
    expect(vitals.body.vitals).toHaveLength(2);
    expect(vitals.body.vitals[0]).toMatchObject({ hrAvg: 65.5, hrMin: 60, hrMax: 71, spo2Avg: 96, spo2Min: 95, steps: 120, readings: 12 });
    expect(vitals.body.vitals[1]).toMatchObject({ hrAvg: 77.5, hrMin: 72, hrMax: 83, readings: 12 });
    const hourly = await api(base, 'GET', `/v1/residents/${band.residentId}/vitals?from=${t0}&to=${t0 + 120_000}&step=1h`, { token: ADMIN_KEY });
    expect(hourly.body.vitals[0]).toMatchObject({ hrAvg: 71.5, hrMin: 60, hrMax: 83, readings: 24 });
  });

  it('archives every reading under dt=/hour= objects named by partition and first sequence', async () => {
    const band = await registerResident(base, 'band-arc');
    await api(base, 'POST', '/v1/readings', { token: band.token, body: { readings: Array.from({ length: 7 }, (_, i) => reading('band-arc', i, t0 + i * 5000)) } });
    const got = await waitFor('archived readings', async () => {
      const all = await readArchive(vigil.config);
      const mine = all?.lines.filter((l) => l.reading.deviceId === 'band-arc');
      return mine?.length === 7 && { keys: all!.keys, mine };
    });
    for (const key of got.keys) expect(key).toMatch(/^dt=\d{4}-\d{2}-\d{2}\/hour=\d{2}\/part-\d+-\d+\.ndjson\.gz$/);
    expect(got.mine.map((l) => l.reading.seq).sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 5, 6]);
  });

  it.each(ingests)('follows readings sent over %s to an alert, warehouse rows and archive lines, each once', async (ingest) => {
    await followToEverySink(vigil, ingest, { deviceId: `band-path-${ingest}`, t0, mqtt });
  });

  it('replays every group from TRIM_HORIZON without duplicating rows, alerts, notifications or archive lines', async () => {
    const before = {
      alerts: (await api(base, 'GET', '/v1/alerts?limit=1000', { token: ADMIN_KEY })).body.alerts.length,
      deliveries: hooks.deliveries.length,
    };
    for (const group of ['alerts', 'warehouse', 'archive']) {
      const res = await api(base, 'POST', `/v1/admin/groups/${group}/replay`, { token: ADMIN_KEY, body: { from: 'TRIM_HORIZON' } });
      expect(res.status).toBe(202);
    }
    await new Promise((r) => setTimeout(r, 1500));
    await waitFor('caught up', async () => (await api(base, 'GET', '/v1/admin/groups', { token: ADMIN_KEY })).body.groups.every((g: { lag: number; caughtUp: boolean }) => g.lag === 0 && g.caughtUp));
    await new Promise((r) => setTimeout(r, 800));
    expect((await api(base, 'GET', '/v1/alerts?limit=1000', { token: ADMIN_KEY })).body.alerts.length).toBe(before.alerts);
    expect(hooks.deliveries.length).toBe(before.deliveries);
    const wh = await api(base, 'GET', `/v1/residents/${(await api(base, 'GET', '/v1/residents', { token: ADMIN_KEY })).body.residents.find((r: { name: string }) => r.name.endsWith('band-wh')).id}/readings?from=${t0}&to=${t0 + 3_600_000}`, { token: ADMIN_KEY });
    expect(wh.body.readings).toHaveLength(24);
    const archived = await waitFor('archive readable', () => readArchive(vigil.config));
    expect(archived.lines.filter((l) => l.reading.deviceId === 'band-arc')).toHaveLength(7);
    // The readings followed from each front door (MQTT too) were replayed, and are still there once.
    for (const ingest of ingests) expect(archived.lines.filter((l) => l.reading.deviceId === `band-path-${ingest}`)).toHaveLength(5);
  });

  // Group commit is the embedded log writer's; JetStream acknowledges each publish itself.
  it.runIf(embedded)('group-commits concurrent requests: many requests per fsync, every one answered after it', async () => {
    const bands = await Promise.all(Array.from({ length: 8 }, (_, i) => registerResident(base, `band-gc-${i}`)));
    const commits = async () => Number(/vigil_stream_commit_requests_count (\d+)/.exec((await api(base, 'GET', '/metrics')).body)![1]);
    const before = await commits();
    const requests = bands.flatMap((b) => Array.from({ length: 16 }, (_, i) => api(base, 'POST', '/v1/readings', { token: b.token, body: reading(b.deviceId, i, t0 + i * 5000) })));
    const answers = await Promise.all(requests);
    expect(answers.every((a) => a.status === 202 && a.body.accepted === 1)).toBe(true);
    const used = (await commits()) - before;
    expect(used).toBeGreaterThan(0);
    // Requests that arrive while a commit is fsync'ing share the next one.
    expect(used).toBeLessThan(answers.length);
  });

  it('serves health and Prometheus metrics', async () => {
    const health = await api(base, 'GET', '/healthz');
    expect(health.status).toBe(200);
    expect(health.body.groups.map((g: { name: string }) => g.name).sort()).toEqual(['alerts', 'archive', 'warehouse']);
    const metrics = await api(base, 'GET', '/metrics');
    expect(metrics.body).toMatch(/vigil_readings_accepted_total \d+/);
    expect(metrics.body).toMatch(/vigil_stream_commit_readings_bucket/);
    expect(metrics.body).toMatch(/vigil_group_lag_records\{group="warehouse",partition="0"\} \d+/);
    expect(metrics.body).toMatch(/vigil_alerts_open \d+/);
    // The one process holds every partition of each group (8 by default) once it has its leases,
    // and reports each group thread's own memory (and, embedded, DuckDB's).
    await waitFor('partitions owned and group heaps reported', async () => {
      const text = (await api(base, 'GET', '/metrics')).body as string;
      const gauge = (name: string, g: string) => Number(new RegExp(`^${name}\\{group="${g}"\\} (\\d+)$`, 'm').exec(text)?.[1]);
      return ['alerts', 'warehouse', 'archive'].every(
        (g) =>
          gauge('vigil_group_partitions_owned', g) === 8 &&
          gauge('vigil_group_heap_used_bytes', g) > 1e6 &&
          gauge('vigil_group_heap_total_bytes', g) >= gauge('vigil_group_heap_used_bytes', g) &&
          gauge('vigil_group_external_bytes', g) >= 0,
        // DuckDB counts 0 until it holds something: present is what this checks; a warehouse on
        // a server (PostgreSQL) holds nothing in this process and has no series.
      ) && (embedded ? gauge('vigil_group_sink_memory_bytes', 'warehouse') >= 0 : !text.includes('vigil_group_sink_memory_bytes{'));
    }, 10_000);
  });
});
