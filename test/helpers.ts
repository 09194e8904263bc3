/** Shared pieces of the end-to-end tests: a Vigil on temp dirs, an API client, a webhook receiver. */
import { mkdtempSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { createServer as createTcpServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { loadConfig, type SettingKey } from '../src/core/config.js';
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
 * The AWS backends on their emulators, started in this process on 127.0.0.1 as the backend tests
 * start them: kinesalite (Kinesis), dynalite behind the tests' transaction proxy (DynamoDB), s3rver
 * (S3, one bucket). The SDKs take their credentials from the environment, set here (s3rver checks them).
 */
export async function awsEmulators(): Promise<{ overrides: Partial<Record<SettingKey, unknown>>; s3: { endpoint: string; bucket: string }; cleanup(): Promise<void> }> {
  const [{ default: kinesalite }, { default: dynalite }, { default: S3rver }, { startTransactionProxy }] = await Promise.all([
    import('kinesalite'),
    import('dynalite'),
    import('s3rver'),
    import('../src/store/dynamodb/testing/dynalite-transactions.js'),
  ]);
  process.env.AWS_ACCESS_KEY_ID = 'S3RVER';
  process.env.AWS_SECRET_ACCESS_KEY = 'S3RVER';
  const listen = async (server: Server) => {
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  };
  const kinesis = kinesalite({ createStreamMs: 0, deleteStreamMs: 0, updateStreamMs: 0, shardLimit: 1000 });
  const dynamo = dynalite({ createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
  const [kinesisUrl, dynamoUrl] = await Promise.all([listen(kinesis), listen(dynamo)]);
  const proxy = await startTransactionProxy(dynamoUrl);
  const directory = tempDir('vigil-s3rver-');
  const bucket = 'vigil-e2e';
  const s3 = new S3rver({ port: 0, address: '127.0.0.1', silent: true, directory, configureBuckets: [{ name: bucket }] });
  const s3Url = `http://127.0.0.1:${(await s3.run()).port}`;
  const id = Math.random().toString(36).slice(2, 10);
  const stop = (server: Server) => new Promise<void>((resolve) => (server.closeAllConnections(), server.close(() => resolve())));
  return {
    overrides: {
      'stream.backend': 'kinesis', 'kinesis.endpoint': kinesisUrl, 'kinesis.streamName': `vigil-e2e-${id}`,
      'store.backend': 'dynamodb', 'dynamodb.endpoint': proxy.endpoint, 'dynamodb.table': `vigil-e2e-${id}`,
      'archive.backend': 's3', 's3.endpoint': s3Url, 's3.forcePathStyle': true, 's3.bucket': bucket,
    },
    s3: { endpoint: s3Url, bucket },
    async cleanup() {
      await proxy.close();
      await Promise.all([stop(kinesis), stop(dynamo), s3.close()]);
      const { rmSync } = await import('node:fs');
      rmSync(directory, { recursive: true, force: true });
    },
  };
}
