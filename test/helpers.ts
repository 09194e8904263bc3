/** Shared pieces of the end-to-end tests: a Vigil on temp dirs, an API client, a webhook receiver. */
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { createServer as createTcpServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, relative, sep } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { expect } from 'vitest';
import { loadConfig, type Config, type SettingKey } from '../src/core/config.js';
import { startVigil, type Vigil } from '../src/app.js';
import { createLogger } from '../src/core/logger.js';

export const ADMIN_KEY = 'test-admin-key-0123456789';

export function tempDir(prefix = 'vigil-e2e-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export async function startTestVigil(overrides: Partial<Record<SettingKey, unknown>> = {}, dataDir = tempDir()): Promise<Vigil> {
  const config = loadConfig({
    env: {},
    file: undefined,
    overrides: {
      port: 0,
      dataDir,
      adminKey: ADMIN_KEY,
      'log.level': 'warn',
      'processor.leaseMs': 3000,
      'archive.flushIntervalMs': 300,
      'notify.retryBaseMs': 100,
      ...overrides,
    },
  });
  return startVigil({ config, log: createLogger('warn', 'test') });
}

export interface ApiResponse<T = any> {
  status: number;
  headers: Headers;
  body: T;
}

export async function api<T = any>(base: string, method: string, path: string, opts: { token?: string; body?: unknown; raw?: Buffer | string; headers?: Record<string, string> } = {}): Promise<ApiResponse<T>> {
  const headers: Record<string, string> = { ...opts.headers };
  if (opts.token !== undefined) headers.authorization = `Bearer ${opts.token}`;
  let body: string | Buffer | undefined;
  if (opts.raw !== undefined) body = opts.raw;
  else if (opts.body !== undefined) body = JSON.stringify(opts.body);
  if (body !== undefined) headers['content-type'] ??= 'application/json';
  const res = await fetch(base + path, { method, headers, body });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // keep text
  }
  return { status: res.status, headers: res.headers, body: parsed as T };
}

export const gzip = (value: unknown) => gzipSync(Buffer.from(JSON.stringify(value)));

/** Registers a resident with one device and (optionally) a webhook contact. */
export async function registerResident(base: string, deviceId: string, webhookUrl?: string) {
  const resident = await api(base, 'POST', '/v1/residents', { token: ADMIN_KEY, body: { name: `Resident of ${deviceId}`, timezone: 'Europe/Paris' } });
  if (resident.status !== 201) throw new Error(`resident: ${resident.status} ${JSON.stringify(resident.body)}`);
  const device = await api(base, 'POST', '/v1/devices', { token: ADMIN_KEY, body: { deviceId, residentId: resident.body.id } });
  if (device.status !== 201) throw new Error(`device: ${device.status} ${JSON.stringify(device.body)}`);
  let webhookSecret: string | undefined;
  if (webhookUrl) {
    const contact = await api(base, 'POST', `/v1/residents/${resident.body.id}/contacts`, { token: ADMIN_KEY, body: { name: 'Daughter', phone: '+33 6 12 34 56 78', webhookUrl } });
    if (contact.status !== 201) throw new Error(`contact: ${contact.status} ${JSON.stringify(contact.body)}`);
    webhookSecret = contact.body.webhookSecret;
  }
  return { residentId: resident.body.id as string, deviceId, token: device.body.token as string, webhookSecret };
}

export interface Delivery {
  headers: IncomingHttpHeaders;
  body: string;
}

