/**
 * The one configuration schema: every setting's default, validation and documentation live
 * here, and nowhere else. Values are read, lowest precedence first, from the defaults,
 * `vigil.config.json` (or `--config FILE`), `VIGIL_*` environment variables and command-line
 * flags. A bad value stops start-up with a message naming the key and what is allowed.
 *
 * Key `stream.partitions` is `{"stream":{"partitions":8}}` in the file,
 * `VIGIL_STREAM_PARTITIONS` in the environment and `--stream-partitions` on the command line.
 * `npx vigil config` prints the whole table (docs/configuration.md is generated from it).
 */
import { readFileSync, existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { Ajv } from 'ajv';

type Kind = 'integer' | 'number' | 'string' | 'boolean';

interface Setting {
  kind: Kind;
  default: unknown;
  doc: string;
  min?: number;
  max?: number;
  enum?: readonly string[];
  pattern?: string;
  /** Secrets are never printed back. */
  secret?: boolean;
}

const MiB = 1024 * 1024;

export const SETTINGS = {
  port: { kind: 'integer', default: 8080, min: 0, max: 65535, doc: 'HTTP port of the API and ingest (0 picks a free port).' },
  host: { kind: 'string', default: '127.0.0.1', doc: 'Address to listen on; 0.0.0.0 to accept phones on the network.' },
  dataDir: { kind: 'string', default: './data', doc: 'Folder for the embedded stream, store, warehouse and archive.' },
  simulate: { kind: 'integer', default: 0, min: 0, max: 100000, doc: 'Residents in the built-in simulated fleet (0 for none). `npm start` sets 50.' },
  simulateHistoryHours: { kind: 'number', default: 36, min: 0, max: 168, doc: "With `simulate`: hours of past readings (one a minute) loaded in the background for each resident registered by this start — every one on a data dir's first start — so charts, last night's sleep and today's activity are there at once (docs/dashboard.md); about a minute for 50 residents on two cores, and proportionally more for more. 0 for none." },
  adminKey: { kind: 'string', default: '', secret: true, doc: 'Admin API key. Empty: generated at first start, stored hashed, printed once.' },
  masterKey: { kind: 'string', default: '', secret: true, doc: "32-byte key (base64) that encrypts residents' and contacts' personal data; a comma-separated list during a rotation (the first encrypts, the others only decrypt). Empty: the key file `<dataDir>/keys.json`, created at first start (docs/security.md)." },
  statusIntervalMs: { kind: 'integer', default: 5000, min: 0, max: 3600000, doc: 'How often `vigil start` prints its one-line status (0 for never).' },
  heapGrowingPercent: {
    kind: 'integer',
    default: 50,
    min: 0,
    max: 1000,
    doc: "How far each V8 heap (the HTTP thread's, each group thread's) may grow past what its last full collection kept before collecting again, in %. V8's own choice (0) lets a busy heap grow to 2–4× its live objects, so the RSS follows the garbage rather than the data; 50 keeps it near 1.5× for a few % more collection work (docs/deploy.md).",
  },
  'log.level': { kind: 'string', default: 'info', enum: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], doc: 'pino log level.' },

  'stream.backend': { kind: 'string', default: 'embedded', enum: ['embedded', 'nats', 'kinesis'], doc: 'Durable stream engine: embedded SQLite log, NATS JetStream, or AWS Kinesis.' },
  'nats.servers': { kind: 'string', default: 'nats://127.0.0.1:4222', doc: 'NATS servers, comma-separated (stream.backend nats).' },
  'nats.stream': { kind: 'string', default: 'VIGIL_READINGS', pattern: '^[A-Za-z0-9_-]{1,64}$', doc: 'JetStream stream name; its subjects are `<name>.p.<partition>`.' },
  'nats.replicas': { kind: 'integer', default: 1, min: 1, max: 5, doc: 'JetStream replicas of the stream (1 on a single server).' },
  'stream.partitions': { kind: 'integer', default: 8, min: 1, max: 1024, doc: 'Partitions of the stream; readings are placed by a stable hash of deviceId. Fixed once data exists.' },
  'stream.retentionHours': { kind: 'number', default: 168, min: 0.01, max: 87600, doc: 'How long the stream keeps records (default 7 days).' },

  'kinesis.streamName': { kind: 'string', default: 'vigil-readings', pattern: '^[A-Za-z0-9_.-]{1,128}$', doc: 'Kinesis stream (stream.backend kinesis); one shard per partition when Vigil creates it.' },
  'kinesis.endpoint': { kind: 'string', default: '', doc: 'Kinesis endpoint URL; empty for AWS (set for kinesalite or LocalStack).' },
  'aws.region': { kind: 'string', default: 'us-east-1', doc: 'AWS region of Kinesis, DynamoDB and S3.' },
  'store.backend': { kind: 'string', default: 'sqlite', enum: ['sqlite', 'postgres', 'dynamodb'], doc: 'Operational store engine.' },
  'dynamodb.table': { kind: 'string', default: 'vigil', pattern: '^[A-Za-z0-9_.-]{3,255}$', doc: 'DynamoDB table of the store (single-table design, docs/store-dynamodb.md).' },
  'dynamodb.endpoint': { kind: 'string', default: '', doc: 'DynamoDB endpoint URL; empty for AWS (set for dynalite or DynamoDB Local).' },
  'store.postgresUrl': { kind: 'string', default: 'postgres://postgres@127.0.0.1:5432/vigil', doc: 'PostgreSQL connection URL of the store (store.backend postgres).' },
  'warehouse.backend': { kind: 'string', default: 'duckdb', enum: ['duckdb', 'postgres'], doc: 'Warehouse engine.' },
  'warehouse.duckdbMemoryMB': {
    kind: 'integer',
    default: 512,
    min: 128,
    max: 1048576,
    doc: 'Memory the embedded DuckDB warehouse may use (its cache of table blocks, query work); past it DuckDB evicts or spills. The cache fills up to it over hours, then stays there. Its own default, 80% of RAM, lets the cache grow with the data.',
  },
  'warehouse.postgresUrl': { kind: 'string', default: 'postgres://postgres@127.0.0.1:5432/vigil', doc: 'PostgreSQL connection URL of the warehouse (warehouse.backend postgres).' },
  'archive.backend': { kind: 'string', default: 'local', enum: ['local', 's3'], doc: 'Raw archive engine: a local directory or an S3-compatible object store.' },
  's3.bucket': { kind: 'string', default: 'vigil-archive', doc: 'S3 bucket of the archive (archive.backend s3).' },
  's3.prefix': { kind: 'string', default: '', doc: 'Key prefix inside the bucket, e.g. `vigil/`.' },
  's3.endpoint': { kind: 'string', default: '', doc: 'S3 endpoint URL; empty for AWS (set for MinIO, s3rver, Ceph…).' },
  's3.forcePathStyle': { kind: 'boolean', default: false, doc: 'Path-style bucket addressing (most S3-compatible servers need it).' },
  'archive.objectMaxRecords': { kind: 'integer', default: 2000, min: 1, max: 1000000, doc: 'Stream records (request batches) per archive object at most.' },
  'archive.flushIntervalMs': { kind: 'integer', default: 60000, min: 100, max: 3600000, doc: 'How long the archive group gathers records before it writes an object and checkpoints.' },

  'mqtt.url': { kind: 'string', default: '', doc: 'MQTT broker to take readings from (`mqtt://127.0.0.1:1883`); empty: HTTP only.' },
  'mqtt.topic': { kind: 'string', default: 'vigil/devices/+/readings', doc: 'Topic filter; the `+` level is the deviceId (the broker authorizes each device to its own topic).' },
  'mqtt.shareGroup': { kind: 'string', default: 'vigil', pattern: '^[A-Za-z0-9_-]{1,64}$', doc: 'Shared subscription group (`$share/<group>/<topic>`), so several Vigil processes split the load.' },
  'ingest.maxBodyBytes': { kind: 'integer', default: 8 * MiB, min: 1024, max: 256 * MiB, doc: 'Largest request body, after gzip decompression (fits 500 readings with 5 s of 50 Hz accelerometer).' },
  'ingest.maxBatch': { kind: 'integer', default: 500, min: 1, max: 10000, doc: 'Most readings in one request.' },
  'ingest.rateLimitPerSecond': { kind: 'number', default: 100, min: 0.01, max: 1e6, doc: 'Requests per second allowed per device (token bucket refill).' },
  'ingest.rateLimitBurst': { kind: 'integer', default: 200, min: 1, max: 1e6, doc: 'Token bucket size per device: requests allowed in a burst.' },
  'ingest.maxFutureSkewMs': { kind: 'integer', default: 300000, min: 0, max: 86400000, doc: 'A reading stamped further in the future is re-stamped with the receive time and flagged.' },
  'ingest.maxPendingAppends': { kind: 'integer', default: 20000, min: 1, max: 1e7, doc: 'Requests waiting for the durable log before ingest answers 503.' },
  'api.rateLimitPerMinute': { kind: 'integer', default: 600, min: 1, max: 1e7, doc: 'Requests per minute allowed per API key on the third-party API (docs/api.md); the admin key is not limited.' },

  'processor.leaseMs': { kind: 'integer', default: 15000, min: 1000, max: 600000, doc: 'Lease on a (group, partition); renewed every third of it, taken over when expired.' },
  'processor.batchRecords': { kind: 'integer', default: 256, min: 1, max: 100000, doc: 'Stream records a group reads from one partition at a time.' },

  'alerts.sustainSeconds': { kind: 'number', default: 30, min: 0, max: 3600, doc: 'Event-time seconds a vital must stay beyond its band before HR_HIGH/HR_LOW/SPO2_LOW opens. Per resident: `vitalsSustainMs`.' },
  'alerts.imOkWindowSeconds': { kind: 'number', default: 30, min: 0, max: 600, doc: 'After a detected fall, SOS_CANCEL or normal movement within this window resolves it as "resident OK". Per resident: `imOkWindowMs`.' },
  'alerts.inactivityMinutes': { kind: 'number', default: 120, min: 5, max: 1440, doc: 'INACTIVITY after this long worn, awake and still in waking hours. Per resident: `inactivityMs`.' },
  'alerts.pageWithinHours': { kind: 'number', default: 12, min: 0.1, max: 8760, doc: 'An alert detected longer than this after its event time (a replay of old data) is recorded without notifying anyone.' },
  'alerts.offlineMinutes': { kind: 'number', default: 10, min: 0.1, max: 1440, doc: 'DEVICE_OFFLINE after this long without a reading (processing time, only while caught up). Per resident: `offlineMs`.' },
  'notify.webhookTimeoutMs': { kind: 'integer', default: 5000, min: 100, max: 120000, doc: 'Timeout of one webhook delivery attempt.' },
  'notify.maxAttempts': { kind: 'integer', default: 12, min: 1, max: 1000, doc: 'Delivery attempts before a notification is marked failed.' },
  'notify.retryBaseMs': { kind: 'integer', default: 1000, min: 10, max: 3600000, doc: 'First retry delay; doubles each attempt, capped at 5 minutes.' },
  'notify.publicUrl': { kind: 'string', default: '', doc: 'Public base URL of this Vigil (e.g. `https://vigil.example.org`): providers call back here (SMS replies, call keypresses, delivery status). Empty: http://<host>:<port>.' },
  'twilio.accountSid': { kind: 'string', default: '', doc: 'Twilio account SID for SMS and voice calls; empty disables both channels.' },
  'twilio.authToken': { kind: 'string', default: '', doc: 'Twilio auth token: Basic auth of outgoing requests, and the key of the signature of incoming ones.' },
  'twilio.baseUrl': { kind: 'string', default: 'https://api.twilio.com', doc: 'Base URL of the Twilio REST API, or of any provider speaking the same protocol.' },
  'twilio.fromNumber': { kind: 'string', default: '', doc: 'The number SMS and calls come from (E.164, e.g. `+15017122661`).' },
  'push.vapidSubject': { kind: 'string', default: 'mailto:admin@localhost', doc: 'VAPID subject (a mailto: or https: URL) sent to Web Push services.' },
  'push.vapidPublicKey': { kind: 'string', default: '', doc: 'VAPID public key (base64url); empty: a key pair is generated once and kept in the store.' },
  'push.vapidPrivateKey': { kind: 'string', default: '', doc: 'VAPID private key (base64url), with push.vapidPublicKey.' },
  'email.smtpUrl': { kind: 'string', default: '', doc: 'SMTP server for email notifications, e.g. `smtps://user:pass@smtp.example.org:465`; empty disables email.' },
  'email.from': { kind: 'string', default: 'Vigil <vigil@localhost>', doc: 'From address of email notifications.' },
} as const satisfies Record<string, Setting>;

