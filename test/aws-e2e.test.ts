/**
 * The whole pipeline on the AWS backends (DESIGN §2, "the original design"): Kinesis stream,
 * DynamoDB store and S3 archive, on kinesalite, dynalite and s3rver started in this process,
 * with the real AWS SDK v3; the warehouse on PostgreSQL when it runs here (Redshift speaks its
 * protocol), else DuckDB; MQTT ingest next to HTTP when Mosquitto runs. Register, ingest, alerts
 * (an SOS, sustained tachycardia), the signed webhook, warehouse rows and vitals through the API,
 * the archive objects in S3, each front door followed to every sink (as on the other combinations,
 * e2e.test.ts), and a replay of every group from TRIM_HORIZON that changes nothing.
 */
import { createHmac } from 'node:crypto';
import { DescribeStreamSummaryCommand, KinesisClient, ListShardsCommand, MergeShardsCommand, SplitShardCommand } from '@aws-sdk/client-kinesis';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Vigil } from '../src/app.js';
import { partitionOf } from '../src/stream/partitioner.js';
import { compareSequences } from '../src/stream/types.js';
import { partitionHashKey } from '../src/stream/kinesis/kinesis-records.js';
import { serviceUp } from '../src/testing/services.js';
import {
  ADMIN_KEY, api, awsEmulators, followToEverySink, mqttFrontDoor, readArchive, reading, readingKey, registerResident, startTestVigil, waitFor, webhookReceiver, type Ingest,
} from './helpers.js';

/** A PostgreSQL schema for the warehouse, dropped by `cleanup`; null when PostgreSQL is not running. */
async function postgresWarehouse(): Promise<{ overrides: Record<string, unknown>; cleanup(): Promise<void> } | null> {
  if (!(await serviceUp('postgres'))) return null;
  const { default: pg } = await import('pg');
  const schema = `vigil_aws_e2e_${Math.random().toString(36).slice(2, 10)}`;
  const run = async (sql: string) => {
    const c = new pg.Client({ connectionString: 'postgres://postgres@127.0.0.1:5432/test' });
    await c.connect();
    try {
      await c.query(sql);
    } finally {
      await c.end();
    }
  };
  await run(`CREATE SCHEMA ${schema}`);
  return {
    overrides: { 'warehouse.backend': 'postgres', 'warehouse.postgresUrl': `postgres://postgres@127.0.0.1:5432/test?options=-c%20search_path%3D${schema}` },
    cleanup: () => run(`DROP SCHEMA ${schema} CASCADE`),
  };
}

// MQTT is a front door here too (docs/deploy.md (c)); without Mosquitto only HTTP is followed.
const mqttUp = await serviceUp('mosquitto');
const ingests: Ingest[] = ['http', ...(mqttUp ? (['mqtt'] as const) : [])];