/** A webhook receiver on 127.0.0.1 that records every delivery; `failFirst` answers 500 that many times. */
export async function webhookReceiver(failFirst = 0): Promise<{ url: string; deliveries: Delivery[]; close(): Promise<void> }> {
  const deliveries: Delivery[] = [];
  let failures = failFirst;
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (failures > 0) {
        failures--;
        res.writeHead(500).end('try later');
        return;
      }
      deliveries.push({ headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  return { url: `http://127.0.0.1:${port}/hook`, deliveries, close: () => new Promise((r) => server.close(() => r())) };
}

export async function waitFor<T>(what: string, probe: () => Promise<T | undefined | null | false>, timeoutMs = 20_000, everyMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** A plausible reading at event time `ts` (ms). */
export function reading(deviceId: string, seq: number, ts: number, extra: Record<string, unknown> = {}) {
  return { deviceId, seq, ts: new Date(ts).toISOString(), hr: 72, spo2: 97, skinTemp: 33.1, steps: 4, battery: 80, worn: true, charging: false, ...extra };
}

/** A port free on 127.0.0.1 right now (for child processes that must keep it across restarts). */
export async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const srv = createTcpServer().listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

/**
 * Settings that run Vigil on the real engines of the development machine: NATS JetStream for
 * the stream, PostgreSQL for store and warehouse, each in a fresh namespace; `cleanup` drops them.
 */
export async function realEngines(): Promise<{ overrides: Partial<Record<SettingKey, unknown>>; cleanup(): Promise<void> }> {
  const { default: pg } = await import('pg');
  const id = Math.random().toString(36).slice(2, 10);
  const schema = `vigil_e2e_${id}`;
  const admin = new pg.Client({ connectionString: 'postgres://postgres@127.0.0.1:5432/test' });
  await admin.connect();
  await admin.query(`CREATE SCHEMA ${schema}`);
  await admin.end();
  const url = `postgres://postgres@127.0.0.1:5432/test?options=-c%20search_path%3D${schema}`;
  const stream = `VIGIL_E2E_${id.toUpperCase()}`;
  return {
    overrides: { 'stream.backend': 'nats', 'nats.stream': stream, 'store.backend': 'postgres', 'store.postgresUrl': url, 'warehouse.backend': 'postgres', 'warehouse.postgresUrl': url },
    async cleanup() {
      const c = new pg.Client({ connectionString: 'postgres://postgres@127.0.0.1:5432/test' });
      await c.connect();
      await c.query(`DROP SCHEMA ${schema} CASCADE`);
      await c.end();
      const { connect } = await import('@nats-io/transport-node');
      const { jetstreamManager } = await import('@nats-io/jetstream');
      const nc = await connect({ servers: '127.0.0.1:4222' });
      const jsm = await jetstreamManager(nc);
      for (const name of [stream, `KV_${stream}_seen`]) await jsm.streams.delete(name).catch(() => undefined);
      await nc.close();
    },
  };
}

/**
 * An S3-compatible object store for the archive: s3rver, started in this process on 127.0.0.1,
 * holding one bucket named for this run. The SDK takes its credentials from the environment, set
 * here (s3rver checks them; child processes inherit them).
 */
export async function s3Emulator(): Promise<{ overrides: Partial<Record<SettingKey, unknown>>; s3: { endpoint: string; bucket: string }; cleanup(): Promise<void> }> {
  const { default: S3rver } = await import('s3rver');
  process.env.AWS_ACCESS_KEY_ID = 'S3RVER';
  process.env.AWS_SECRET_ACCESS_KEY = 'S3RVER';
  const directory = tempDir('vigil-s3rver-');
  const bucket = `vigil-e2e-${Math.random().toString(36).slice(2, 10)}`;
  const server = new S3rver({ port: 0, address: '127.0.0.1', silent: true, directory, configureBuckets: [{ name: bucket }] });
  const endpoint = `http://127.0.0.1:${(await server.run()).port}`;
  return {
    overrides: { 'archive.backend': 's3', 's3.endpoint': endpoint, 's3.forcePathStyle': true, 's3.bucket': bucket },
    s3: { endpoint, bucket },
    async cleanup() {
      await server.close();
      rmSync(directory, { recursive: true, force: true });
    },
  };
}

/**
 * The self-hosted combination of docs/deploy.md (b): NATS JetStream, PostgreSQL store and
 * warehouse (realEngines) and an S3-compatible archive (s3Emulator).
 */
export async function selfHosted(): Promise<{ overrides: Partial<Record<SettingKey, unknown>>; cleanup(): Promise<void> }> {
  const engines = await realEngines();
  const s3 = await s3Emulator().catch(async (err) => {
    await engines.cleanup();
    throw err;
  });
  return {
    overrides: { ...engines.overrides, ...s3.overrides },
    cleanup: async () => void (await Promise.all([engines.cleanup(), s3.cleanup()])),
  };
}

/**
 * The AWS backends on their emulators, started in this process on 127.0.0.1 as the backend tests
 * start them: kinesalite (Kinesis), dynalite behind the tests' transaction proxy (DynamoDB), s3rver
 * (S3, one bucket). The SDKs take their credentials from the environment (s3Emulator sets them).
 */
export async function awsEmulators(): Promise<{ overrides: Partial<Record<SettingKey, unknown>>; s3: { endpoint: string; bucket: string }; cleanup(): Promise<void> }> {
  const [{ default: kinesalite }, { default: dynalite }, { startTransactionProxy }] = await Promise.all([
    import('kinesalite'),
    import('dynalite'),
    import('../src/store/dynamodb/testing/dynalite-transactions.js'),
  ]);
  const listen = async (server: Server) => {
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  };
  const kinesis = kinesalite({ createStreamMs: 0, deleteStreamMs: 0, updateStreamMs: 0, shardLimit: 1000 });
  const dynamo = dynalite({ createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
  const [kinesisUrl, dynamoUrl] = await Promise.all([listen(kinesis), listen(dynamo)]);
  const proxy = await startTransactionProxy(dynamoUrl);
  const s3 = await s3Emulator();
  const id = Math.random().toString(36).slice(2, 10);
  const stop = (server: Server) => new Promise<void>((resolve) => (server.closeAllConnections(), server.close(() => resolve())));
  return {
    overrides: {
      'stream.backend': 'kinesis', 'kinesis.endpoint': kinesisUrl, 'kinesis.streamName': `vigil-e2e-${id}`,
      'store.backend': 'dynamodb', 'dynamodb.endpoint': proxy.endpoint, 'dynamodb.table': `vigil-e2e-${id}`,
      ...s3.overrides,
    },
    s3: s3.s3,
    async cleanup() {
      await proxy.close();
      await Promise.all([stop(kinesis), stop(dynamo), s3.cleanup()]);
    },
  };
}

/** A line of an archive object (src/processor/groups/archive-group.ts). */
export interface ArchiveLine {
  partition: number;
  sequence: string;
  residentId: string | null;
  reading: { deviceId: string; seq: number } & Record<string, unknown>;
}

/**
 * Every object of the archive a Vigil with `config` writes, read straight from its directory or
 * bucket with fs or the S3 SDK (not through Vigil's archive code, so a bug there cannot hide
 * itself): keys relative to the archive's root, and all their lines. Undefined while an object is
 * being replaced (a rename or a rewrite raced the read): ask again.
 */
export async function readArchive(config: Config): Promise<{ keys: string[]; lines: ArchiveLine[] } | undefined> {
  const objects: { key: string; body: Uint8Array }[] = [];
  try {
    if (config['archive.backend'] === 's3') {
      const [{ S3Client, ListObjectsV2Command, GetObjectCommand }, { NodeHttpHandler }] = await Promise.all([import('@aws-sdk/client-s3'), import('@smithy/node-http-handler')]);
      const s3 = new S3Client({ region: config['aws.region'], endpoint: config['s3.endpoint'] || undefined, forcePathStyle: config['s3.forcePathStyle'], requestHandler: new NodeHttpHandler() });
      const [bucket, prefix] = [config['s3.bucket'], config['s3.prefix']];
      try {
        let token: string | undefined;
        do {
          const out = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix || undefined, ContinuationToken: token }));
          for (const { Key } of out.Contents ?? []) {
            const body = await (await s3.send(new GetObjectCommand({ Bucket: bucket, Key }))).Body!.transformToByteArray();
            objects.push({ key: Key!.slice(prefix.length), body });
          }
          token = out.NextContinuationToken;
        } while (token);
      } finally {
        s3.destroy();
      }
    } else {
      const root = join(config.dataDir, 'archive');
      // Names starting with '.' are objects being written (renamed into place when whole).
      const walk = (dir: string): string[] =>
        readdirSync(dir).flatMap((name) => (name.startsWith('.') ? [] : statSync(join(dir, name)).isDirectory() ? walk(join(dir, name)) : [join(dir, name)]));
      for (const file of existsSync(root) ? walk(root) : []) objects.push({ key: relative(root, file).split(sep).join('/'), body: readFileSync(file) });
    }
  } catch (err) {
    // Deleted or renamed between the listing and the read: ask again.
    if ((err as Error).name === 'NoSuchKey' || (err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  const lines: ArchiveLine[] = [];
  try {
    for (const o of objects) lines.push(...gunzipSync(o.body).toString('utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as ArchiveLine));
  } catch {
    return undefined; // an object read while being rewritten (s3rver does not replace objects atomically)
  }
  return { keys: objects.map((o) => o.key).sort(), lines };
}

/** `deviceId:seq`, the idempotency key of a reading end to end (DESIGN §3.1). */
export const readingKey = (r: { deviceId: string; seq: number }) => `${r.deviceId}:${r.seq}`;

/**
 * MQTT ingest through the local Mosquitto (docs/mqtt.md), on a topic root and shared-subscription
 * group of this run only: the overrides that make Vigil subscribe, a QoS 1 publisher, and a
 * cleanup that ends the persistent sessions of the Vigils given (they outlive the processes for
 * days otherwise). Call it after stopping those Vigils.
 */
export async function mqttFrontDoor(): Promise<{
  overrides: Partial<Record<SettingKey, unknown>>;
  publish(deviceId: string, body: unknown): Promise<void>;
  cleanup(...configs: Config[]): Promise<void>;
}> {
  const [{ default: mqtt }, { MQTT_MEMBERS, mqttClientIdBase }] = await Promise.all([import('mqtt'), import('../src/ingest/mqtt-ingest.js')]);
  const url = 'mqtt://127.0.0.1:1883';
  const id = Math.random().toString(36).slice(2, 10);
  const root = `vigil-test-${id}`;
  const pub = await mqtt.connectAsync(url, { protocolVersion: 5, clientId: `vigil-test-pub-${id}`, clean: true });
  return {
    overrides: { 'mqtt.url': url, 'mqtt.topic': `${root}/devices/+/readings`, 'mqtt.shareGroup': `g${id}` },
    async publish(deviceId, body) {
      await pub.publishAsync(`${root}/devices/${deviceId}/readings`, typeof body === 'string' ? body : JSON.stringify(body), { qos: 1 });
    },
    async cleanup(...configs) {
      await pub.endAsync();
      for (const config of configs) {
        for (let i = 0; i < MQTT_MEMBERS; i++) {
          const c = await mqtt.connectAsync(url, { protocolVersion: 5, clientId: `${mqttClientIdBase(config)}-${i}`, clean: true, properties: { sessionExpiryInterval: 0 } });
          await c.endAsync();
        }
      }
    },
  };
}

/** The front doors a reading can come in by (DESIGN §3.1). */
export type Ingest = 'http' | 'mqtt';

/**
 * End to end on one combination of backends, for one front door: a new band sends four ordinary
 * readings, then an SOS, over HTTP or MQTT (in two messages, so the path is crossed twice), and
 * each reading must reach every sink exactly once: one open SOS alert opened at the SOS's event
 * time, five warehouse rows served by the API, five archive lines. `t0` is the event time of the
 * first reading (an hour boundary in the past keeps the warehouse window simple). Returns the
 * keys (`deviceId:seq`) of the readings sent, all of them accepted.
 */
export async function followToEverySink(
  vigil: Vigil,
  ingest: Ingest,
  opts: { deviceId: string; t0: number; mqtt?: { publish(deviceId: string, body: unknown): Promise<void> } },
): Promise<string[]> {
  const { deviceId, t0 } = opts;
  const band = await registerResident(vigil.url, deviceId);
  const readings = Array.from({ length: 5 }, (_, i) => reading(deviceId, i, t0 + i * 5000, { hr: 60 + i, ...(i === 4 && { events: ['SOS'] }) }));
  for (const body of [{ readings: readings.slice(0, 4) }, readings[4]]) {
    if (ingest === 'http') {
      const res = await api(vigil.url, 'POST', '/v1/readings', { token: band.token, body });
      expect(res.status).toBe(202);
      expect(res.body.rejected).toEqual([]);
    } else {
      if (!opts.mqtt) throw new Error('followToEverySink over mqtt needs the mqtt front door');
      await opts.mqtt.publish(deviceId, body);
    }
  }

  const alert = await waitFor(`SOS alert from ${ingest}`, async () => (await api(vigil.url, 'GET', `/v1/alerts?residentId=${band.residentId}`, { token: ADMIN_KEY })).body.alerts?.[0]);
  expect(alert).toMatchObject({ type: 'SOS', severity: 'critical', state: 'open', deviceId, residentId: band.residentId, openedAt: new Date(t0 + 20_000).toISOString() });

  const rows = await waitFor(`warehouse rows from ${ingest}`, async () => {
    const res = await api(vigil.url, 'GET', `/v1/residents/${band.residentId}/readings?from=${t0}&to=${t0 + 3_600_000}`, { token: ADMIN_KEY });
    return res.body.readings?.length >= 5 && res.body.readings;
  });
  expect(rows.map((r: { seq: number }) => r.seq)).toEqual([0, 1, 2, 3, 4]);
  expect(rows[2]).toMatchObject({ deviceId, residentId: band.residentId, hr: 62 });

  const archived = await waitFor(`archive lines from ${ingest}`, async () => {
    const got = await readArchive(vigil.config);
    const mine = got?.lines.filter((l) => l.reading.deviceId === deviceId);
    return mine && mine.length >= 5 && { keys: got!.keys, mine };
  }, 20_000, 200);
  expect(archived.mine.map((l) => l.reading.seq).sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4]);
  expect(archived.mine.every((l) => l.residentId === band.residentId)).toBe(true);
  for (const key of archived.keys) expect(key).toMatch(/^dt=\d{4}-\d{2}-\d{2}\/hour=\d{2}\/part-\d+-\d+\.ndjson\.gz$/);

  // Every effect is in place: nothing came twice either.
  const alerts = await api(vigil.url, 'GET', `/v1/alerts?residentId=${band.residentId}`, { token: ADMIN_KEY });
  expect(alerts.body.alerts).toHaveLength(1);
  expect(alerts.body.alerts[0].occurrences).toBe(1);
  return readings.map(readingKey);
}