export type SettingKey = keyof typeof SETTINGS;
type ValueOf<K extends SettingKey> = (typeof SETTINGS)[K]['kind'] extends 'boolean'
  ? boolean
  : (typeof SETTINGS)[K]['kind'] extends 'string'
    ? string
    : number;
export type Config = { readonly [K in SettingKey]: ValueOf<K> };

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

export const envName = (key: string): string =>
  'VIGIL_' + key.replace(/\./g, '_').replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase();
export const flagName = (key: string): string =>
  '--' + key.replace(/\./g, '-').replace(/([a-z0-9])([A-Z])/g, '$1-$2').toLowerCase();

function allowed(s: Setting): string {
  if (s.enum) return `one of ${s.enum.map((v) => JSON.stringify(v)).join(', ')}`;
  if (s.kind === 'boolean') return 'true or false';
  const range =
    s.min !== undefined && s.max !== undefined ? ` from ${s.min} to ${s.max}` : s.min !== undefined ? ` ≥ ${s.min}` : '';
  if (s.kind === 'integer') return `an integer${range}`;
  if (s.kind === 'number') return `a number${range}`;
  return s.pattern ? `a string matching ${s.pattern}` : 'a string';
}

function jsonSchema() {
  const properties: Record<string, object> = {};
  for (const [key, s] of Object.entries(SETTINGS) as [string, Setting][]) {
    properties[key] = {
      type: s.kind,
      ...(s.min !== undefined && { minimum: s.min }),
      ...(s.max !== undefined && { maximum: s.max }),
      ...(s.enum && { enum: s.enum }),
      ...(s.pattern && { pattern: s.pattern }),
    };
  }
  return { type: 'object', properties, additionalProperties: false };
}