describe('pipeline end to end on the AWS backends (Kinesis, DynamoDB, S3 on their emulators)', () => {
  let aws: Awaited<ReturnType<typeof awsEmulators>>;
  let warehouse: Awaited<ReturnType<typeof postgresWarehouse>>;
  let vigil: Vigil;
  let mqtt: Awaited<ReturnType<typeof mqttFrontDoor>> | undefined;
  let hooks: Awaited<ReturnType<typeof webhookReceiver>>;
  let base: string;
  // Event time on an hour boundary one to two hours ago, so minute buckets are exact.
  const t0 = Math.floor((Date.now() - 7_200_000) / 3_600_000) * 3_600_000;
  /** Every reading accepted, as deviceId:seq. */
  const accepted = new Set<string>();
  const ingest = async (band: { token: string }, body: unknown) => {
    const res = await api(base, 'POST', '/v1/readings', { token: band.token, body });
    expect(res.status).toBe(202);
    const readings = (Array.isArray((body as { readings?: unknown[] }).readings) ? (body as { readings: unknown[] }).readings : [body]) as { deviceId: string; seq: number }[];
    for (const r of readings) accepted.add(`${r.deviceId}:${r.seq}`);
    return res.body;
  };

  const archivedOnce = async () => {
    const got = await readArchive(vigil.config);
    if (!got) return undefined;
    const ids = got.lines.map((l) => readingKey(l.reading));
    return ids.length === accepted.size && new Set(ids).size === ids.length && ids.every((id) => accepted.has(id)) && got;
  };
  const groups = async () => (await api(base, 'GET', '/v1/admin/groups', { token: ADMIN_KEY })).body.groups as { name: string; lag: number; caughtUp: boolean; handledRecords: number }[];

  beforeAll(async () => {
    hooks = await webhookReceiver(1);
    aws = await awsEmulators();
    warehouse = await postgresWarehouse();
    if (mqttUp) mqtt = await mqttFrontDoor();
    vigil = await startTestVigil({ ...aws.overrides, ...warehouse?.overrides, ...mqtt?.overrides, 'stream.partitions': 4 });
    base = vigil.url;
  });
  afterAll(async () => {
    await vigil?.stop();
    await mqtt?.cleanup(...(vigil ? [vigil.config] : []));
    await hooks?.close();
    await warehouse?.cleanup();
    await aws?.cleanup();
  });

  it('raises an SOS, notifies the contact with a signed webhook (retrying a failure), and takes an ack', async () => {
    const band = await registerResident(base, 'aws-sos', hooks.url);
    expect(await ingest(band, { readings: Array.from({ length: 5 }, (_, i) => reading('aws-sos', i, t0 + i * 5000)) })).toEqual({ accepted: 5, duplicates: 0, rejected: [] });
    await ingest(band, reading('aws-sos', 5, t0 + 25_000, { events: ['SOS'] }));

    const alert = await waitFor('SOS alert', async () => (await api(base, 'GET', `/v1/alerts?residentId=${band.residentId}&type=SOS`, { token: ADMIN_KEY })).body.alerts?.[0]);
    expect(alert).toMatchObject({ type: 'SOS', severity: 'critical', state: 'open', deviceId: 'aws-sos', residentId: band.residentId, openedAt: new Date(t0 + 25_000).toISOString() });

    const delivery = await waitFor('webhook', async () => hooks.deliveries.find((d) => JSON.parse(d.body).alert.id === alert.id));
    expect(delivery.headers['x-vigil-signature']).toBe('sha256=' + createHmac('sha256', band.webhookSecret!).update(delivery.body).digest('hex'));
    expect(JSON.parse(delivery.body)).toMatchObject({ event: 'alert.opened', alert: { id: alert.id, type: 'SOS' } });
    const notes = await waitFor('notification sent', async () => {
      const res = await api(base, 'GET', `/v1/alerts/${alert.id}/notifications`, { token: ADMIN_KEY });
      return res.body.notifications?.[0]?.status === 'sent' && res.body.notifications;
    });
    expect(notes).toHaveLength(1);
    expect(notes[0]).toMatchObject({ channel: 'webhook', step: 0, status: 'sent', attempts: 2 });

    const ack = await api(base, 'POST', `/v1/alerts/${alert.id}/ack`, { token: ADMIN_KEY, body: { by: 'nurse Ana' } });
    expect(ack.status).toBe(200);
    expect(ack.body).toMatchObject({ state: 'acknowledged', acknowledgedBy: 'nurse Ana' });
  });

  it('opens HR_HIGH after 30 s of sustained tachycardia in event time and resolves it', async () => {
    const band = await registerResident(base, 'aws-hr');
    const hrs = [72, 75, 150, 152, 149, 151, 150, 153, 150, 148, 125, 118, 115, 112, 110, 108, 105, 100, 98];
    const readings = hrs.map((hr, i) => reading('aws-hr', i, t0 + i * 5000, { hr }));
    for (const part of [readings.slice(0, 6), readings.slice(6, 12), readings.slice(12)]) await ingest(band, { readings: part });
    const alert = await waitFor('HR_HIGH resolved', async () => {
      const res = await api(base, 'GET', `/v1/alerts?residentId=${band.residentId}&type=HR_HIGH`, { token: ADMIN_KEY });
      return res.body.alerts?.[0]?.state === 'resolved' && res.body.alerts[0];
    });
    expect(alert.openedAt).toBe(new Date(t0 + 2 * 5000).toISOString());
    expect(alert.resolvedAt).toBe(new Date(t0 + 17 * 5000).toISOString());
    expect((await api(base, 'GET', `/v1/alerts?residentId=${band.residentId}`, { token: ADMIN_KEY })).body.alerts).toHaveLength(1);
  });

  it('loads the warehouse exactly once and serves readings and per-minute vitals', async () => {
    const band = await registerResident(base, 'aws-wh');
    const readings = Array.from({ length: 24 }, (_, i) => reading('aws-wh', i, t0 + i * 5000, { hr: 60 + i, spo2: i % 2 ? 97 : 95, steps: 10 }));
    await ingest(band, { readings });
    // Kinesis has no lookup by key: the stream's own dedupe (seeded from the shards) finds them.
    expect(await ingest(band, { readings })).toEqual({ accepted: 0, duplicates: 24, rejected: [] });

    const rows = await waitFor('warehouse rows', async () => {
      const res = await api(base, 'GET', `/v1/residents/${band.residentId}/readings?from=${t0}&to=${t0 + 3_600_000}`, { token: ADMIN_KEY });
      return res.body.readings?.length === 24 && res.body.readings;
    });
    expect(rows.map((r: { seq: number }) => r.seq)).toEqual(Array.from({ length: 24 }, (_, i) => i));
    expect(rows[3]).toMatchObject({ deviceId: 'aws-wh', residentId: band.residentId, hr: 63, spo2: 97, steps: 10 });
    const vitals = await api(base, 'GET', `/v1/residents/${band.residentId}/vitals?from=${t0}&to=${t0 + 120_000}&step=1m`, { token: ADMIN_KEY });
    expect(vitals.status).toBe(200);
    expect(vitals.body.vitals).toHaveLength(2);
    expect(vitals.body.vitals[0]).toMatchObject({ hrAvg: 65.5, hrMin: 60, hrMax: 71, spo2Avg: 96, steps: 120, readings: 12 });
    expect(vitals.body.vitals[1]).toMatchObject({ hrAvg: 77.5, hrMin: 72, hrMax: 83, readings: 12 });
  });

  it('archives every accepted reading once in S3, under dt=/hour= objects named by partition and first sequence', async () => {
    const got = await waitFor('every reading archived once', archivedOnce, 30_000, 300);
    for (const key of got.keys) expect(key).toMatch(/^dt=\d{4}-\d{2}-\d{2}\/hour=\d{2}\/part-[0-3]-\d+\.ndjson\.gz$/);
    // An object holds one partition's records, in stream order from the sequence it is named by.
    for (const key of got.keys) {
      const [, partition, first] = /part-(\d+)-(\d+)\./.exec(key)!;
      const mine = got.lines.filter((l) => l.partition === Number(partition) && l.sequence === first);
      expect(mine.length).toBeGreaterThan(0);
    }
    expect(got.lines).toHaveLength(5 + 1 + 19 + 24);
  });

  it('keeps every reading once, in order, through a split and a merge of the running stream', async () => {
    const kinesis = new KinesisClient({ region: 'us-east-1', endpoint: String(aws.overrides['kinesis.endpoint']), requestHandler: new NodeHttpHandler() });
    const stream = String(aws.overrides['kinesis.streamName']);
    const reshard = async (send: () => Promise<unknown>) => {
      await send();
      await waitFor('stream ACTIVE', async () => (await kinesis.send(new DescribeStreamSummaryCommand({ StreamName: stream }))).StreamDescriptionSummary?.StreamStatus === 'ACTIVE');
    };
    const holding = async (key: bigint) => {
      const { Shards = [] } = await kinesis.send(new ListShardsCommand({ StreamName: stream }));
      return Shards.find((x) => !x.SequenceNumberRange?.EndingSequenceNumber && BigInt(x.HashKeyRange!.StartingHashKey!) <= key && key <= BigInt(x.HashKeyRange!.EndingHashKey!))!.ShardId!;
    };
    try {
      const band = await registerResident(base, 'aws-rs');
      const p = partitionOf('aws-rs', 4);
      const readings = Array.from({ length: 24 }, (_, i) => reading('aws-rs', i, t0 + i * 5000, { hr: 60 + i }));
      await ingest(band, { readings: readings.slice(0, 12) });
      // The band's shard split (its partition's key in the upper child); two others merged.
      const key = partitionHashKey(p, 4);
      const toSplit = await holding(key);
      await reshard(() => kinesis.send(new SplitShardCommand({ StreamName: stream, ShardToSplit: toSplit, NewStartingHashKey: (key - 2n ** 123n).toString() })));
      const [a, b] = p < 2 ? [2, 3] : [0, 1];
      const [lower, upper] = [await holding(partitionHashKey(a, 4)), await holding(partitionHashKey(b, 4))];
      await reshard(() => kinesis.send(new MergeShardsCommand({ StreamName: stream, ShardToMerge: lower, AdjacentShardToMerge: upper })));
      for (const part of [readings.slice(12, 18), readings.slice(18)]) await ingest(band, { readings: part });
      const rows = await waitFor('warehouse rows across the reshard', async () => {
        const res = await api(base, 'GET', `/v1/residents/${band.residentId}/readings?from=${t0}&to=${t0 + 3_600_000}`, { token: ADMIN_KEY });
        return res.body.readings?.length === 24 && res.body.readings;
      });
      expect(rows.map((r: { seq: number }) => r.seq)).toEqual(Array.from({ length: 24 }, (_, i) => i));
      const got = await waitFor('every reading archived once across the reshard', archivedOnce, 30_000, 300);
      const mine = got.lines.filter((l) => l.reading.deviceId === 'aws-rs');
      // In stream order (parent shard, then child), the band's readings are in the order it sent them.
      mine.sort((x, y) => compareSequences(x.sequence, y.sequence));
      expect(mine.map((l) => l.reading.seq)).toEqual(Array.from({ length: 24 }, (_, i) => i));
      expect(new Set(mine.map((l) => l.sequence.length > 129)).size).toBe(2); // read from the root shard and from its child
    } finally {
      kinesis.destroy();
    }
  });

  it.each(ingests)('follows readings sent over %s to an alert, warehouse rows and archive lines in S3, each once', async (ingest) => {
    for (const key of await followToEverySink(vigil, ingest, { deviceId: `aws-path-${ingest}`, t0, mqtt })) accepted.add(key);
    await waitFor('every accepted reading archived once', archivedOnce, 20_000, 300);
  });

  it('replays every group from TRIM_HORIZON without changing alerts, notifications, warehouse rows or archive lines', async () => {
    await waitFor('caught up before', async () => (await groups()).every((g) => g.lag === 0 && g.caughtUp));
    const alertsBefore = (await api(base, 'GET', '/v1/alerts?limit=1000', { token: ADMIN_KEY })).body.alerts;
    const deliveriesBefore = hooks.deliveries.length;
    const handledBefore = new Map((await groups()).map((g) => [g.name, g.handledRecords]));
    for (const group of ['alerts', 'warehouse', 'archive']) {
      expect((await api(base, 'POST', `/v1/admin/groups/${group}/replay`, { token: ADMIN_KEY, body: { from: 'TRIM_HORIZON' } })).status).toBe(202);
    }
    // The rewind shows as lag (Kinesis counts its backlog) until every group has read it all again.
    await new Promise((r) => setTimeout(r, 1000));
    // Every group read the whole stream again: a record per accepted request or MQTT message, 9
    // from the tests above and 2 per front door followed, at least.
    const records = 9 + 2 * ingests.length;
    await waitFor('caught up after the replay', async () =>
      (await groups()).every((g) => g.handledRecords - handledBefore.get(g.name)! >= records && g.lag === 0 && g.caughtUp),
    );
    await new Promise((r) => setTimeout(r, 800));
    const alertsAfter = (await api(base, 'GET', '/v1/alerts?limit=1000', { token: ADMIN_KEY })).body.alerts;
    expect(alertsAfter.map((a: { id: string; occurrences: number }) => [a.id, a.occurrences])).toEqual(alertsBefore.map((a: { id: string; occurrences: number }) => [a.id, a.occurrences]));
    expect(hooks.deliveries.length).toBe(deliveriesBefore);
    const wh = (await api(base, 'GET', '/v1/residents', { token: ADMIN_KEY })).body.residents.find((r: { name: string }) => r.name.endsWith('aws-wh'));
    expect((await api(base, 'GET', `/v1/residents/${wh.id}/readings?from=${t0}&to=${t0 + 3_600_000}`, { token: ADMIN_KEY })).body.readings).toHaveLength(24);
    const got = await waitFor('archive unchanged', archivedOnce, 10_000, 300);
    expect(got.lines).toHaveLength(accepted.size);
  });
});