const validate = new Ajv({ allErrors: true, coerceTypes: true }).compile(jsonSchema());

/** Flattens `{"stream":{"partitions":8}}` to `{"stream.partitions":8}`. */
function flatten(obj: Record<string, unknown>, prefix = '', out: Record<string, unknown> = {}) {
  for (const [k, v] of Object.entries(obj)) {
    const key = prefix + k;
    if (v !== null && typeof v === 'object' && !Array.isArray(v)) flatten(v as Record<string, unknown>, key + '.', out);
    else out[key] = v;
  }
  return out;
}

export interface ConfigSources {
  /** Command-line flags already split into `{ '--port': '9000' }`; unknown flags are an error. */
  flags?: Record<string, string | boolean>;
  env?: NodeJS.ProcessEnv;
  /** Path of the JSON file; default `vigil.config.json` in the working directory, if present. */
  file?: string;
  /** Programmatic overrides (tests, embedding), highest precedence. */
  overrides?: Partial<Record<SettingKey, unknown>>;
}

export function loadConfig(sources: ConfigSources = {}): Config {
  const env = sources.env ?? process.env;
  const merged: Record<string, unknown> = {};
  const origin: Record<string, string> = {};
  for (const [key, s] of Object.entries(SETTINGS)) {
    merged[key] = s.default;
    origin[key] = 'default';
  }
  const set = (key: string, value: unknown, from: string) => {
    merged[key] = value;
    origin[key] = from;
  };

  const file = sources.file ?? (env.VIGIL_CONFIG || 'vigil.config.json');
  const fileRequired = Boolean(sources.file || env.VIGIL_CONFIG);
  if (existsSync(file)) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(readFileSync(file, 'utf8'));
    } catch (err) {
      throw new ConfigError(`config file ${resolve(file)} is not valid JSON: ${(err as Error).message}`);
    }
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed))
      throw new ConfigError(`config file ${resolve(file)} must hold a JSON object`);
    for (const [key, value] of Object.entries(flatten(parsed as Record<string, unknown>))) {
      if (!(key in SETTINGS)) throw new ConfigError(`unknown config key "${key}" in ${resolve(file)}${suggest(key)}`);
      set(key, value, `file ${file}`);
    }
  } else if (fileRequired) {
    throw new ConfigError(`config file ${resolve(file)} does not exist`);
  }

  for (const key of Object.keys(SETTINGS)) {
    const value = env[envName(key)];
    if (value !== undefined && value !== '') set(key, value, `env ${envName(key)}`);
  }

  const byFlag = new Map(Object.keys(SETTINGS).map((k) => [flagName(k), k]));
  for (const [flag, value] of Object.entries(sources.flags ?? {})) {
    const key = byFlag.get(flag);
    if (!key) throw new ConfigError(`unknown option ${flag}${suggest(flag)}`);
    set(key, value, `flag ${flag}`);
  }
  for (const [key, value] of Object.entries(sources.overrides ?? {})) set(key, value, 'override');

  if (!validate(merged)) {
    const problems = (validate.errors ?? []).map((e) => {
      const key = e.instancePath.slice(1);
      const s = (SETTINGS as Record<string, Setting>)[key];
      if (!s) return `config: ${e.message}`;
      return `config key ${key} (${origin[key]}): must be ${allowed(s)}; got ${JSON.stringify(merged[key])}`;
    });
    throw new ConfigError([...new Set(problems)].join('\n'));
  }
  return Object.freeze(merged) as Config;
}

function suggest(name: string): string {
  const bare = name.replace(/^--/, '').replace(/[-.]/g, '').toLowerCase();
  const hit = Object.keys(SETTINGS).find((k) => k.replace(/\./g, '').toLowerCase() === bare);
  return hit ? ` (did you mean ${name.startsWith('--') ? flagName(hit) : hit}?)` : '';
}

/** The documentation table, generated from the schema. */
export function configTable(): string {
  const rows = Object.entries(SETTINGS).map(([key, s]: [string, Setting]) => {
    const def = s.secret ? '(generated)' : JSON.stringify(s.default);
    return `| \`${key}\` | \`${envName(key)}\` | \`${flagName(key)}\` | ${def} | ${allowed(s)} | ${s.doc} |`;
  });
  return ['| key | env | flag | default | allowed | meaning |', '|---|---|---|---|---|---|', ...rows].join('\n');
}
