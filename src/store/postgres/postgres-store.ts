/**
 * The operational store on PostgreSQL (DESIGN §2, the self-hosted scale-out engine): the
 * same tables and semantics as the SQLite store, shared by every process through a server.
 *
 * Where the data lives: the database named by the URL (created on first open if missing),
 * in the first schema of the connection's `search_path` (set it with
 * `?options=-c%20search_path%3D<schema>`; created on first open if missing), else `public`.
 *
 * Invariants (the rest of Vigil relies on them):
 * 1. Durability: a write whose promise resolved is committed (the server's `fsync` and
 *    `synchronous_commit` settings decide what a power loss keeps; keep both on). The
 *    schema is created under an advisory lock, so processes opening together do not race
 *    on `CREATE TABLE IF NOT EXISTS`; `schema_version` holds its version.
 * 2. `devices.token_hash` is the SHA-256 of the device token, unique; the token itself is
 *    never stored; NULL is a revoked token (NULLs are distinct in the unique index).
 *    `contacts.webhook_secret` is kept as given: the notifier needs the key itself to sign
 *    webhook bodies.
 * 3. `alerts`: at most one row per (resident_id, type) with state <> 'resolved' (partial
 *    unique index). An alert id is derived from its trigger, so a row is inserted at most
 *    once; 'resolved' is final. Alert batches touching a resident hold a transaction-level
 *    advisory lock on it (taken in a fixed order), so two partitions' batches for the same
 *    resident apply one after the other, as SQLite's single writer applies them; a person
 *    resolving an alert takes the same lock, so a batch never counts a recurrence on an
 *    alert resolved after the batch read it.
 * 4. `outbox.id` is `alert_id:step:contact_id:channel` (CHECK), inserted with
 *    `ON CONFLICT (id) DO NOTHING` (in the same transaction as the alert that created it, or
 *    later by `enqueueOutbox`), so a notification is queued at most once. 'delivered',
 *    'failed' and 'cancelled' are final; 'sent' moves only on the provider's report (found by
 *    the `(channel, provider_id)` index). Claims lock the rows they take
 *    (`FOR UPDATE SKIP LOCKED`), so concurrent senders never share a row; a cancel waits for
 *    a claim under way and then skips the row it took.
 * 5. `leases.epoch` of a (group, partition) never decreases, and increases whenever the
 *    lease is taken by a new owner (one conditional upsert: a compare-and-set). A checkpoint
 *    row changes only in a statement that found the writer's (owner, epoch) in `leases` and
 *    share-locked that lease row until commit, so the lease cannot change hands between the
 *    check and the commit. The alert changes, outbox rows and checkpoint of one processed
 *    batch commit together or not at all; so do a checkpoint and its `checkpoint_state`
 *    entries (written after the fence check, in its transaction).
 * 6. JSON columns (home_location, preferences, evidence, payload, snapshot, value) are `jsonb` (so
 *    a string holding U+0000 cannot be stored); SQL NULL stands for an absent value. Times are epoch
 *    milliseconds in `bigint`, read back as numbers. Key and ordering columns use
 *    `COLLATE "C"`: byte order, as in SQLite, whatever the database's locale.
 * 7. `api_keys.key_hash` is the SHA-256 of the API key, unique; the key itself is never
 *    stored. `revoked_at` is set once and never cleared.
 */
import pg from 'pg';
import { VigilError } from '../../core/errors.js';
import { clampLimit, definedOnly, higherSeverity, newAlert, rowMappers, type AlertRow, type CheckpointRow, type ContactRow, type DeviceRow, type LeaseRow, type OutboxRow, type ResidentRow } from '../store-rows.js';
import {
  LeaseLostError,
  type Alert,
  type AlertChange,
  type AlertFilter,
  type ApiKey,
  type Checkpoint,
  type Contact,
  type ContactPatch,
  type ContactPreferences,
  type Device,
  type Fence,
  type Lease,
  type OutboxItem,
  type Resident,
  type ResidentPatch,
  type Severity,
  type StateChanges,
  type Store,
} from '../types.js';
import { createDatabase, FOREIGN_KEY_VIOLATION, INVALID_CATALOG_NAME, sqlState, UNIQUE_VIOLATION } from '../../core/postgres.js';

// pg decodes jsonb columns itself.
const { toResident, toDevice, toContact, toAlert, toOutboxItem, toLease, toCheckpoint } = rowMappers((v) => v);

/**
 * 2: residents.medical_notes, contacts.preferences, outbox statuses delivered/cancelled and the provider index.
 * 3: api_keys (2 → 3 is that one new table, which SCHEMA's CREATE TABLE IF NOT EXISTS adds).
 * checkpoint_state came within schema 3, added the same way: older Vigils of schema 3 never
 * read it, so the version stays.
 */
const SCHEMA_VERSION = 3;

interface ApiKeyRow {
  id: string;
  name: string;
  key_hash: string;
  scopes: string[];
  resident_ids: string[] | null;
  created_at: number;
  revoked_at: number | null;
}

const toApiKey = (r: ApiKeyRow): ApiKey => ({
  id: r.id,
  name: r.name,
  keyHash: r.key_hash,
  scopes: r.scopes,
  residentIds: r.resident_ids,
  createdAt: r.created_at,
  revokedAt: r.revoked_at,
});

const OUTBOX_STATUSES = "'queued', 'sending', 'sent', 'delivered', 'failed', 'cancelled'";

const SCHEMA = `
CREATE TABLE IF NOT EXISTS settings (key text COLLATE "C" PRIMARY KEY, value text NOT NULL);
CREATE TABLE IF NOT EXISTS residents (
  id            text COLLATE "C" PRIMARY KEY,
  name          text NOT NULL,
  birth_date    text,
  timezone      text NOT NULL,
  home_location jsonb,
  medical_notes text,
  created_at    bigint NOT NULL
);
CREATE TABLE IF NOT EXISTS devices (
  device_id   text COLLATE "C" PRIMARY KEY,
  resident_id text COLLATE "C" NOT NULL REFERENCES residents(id),
  token_hash  text COLLATE "C",
  created_at  bigint NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS devices_token_hash ON devices(token_hash);
CREATE INDEX IF NOT EXISTS devices_resident ON devices(resident_id);
CREATE TABLE IF NOT EXISTS contacts (
  id             text COLLATE "C" PRIMARY KEY,
  resident_id    text COLLATE "C" NOT NULL REFERENCES residents(id),
  name           text NOT NULL,
  phone          text,
  email          text,
  webhook_url    text,
  webhook_secret text,
  preferences    jsonb NOT NULL DEFAULT '{}',
  created_at     bigint NOT NULL
);
CREATE INDEX IF NOT EXISTS contacts_resident ON contacts(resident_id);
CREATE TABLE IF NOT EXISTS alerts (
  id              text COLLATE "C" PRIMARY KEY,
  resident_id     text COLLATE "C" NOT NULL,
  device_id       text COLLATE "C" NOT NULL,
  type            text COLLATE "C" NOT NULL,
  severity        text NOT NULL CHECK (severity IN ('critical', 'high', 'medium', 'low')),
  state           text NOT NULL CHECK (state IN ('open', 'acknowledged', 'resolved')),
  opened_at       bigint NOT NULL,
  detected_at     bigint NOT NULL,
  delay_ms        bigint,
  acknowledged_at bigint,
  acknowledged_by text,
  ack_note        text,
  resolved_at     bigint,
  last_seen_at    bigint NOT NULL,
  occurrences     integer NOT NULL,
  evidence        jsonb NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS alerts_one_unresolved ON alerts(resident_id, type) WHERE state <> 'resolved';
CREATE INDEX IF NOT EXISTS alerts_opened ON alerts(opened_at, id);
CREATE INDEX IF NOT EXISTS alerts_resident_opened ON alerts(resident_id, opened_at, id);
CREATE TABLE IF NOT EXISTS outbox (
  id              text COLLATE "C" PRIMARY KEY CHECK (id = alert_id || ':' || step || ':' || contact_id || ':' || channel),
  alert_id        text COLLATE "C" NOT NULL REFERENCES alerts(id),
  step            integer NOT NULL,
  contact_id      text COLLATE "C" NOT NULL,
  channel         text COLLATE "C" NOT NULL,
  payload         jsonb NOT NULL,
  status          text NOT NULL CONSTRAINT outbox_status_check CHECK (status IN (${OUTBOX_STATUSES})),
  attempts        integer NOT NULL,
  next_attempt_at bigint NOT NULL,
  last_error      text,
  provider_id     text,
  created_at      bigint NOT NULL,
  updated_at      bigint NOT NULL
);
CREATE INDEX IF NOT EXISTS outbox_due ON outbox(next_attempt_at, created_at, id) WHERE status = 'queued';
CREATE INDEX IF NOT EXISTS outbox_alert ON outbox(alert_id);
CREATE INDEX IF NOT EXISTS outbox_provider ON outbox(channel, provider_id) WHERE provider_id IS NOT NULL;
CREATE TABLE IF NOT EXISTS leases (
  grp        text COLLATE "C" NOT NULL,
  part       integer NOT NULL,
  owner      text NOT NULL,
  epoch      bigint NOT NULL,
  expires_at bigint NOT NULL,
  PRIMARY KEY (grp, part)
);
CREATE TABLE IF NOT EXISTS checkpoints (
  grp        text COLLATE "C" NOT NULL,
  part       integer NOT NULL,
  sequence   text,
  snapshot   jsonb,
  updated_at bigint NOT NULL,
  PRIMARY KEY (grp, part)
);
CREATE TABLE IF NOT EXISTS checkpoint_state (
  grp   text COLLATE "C" NOT NULL,
  part  integer NOT NULL,
  key   text COLLATE "C" NOT NULL,
  value jsonb NOT NULL,
  PRIMARY KEY (grp, part, key)
);
CREATE TABLE IF NOT EXISTS api_keys (
  id           text COLLATE "C" PRIMARY KEY,
  name         text NOT NULL,
  key_hash     text COLLATE "C" NOT NULL CONSTRAINT api_keys_key_hash_key UNIQUE,
  scopes       jsonb NOT NULL,
  resident_ids jsonb,
  created_at   bigint NOT NULL,
  revoked_at   bigint
);
`;

/**
 * Schema 1 → 2, run before SCHEMA (whose CREATE INDEX IF NOT EXISTS then adds
 * outbox_provider). Every step is idempotent. The outbox status CHECK of schema 1 was
 * unnamed (PostgreSQL called it outbox_status_check); it is found in the catalogue as the
 * CHECK constraints on the status column alone, and replaced by one with that name.
 */
const MIGRATE_FROM_1 = `
ALTER TABLE residents ADD COLUMN IF NOT EXISTS medical_notes text;
ALTER TABLE contacts ADD COLUMN IF NOT EXISTS preferences jsonb NOT NULL DEFAULT '{}';
`;
/**
 * `devices.token_hash` became nullable (a revoked token) within schema 2: dropped where it is
 * still NOT NULL. Older Vigils read and write the relaxed column unchanged, so the version stays.
 */
const TOKEN_HASH_NOT_NULL = `SELECT 1 FROM pg_attribute WHERE attrelid = 'devices'::regclass AND attname = 'token_hash' AND attnotnull`;
const STATUS_CHECKS = `SELECT c.conname AS name FROM pg_constraint AS c
  JOIN pg_attribute AS a ON a.attrelid = c.conrelid AND c.conkey = ARRAY[a.attnum]
  WHERE c.conrelid = 'outbox'::regclass AND c.contype = 'c' AND a.attname = 'status'`;

/** Classes of `pg_advisory_xact_lock(class, key)`, kept apart from other applications' locks. */
const SCHEMA_LOCK = 0x5647_4c00;
const RESIDENT_LOCK = 0x5647_4c01;

/**
 * Epoch-ms columns are `bigint`, which pg returns as strings by default (they may exceed
 * 2^53); ours stay far below it. Set per pool, not globally, so other pg users in the
 * process keep their parsers.
 */
const TYPES = new pg.TypeOverrides();
TYPES.setTypeParser(pg.types.builtins.INT8, Number);

/**
 * Statements used more than once, sent by name so that each pooled connection parses and
 * plans them once (the equivalent of the SQLite store's prepared statements).
 */
const SQL = {
  getSetting: 'SELECT value FROM settings WHERE key = $1',
  insertSettingIfAbsent: 'INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING',
  upsertSetting: 'INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value',

  insertResident: `INSERT INTO residents (id, name, birth_date, timezone, home_location, medical_notes, created_at)
    VALUES ($1, $2, $3, $4, $5, $6, $7)`,
  getResident: 'SELECT * FROM residents WHERE id = $1',
  listResidents: 'SELECT * FROM residents WHERE id > $1 ORDER BY id LIMIT $2',
  insertDevice: 'INSERT INTO devices (device_id, resident_id, token_hash, created_at) VALUES ($1, $2, $3, $4)',
  deviceByTokenHash: 'SELECT device_id, resident_id, created_at FROM devices WHERE token_hash = $1',
  deviceById: 'SELECT device_id, resident_id, created_at FROM devices WHERE device_id = $1',
  setDeviceToken: 'UPDATE devices SET token_hash = $2 WHERE device_id = $1 RETURNING device_id, resident_id, created_at',
  listDevices: 'SELECT device_id, resident_id, created_at FROM devices WHERE resident_id = $1 ORDER BY created_at, device_id',
  insertContact: `INSERT INTO contacts (id, resident_id, name, phone, email, webhook_url, webhook_secret, preferences, created_at)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
  getContact: 'SELECT * FROM contacts WHERE id = $1',
  listContacts: 'SELECT * FROM contacts WHERE resident_id = $1 ORDER BY created_at, id',
  deleteContact: 'DELETE FROM contacts WHERE id = $1',

  getAlert: 'SELECT * FROM alerts WHERE id = $1',
  countOpenAlerts: "SELECT count(*) AS n FROM alerts WHERE state <> 'resolved'",
  acknowledgeAlert: `UPDATE alerts SET state = 'acknowledged', acknowledged_at = $2, acknowledged_by = $3, ack_note = $4
    WHERE id = $1 AND state = 'open'`,
  alertResident: 'SELECT resident_id FROM alerts WHERE id = $1',
  // By a person: fills the acknowledgement if there was none, keeps an earlier one.
  resolveAlertBy: `UPDATE alerts SET state = 'resolved', resolved_at = $2,
      acknowledged_at = COALESCE(acknowledged_at, $2), acknowledged_by = COALESCE(acknowledged_by, $3),
      ack_note = COALESCE($4, ack_note)
    WHERE id = $1 AND state <> 'resolved'
    RETURNING *`,
  // Sorted, so two batches lock the residents they share in the same order and never deadlock.
  lockResidents: `SELECT pg_advisory_xact_lock(${RESIDENT_LOCK}, key)
    FROM (SELECT DISTINCT hashtext(r) AS key FROM unnest($1::text[]) AS r ORDER BY key) AS keys`,
  // The raise's own row (a replay) and the unresolved alert of its (resident, type), if any.
  raiseTargets: `SELECT id, severity FROM alerts
    WHERE id = $1 OR (resident_id = $2 AND type = $3 AND state <> 'resolved')`,
  insertAlert: `INSERT INTO alerts (id, resident_id, device_id, type, severity, state, opened_at, detected_at, delay_ms,
      acknowledged_at, acknowledged_by, ack_note, resolved_at, last_seen_at, occurrences, evidence)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)`,
  recurAlert: `UPDATE alerts SET occurrences = occurrences + 1, last_seen_at = GREATEST(last_seen_at, $2),
      evidence = $3, severity = $4
    WHERE id = $1`,
  resolveAlert: `UPDATE alerts SET state = 'resolved', resolved_at = $3,
      evidence = CASE WHEN $4::jsonb IS NULL THEN evidence ELSE evidence || jsonb_build_object('resolution', $4::jsonb) END
    WHERE resident_id = $1 AND type = $2 AND state <> 'resolved'`,

  // All of a batch's rows in one statement: they arrive as one JSON array.
  insertOutbox: `INSERT INTO outbox (id, alert_id, step, contact_id, channel, payload, status, attempts,
      next_attempt_at, last_error, provider_id, created_at, updated_at)
    SELECT * FROM jsonb_to_recordset($1::jsonb) AS o(id text, alert_id text, step integer, contact_id text,
      channel text, payload jsonb, status text, attempts integer, next_attempt_at bigint, last_error text,
      provider_id text, created_at bigint, updated_at bigint)
    ON CONFLICT (id) DO NOTHING`,
  // SKIP LOCKED: a row another sender is claiming is left to it instead of waited for.
  claimOutbox: `WITH due AS (
      SELECT id FROM outbox WHERE status = 'queued' AND next_attempt_at <= $1
      ORDER BY next_attempt_at, created_at, id LIMIT $2
      FOR UPDATE SKIP LOCKED
    ), claimed AS (
      UPDATE outbox AS o SET status = 'sending', attempts = o.attempts + 1, updated_at = $1
      FROM due WHERE o.id = due.id
      RETURNING o.*
    )
    SELECT * FROM claimed ORDER BY next_attempt_at, created_at, id`,
  // Only a row being sent can complete, so a late report never reopens a final row.
  outboxSent: "UPDATE outbox SET status = 'sent', provider_id = $2, updated_at = $3 WHERE id = $1 AND status = 'sending'",
  outboxRetry: `UPDATE outbox SET status = 'queued', next_attempt_at = $2, last_error = $3, updated_at = $4
    WHERE id = $1 AND status = 'sending'`,
  outboxFailed: "UPDATE outbox SET status = 'failed', last_error = $2, updated_at = $3 WHERE id = $1 AND status = 'sending'",
  requeueStuck: "UPDATE outbox SET status = 'queued', next_attempt_at = $1, updated_at = $1 WHERE status = 'sending' AND updated_at < $2",
  // A row a claim holds is waited for, then re-checked: it is no longer queued, so it stays.
  cancelOutbox: "UPDATE outbox SET status = 'cancelled', last_error = $2, updated_at = $3 WHERE alert_id = $1 AND status = 'queued'",
  // One row per (channel, provider id), the first if a provider ever reused an id: found through outbox_provider.
  outboxByProvider: 'SELECT * FROM outbox WHERE channel = $1 AND provider_id = $2 ORDER BY created_at, id LIMIT 1',
  // A report only moves a row the provider took; `delivered` is final, a later `failed` does not undo it.
  outboxReport: `UPDATE outbox SET status = $3, last_error = $4, updated_at = $5
    WHERE id = (SELECT id FROM outbox WHERE channel = $1 AND provider_id = $2 ORDER BY created_at, id LIMIT 1)
      AND status IN ('sent', 'sending')
    RETURNING *`,
  listOutbox: 'SELECT * FROM outbox WHERE alert_id = $1 ORDER BY created_at, step, contact_id, channel',

  // Compare-and-set in one statement: a concurrent insert of the same key waits for ours and
  // then sees a live lease of another owner, so it updates nothing and returns no row.
  acquireLease: `INSERT INTO leases AS l (grp, part, owner, epoch, expires_at) VALUES ($1, $2, $3, 1, $5)
    ON CONFLICT (grp, part) DO UPDATE SET
      owner = excluded.owner,
      epoch = CASE WHEN l.owner = excluded.owner THEN l.epoch ELSE l.epoch + 1 END,
      expires_at = excluded.expires_at
    WHERE l.owner = excluded.owner OR l.expires_at <= $4
    RETURNING epoch`,
  renewLease: 'UPDATE leases SET expires_at = $5 WHERE grp = $1 AND part = $2 AND owner = $3 AND epoch = $4',
  releaseLease: 'UPDATE leases SET expires_at = 0 WHERE grp = $1 AND part = $2 AND owner = $3 AND epoch = $4',
  listLeases: 'SELECT * FROM leases WHERE grp = $1 ORDER BY part',

  getCheckpoint: 'SELECT * FROM checkpoints WHERE grp = $1 AND part = $2',
  listCheckpoints: 'SELECT * FROM checkpoints WHERE grp = $1 ORDER BY part',
  // FOR SHARE holds off a takeover (which updates the lease row) until this transaction ends,
  // and a takeover already under way makes the fence re-read the new epoch and fail.
  fencedCheckpoint: `WITH fence AS (
      SELECT 1 FROM leases WHERE grp = $1 AND part = $2 AND owner = $3 AND epoch = $4 FOR SHARE
    )
    INSERT INTO checkpoints (grp, part, sequence, snapshot, updated_at)
    SELECT $1::text, $2::integer, $5::text, $6::jsonb, $7::bigint FROM fence
    ON CONFLICT (grp, part) DO UPDATE SET sequence = excluded.sequence, snapshot = excluded.snapshot,
      updated_at = excluded.updated_at`,
  getCheckpointState: 'SELECT key, value FROM checkpoint_state WHERE grp = $1 AND part = $2',
  clearCheckpointState: 'DELETE FROM checkpoint_state WHERE grp = $1 AND part = $2',
  // All of a flush's entries in one statement, as two parallel arrays.
  putCheckpointState: `INSERT INTO checkpoint_state (grp, part, key, value)
    SELECT $1::text, $2::integer, e.key, e.value FROM unnest($3::text[], $4::jsonb[]) AS e(key, value)
    ON CONFLICT (grp, part, key) DO UPDATE SET value = excluded.value`,

  insertApiKey: `INSERT INTO api_keys (id, name, key_hash, scopes, resident_ids, created_at, revoked_at)
    VALUES ($1, $2, $3, $4, $5, $6, NULL)`,
  apiKeyByHash: 'SELECT * FROM api_keys WHERE key_hash = $1',
  listApiKeys: 'SELECT * FROM api_keys ORDER BY created_at, id',
  revokeApiKey: 'UPDATE api_keys SET revoked_at = COALESCE(revoked_at, $2) WHERE id = $1 RETURNING *',
} as const;

type Statement = keyof typeof SQL;

/** A pool or one of its clients (inside a transaction). */
interface Queryable {
  query<R extends pg.QueryResultRow>(config: pg.QueryConfig): Promise<pg.QueryResult<R>>;
}

function run<R extends pg.QueryResultRow = pg.QueryResultRow>(db: Queryable, name: Statement, values: unknown[]) {
  return db.query<R>({ name: `vigil_${name}`, text: SQL[name], values });
}

/**
 * JSON goes out as text we stringify ourselves: pg would turn a JS array into a PostgreSQL
 * array literal, which is not JSON.
 */
const json = (value: unknown): string | null => (value === undefined || value === null ? null : JSON.stringify(value));

const alertValues = (a: Alert): unknown[] => [
  a.id,
  a.residentId,
  a.deviceId,
  a.type,
  a.severity,
  a.state,
  a.openedAt,
  a.detectedAt,
  a.delayMs,
  a.acknowledgedAt,
  a.acknowledgedBy,
  a.ackNote,
  a.resolvedAt,
  a.lastSeenAt,
  a.occurrences,
  JSON.stringify(a.evidence),
];

/** The record of `insertOutbox`'s jsonb_to_recordset, one per row. */
const outboxRecord = (o: OutboxItem) => ({
  id: o.id,
  alert_id: o.alertId,
  step: o.step,
  contact_id: o.contactId,
  channel: o.channel,
  payload: o.payload,
  status: o.status,
  attempts: o.attempts,
  next_attempt_at: o.nextAttemptAt,
  last_error: o.lastError,
  provider_id: o.providerId,
  created_at: o.createdAt,
  updated_at: o.updatedAt,
});


/**
 * Turns constraint failures into catalogue errors, as the SQLite store does: a taken primary
 * key is a CONFLICT, a missing resident NOT_FOUND; anything else passes through.
 */
function constraintError(err: unknown, messages: { duplicate: string; missingResident?: string }): unknown {
  if (!(err instanceof pg.DatabaseError)) return err;
  if (err.code === UNIQUE_VIOLATION && err.constraint?.endsWith('_pkey')) return new VigilError('CONFLICT', messages.duplicate);
  if (err.code === FOREIGN_KEY_VIOLATION && messages.missingResident) return new VigilError('NOT_FOUND', messages.missingResident);
  return err;
}

/**
 * Thrown inside the batch transaction (rolling it back) when it would create alerts whose
 * outbox rows have not been built yet. `outboxFor` is not awaited inside the transaction: it
 * may be slow or use the store itself, and the locks the transaction holds (the lease, the
 * resident, new alert rows) would stall every other worker meanwhile.
 */
class OutboxNeeded extends Error {
  constructor(readonly alerts: Alert[]) {
    super('outbox rows needed');
  }
}

type AlertRaise = Extract<AlertChange, { kind: 'raise' }>['alert'];
type BatchCheckpoint = Parameters<Store['commitAlertBatch']>[2];

/** Runs `fn` in a transaction on one pooled connection: committed if it returns, rolled back if it throws. */
async function inTransaction<T>(pool: pg.Pool, fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  // A connection whose ROLLBACK failed is in an unknown state: destroyed, not reused.
  let broken: Error | undefined;
  try {
    await client.query('BEGIN');
    const result = await fn(client);
    await client.query('COMMIT');
    return result;
  } catch (err) {
    await client.query('ROLLBACK').catch((rollbackErr: Error) => {
      broken = rollbackErr;
    });
    throw err;
  } finally {
    client.release(broken);
  }
}

/** A pool's first connection, creating the URL's database when the server does not have it. */
async function connectCreatingDatabase(pool: pg.Pool, url: string): Promise<pg.PoolClient> {
  try {
    return await pool.connect();
  } catch (err) {
    if (sqlState(err) !== INVALID_CATALOG_NAME) throw err;
  }
  await createDatabase(url);
  return pool.connect();
}

/**
 * Creates the first schema of the search path when none of it exists yet (a URL naming a
 * fresh schema); unqualified CREATE TABLE then puts the tables there.
 */
async function ensureSchema(client: pg.PoolClient): Promise<void> {
  const { rows } = await client.query<{ current: string | null; path: string }>(
    "SELECT current_schema() AS current, current_setting('search_path') AS path",
  );
  if (rows[0].current !== null) return;
  const first = rows[0].path
    .split(',')
    .map((s) => s.trim())
    .find((s) => s !== '' && s !== '"$user"');
  if (first === undefined) throw new Error(`search_path "${rows[0].path}" names no schema to create the store in`);
  // parse_ident unquotes (and case-folds) the name as the server reads it.
  const ident = await client.query<{ name: string }>('SELECT (parse_ident($1))[1] AS name', [first]);
  await client.query(`CREATE SCHEMA IF NOT EXISTS ${pg.escapeIdentifier(ident.rows[0].name)}`);
}

async function migrate(pool: pg.Pool, url: string): Promise<void> {
  (await connectCreatingDatabase(pool, url)).release();
  await inTransaction(pool, async (client) => {
    // Serializes processes opening together: concurrent CREATE ... IF NOT EXISTS can fail.
    await client.query(`SELECT pg_advisory_xact_lock(${SCHEMA_LOCK}, 0)`);
    await ensureSchema(client);
    await client.query('CREATE TABLE IF NOT EXISTS schema_version (version integer NOT NULL)');
    const { rows } = await client.query<{ version: number }>('SELECT version FROM schema_version');
    const version = rows[0]?.version ?? 0;
    if (version > SCHEMA_VERSION) {
      throw new Error(`the store schema in PostgreSQL is version ${version}; this Vigil knows up to ${SCHEMA_VERSION}`);
    }
    if (version === 1) await migrateFrom1(client);
    await client.query(SCHEMA);
    if ((await client.query(TOKEN_HASH_NOT_NULL)).rows.length) await client.query('ALTER TABLE devices ALTER COLUMN token_hash DROP NOT NULL');
    if (rows.length === 0) await client.query('INSERT INTO schema_version (version) VALUES ($1)', [SCHEMA_VERSION]);
    else await client.query('UPDATE schema_version SET version = $1', [SCHEMA_VERSION]);
  });
}

/** Schema 1 → 2 (see MIGRATE_FROM_1), inside migrate's transaction. */
async function migrateFrom1(client: pg.PoolClient): Promise<void> {
  await client.query(MIGRATE_FROM_1);
  const { rows } = await client.query<{ name: string }>(STATUS_CHECKS);
  const drops = rows.map((r) => `DROP CONSTRAINT ${pg.escapeIdentifier(r.name)}, `).join('');
  await client.query(`ALTER TABLE outbox ${drops}ADD CONSTRAINT outbox_status_check CHECK (status IN (${OUTBOX_STATUSES}))`);
}

/** The columns a resident or contact patch may set, in a fixed order (it names the statement). */
const RESIDENT_COLUMNS = {
  name: 'name',
  birthDate: 'birth_date',
  timezone: 'timezone',
  homeLocation: 'home_location',
  medicalNotes: 'medical_notes',
} as const satisfies Record<keyof ResidentPatch, string>;
const CONTACT_COLUMNS = {
  name: 'name',
  phone: 'phone',
  email: 'email',
  webhookUrl: 'webhook_url',
  webhookSecret: 'webhook_secret',
  preferences: 'preferences',
} as const satisfies Record<keyof ContactPatch, string>;

/**
 * `UPDATE <table> SET <the columns the patch gives> WHERE id = $1 RETURNING *`: one
 * statement, so concurrent patches of different fields both stay. `encode` turns a field's
 * value into its parameter. Null when no row has that id; undefined when the patch gives no
 * field (nothing to run).
 */
async function updateRow<R extends pg.QueryResultRow, P extends object>(
  db: Queryable,
  table: 'residents' | 'contacts',
  columns: Record<keyof P, string>,
  id: string,
  patch: P,
  encode: (field: keyof P, value: unknown) => unknown,
): Promise<R | null | undefined> {
  const given = definedOnly(patch) as Record<keyof P, unknown>;
  const fields = (Object.keys(columns) as (keyof P)[]).filter((k) => given[k] !== undefined);
  if (fields.length === 0) return undefined;
  // One named statement per combination of columns, as listAlerts does per filter; named by
  // a bit mask over the fixed column order (the server truncates names at 63 bytes).
  const mask = Object.keys(columns).reduce((m, k, i) => (given[k as keyof P] !== undefined ? m | (1 << i) : m), 0);
  const { rows } = await db.query<R>({
    name: `vigil_update_${table}_${mask}`,
    text: `UPDATE ${table} SET ${fields.map((k, i) => `${columns[k]} = $${i + 2}`).join(', ')} WHERE id = $1 RETURNING *`,
    values: [id, ...fields.map((k) => encode(k, given[k]))],
  });
  return rows[0] ?? null;
}

/** Writes the checkpoint if the fence is the lease's current (owner, epoch); else LeaseLostError. */
async function fencedCheckpoint(
  db: Queryable,
  group: string,
  partition: number,
  sequence: string | null,
  snapshot: unknown,
  fence: Fence,
): Promise<void> {
  const values = [group, partition, fence.owner, fence.epoch, sequence, json(snapshot), Date.now()];
  if ((await run(db, 'fencedCheckpoint', values)).rowCount !== 1) throw new LeaseLostError(group, partition);
}

const batchCheckpoint = (db: Queryable, cp: BatchCheckpoint) =>
  fencedCheckpoint(db, cp.group, cp.partition, cp.sequence, cp.snapshot, cp.fence);

/** Whether the changes write anything: without, a checkpoint needs no transaction around it. */
const changesState = (state: StateChanges | undefined): state is StateChanges => state !== undefined && (state.clear === true || state.put.length > 0);

/**
 * Applies state changes; run in the transaction that wrote the fenced checkpoint, whose lease
 * row lock keeps the fence valid until commit (a stale fence threw before this ran).
 */
async function writeState(db: Queryable, group: string, partition: number, state: StateChanges): Promise<void> {
  if (state.clear) await run(db, 'clearCheckpointState', [group, partition]);
  // One value per key, the last (as successive upserts would leave it): ON CONFLICT cannot touch a row twice.
  const entries = new Map(state.put);
  if (entries.size === 0) return;
  const values = [...entries.values()].map((v) => JSON.stringify(v));
  await run(db, 'putCheckpointState', [group, partition, [...entries.keys()], values]);
}

/** One round of `commitAlertBatch`, inside its transaction; returns the alerts it created. */
async function applyBatch(
  client: pg.PoolClient,
  changes: AlertChange[],
  outboxes: Map<string, OutboxItem[]>,
  checkpoint: BatchCheckpoint,
): Promise<Alert[]> {
  // Fence first: a worker that lost its lease should not even build outbox rows.
  await batchCheckpoint(client, checkpoint);
  const residents = [...new Set(changes.map((c) => (c.kind === 'raise' ? c.alert.residentId : c.residentId)))];
  await run(client, 'lockResidents', [residents]);
  const created: Alert[] = [];
  for (const change of changes) {
    if (change.kind === 'raise') await applyRaise(client, change.alert, created);
    else await run(client, 'resolveAlert', [change.residentId, change.type, change.at, json(change.evidence)]);
  }
  const missing = created.filter((a) => !outboxes.has(a.id));
  if (missing.length) throw new OutboxNeeded(missing);
  const records = created.flatMap((a) => outboxes.get(a.id)!.map(outboxRecord));
  if (records.length) await run(client, 'insertOutbox', [JSON.stringify(records)]);
  // Last, so the rounds that roll back for outbox rows do not write it in vain.
  if (checkpoint.state) await writeState(client, checkpoint.group, checkpoint.partition, checkpoint.state);
  return created;
}

async function applyRaise(client: pg.PoolClient, raise: AlertRaise, created: Alert[]): Promise<void> {
  const { rows } = await run<{ id: string; severity: Severity }>(client, 'raiseTargets', [raise.id, raise.residentId, raise.type]);
  if (rows.some((r) => r.id === raise.id)) return; // a replay of a raise already applied
  const open = rows[0];
  if (open) {
    const severity = higherSeverity(open.severity, raise.severity);
    await run(client, 'recurAlert', [open.id, raise.openedAt, JSON.stringify(raise.evidence), severity]);
    return;
  }
  const alert = newAlert(raise);
  await run(client, 'insertAlert', alertValues(alert));
  created.push(alert);
}

export class PostgresStore implements Store {
  static async open(url: string): Promise<PostgresStore> {
    const pool = new pg.Pool({ connectionString: url, types: TYPES });
    // An idle connection that dies (server restart) is dropped by the pool and replaced on
    // the next query; unhandled, the event would crash the process.
    pool.on('error', () => undefined);
    try {
      await migrate(pool, url);
    } catch (err) {
      await pool.end();
      throw err;
    }
    return new PostgresStore(pool);
  }

  private constructor(private readonly pool: pg.Pool) {}

  // settings

  async getSetting(key: string): Promise<string | null> {
    const { rows } = await run<{ value: string }>(this.pool, 'getSetting', [key]);
    return rows[0]?.value ?? null;
  }

  async setSettingIfAbsent(key: string, value: string): Promise<boolean> {
    return (await run(this.pool, 'insertSettingIfAbsent', [key, value])).rowCount === 1;
  }

  async setSetting(key: string, value: string): Promise<void> {
    await run(this.pool, 'upsertSetting', [key, value]);
  }

  // residents, devices, contacts

  async createResident(r: Omit<Resident, 'createdAt' | 'medicalNotes'> & { medicalNotes?: string | null }): Promise<Resident> {
    const resident: Resident = {
      id: r.id,
      name: r.name,
      birthDate: r.birthDate,
      timezone: r.timezone,
      homeLocation: r.homeLocation,
      medicalNotes: r.medicalNotes ?? null,
      createdAt: Date.now(),
    };
    try {
      await run(this.pool, 'insertResident', [
        resident.id,
        resident.name,
        resident.birthDate,
        resident.timezone,
        json(resident.homeLocation),
        resident.medicalNotes,
        resident.createdAt,
      ]);
    } catch (err) {
      throw constraintError(err, { duplicate: `resident ${r.id} already exists` });
    }
    return resident;
  }

  async getResident(id: string): Promise<Resident | null> {
    const { rows } = await run<ResidentRow>(this.pool, 'getResident', [id]);
    return rows.length ? toResident(rows[0]) : null;
  }

  async updateResident(id: string, patch: ResidentPatch): Promise<Resident | null> {
    const row = await updateRow<ResidentRow, ResidentPatch>(this.pool, 'residents', RESIDENT_COLUMNS, id, patch, (k, v) =>
      k === 'homeLocation' ? json(v) : v,
    );
    if (row === undefined) return this.getResident(id);
    return row ? toResident(row) : null;
  }

  async listResidents(opts: { limit?: number; after?: string } = {}): Promise<Resident[]> {
    const { rows } = await run<ResidentRow>(this.pool, 'listResidents', [opts.after ?? '', clampLimit(opts.limit)]);
    return rows.map(toResident);
  }

  async createDevice(d: { deviceId: string; residentId: string; tokenHash: string }): Promise<Device> {
    const createdAt = Date.now();
    try {
      await run(this.pool, 'insertDevice', [d.deviceId, d.residentId, d.tokenHash, createdAt]);
    } catch (err) {
      throw constraintError(err, {
        duplicate: `device ${d.deviceId} is already registered`,
        missingResident: `resident ${d.residentId} does not exist`,
      });
    }
    return { deviceId: d.deviceId, residentId: d.residentId, createdAt };
  }

  async findDeviceByTokenHash(tokenHash: string): Promise<Device | null> {
    const { rows } = await run<DeviceRow>(this.pool, 'deviceByTokenHash', [tokenHash]);
    return rows.length ? toDevice(rows[0]) : null;
  }

  async setDeviceToken(deviceId: string, tokenHash: string | null): Promise<Device | null> {
    try {
      const { rows } = await run<DeviceRow>(this.pool, 'setDeviceToken', [deviceId, tokenHash]);
      return rows.length ? toDevice(rows[0]) : null;
    } catch (err) {
      if (err instanceof pg.DatabaseError && err.code === UNIQUE_VIOLATION) throw new VigilError('CONFLICT', 'token hash is already in use');
      throw err;
    }
  }

  async getDevice(deviceId: string): Promise<Device | null> {
    const { rows } = await run<DeviceRow>(this.pool, 'deviceById', [deviceId]);
    return rows.length ? toDevice(rows[0]) : null;
  }

  async listDevices(residentId: string): Promise<Device[]> {
    return (await run<DeviceRow>(this.pool, 'listDevices', [residentId])).rows.map(toDevice);
  }

  async createContact(c: Omit<Contact, 'createdAt' | 'preferences'> & { preferences?: ContactPreferences }): Promise<Contact> {
    const contact: Contact = {
      id: c.id,
      residentId: c.residentId,
      name: c.name,
      phone: c.phone,
      email: c.email,
      webhookUrl: c.webhookUrl,
      webhookSecret: c.webhookSecret,
      preferences: c.preferences ?? {},
      createdAt: Date.now(),
    };
    try {
      await run(this.pool, 'insertContact', [
        contact.id,
        contact.residentId,
        contact.name,
        contact.phone,
        contact.email,
        contact.webhookUrl,
        contact.webhookSecret,
        JSON.stringify(contact.preferences),
        contact.createdAt,
      ]);
    } catch (err) {
      throw constraintError(err, {
        duplicate: `contact ${c.id} already exists`,
        missingResident: `resident ${c.residentId} does not exist`,
      });
    }
    return contact;
  }

  async getContact(id: string): Promise<Contact | null> {
    const { rows } = await run<ContactRow>(this.pool, 'getContact', [id]);
    return rows.length ? toContact(rows[0]) : null;
  }

  async listContacts(residentId: string): Promise<Contact[]> {
    return (await run<ContactRow>(this.pool, 'listContacts', [residentId])).rows.map(toContact);
  }

  async updateContact(id: string, patch: ContactPatch): Promise<Contact | null> {
    // preferences is NOT NULL: a null patch clears it to {}, as the SQLite store reads it back.
    const row = await updateRow<ContactRow, ContactPatch>(this.pool, 'contacts', CONTACT_COLUMNS, id, patch, (k, v) =>
      k === 'preferences' ? JSON.stringify(v ?? {}) : v,
    );
    if (row === undefined) return this.getContact(id);
    return row ? toContact(row) : null;
  }

  async deleteContact(id: string): Promise<boolean> {
    return (await run(this.pool, 'deleteContact', [id])).rowCount === 1;
  }

  // alerts and outbox

  async getAlert(id: string): Promise<Alert | null> {
    const { rows } = await run<AlertRow>(this.pool, 'getAlert', [id]);
    return rows.length ? toAlert(rows[0]) : null;
  }

  async listAlerts(filter: AlertFilter = {}): Promise<Alert[]> {
    const columns = { residentId: 'resident_id', state: 'state', type: 'type' } as const;
    const used = (Object.keys(columns) as (keyof typeof columns)[]).filter((k) => filter[k] !== undefined);
    const conditions = used.map((k, i) => `${columns[k]} = $${i + 1}`);
    const values: unknown[] = used.map((k) => filter[k]);
    if (filter.after) {
      // A row comparison: (opened_at, id) below the cursor's, through the (…, opened_at, id) indexes.
      conditions.push(`(opened_at, id) < ($${values.length + 1}::bigint, $${values.length + 2}::text)`);
      values.push(filter.after.openedAt, filter.after.id);
    }
    const where = conditions.length ? 'WHERE ' + conditions.join(' AND ') : '';
    const { rows } = await this.pool.query<AlertRow>({
      // One named statement per combination of filters, like the SQLite store's cache.
      name: `vigil_listAlerts_${used.join('_')}${filter.after ? '_after' : ''}`,
      text: `SELECT * FROM alerts ${where} ORDER BY opened_at DESC, id DESC LIMIT $${values.length + 1}`,
      values: [...values, clampLimit(filter.limit)],
    });
    return rows.map(toAlert);
  }

  async countOpenAlerts(): Promise<number> {
    return (await run<{ n: number }>(this.pool, 'countOpenAlerts', [])).rows[0].n;
  }

  async acknowledgeAlert(id: string, by: string, note: string | null, at: number): Promise<Alert | null> {
    await run(this.pool, 'acknowledgeAlert', [id, at, by, note]);
    return this.getAlert(id);
  }

  /**
   * Under the resident's batch lock (see invariant 3): a batch that read the alert as open
   * has committed its recurrence before, or reads it again as resolved after.
   */
  async resolveAlert(id: string, by: string, note: string | null, at: number): Promise<Alert | null> {
    return inTransaction(this.pool, async (client) => {
      const found = await run<{ resident_id: string }>(client, 'alertResident', [id]);
      if (!found.rows.length) return null;
      await run(client, 'lockResidents', [[found.rows[0].resident_id]]);
      const { rows } = await run<AlertRow>(client, 'resolveAlertBy', [id, at, by, note]);
      if (rows.length) return toAlert(rows[0]);
      const current = await run<AlertRow>(client, 'getAlert', [id]);
      return toAlert(current.rows[0]);
    });
  }

  /**
   * The batch is applied optimistically, as in the SQLite store: when the transaction would
   * create alerts whose outbox rows are not built yet, it rolls back, their rows are built
   * (outside any transaction, see OutboxNeeded), and it runs again. Each round builds rows
   * for at least one more raise of the batch, so this ends. `outboxFor` must therefore be
   * free of side effects: it may be called for an alert that another worker then creates first.
   */
  async commitAlertBatch(
    changes: AlertChange[],
    outboxFor: (alert: Alert) => Promise<OutboxItem[]> | OutboxItem[],
    checkpoint: BatchCheckpoint,
  ): Promise<Alert[]> {
    // Most batches change no alert: their commit is the checkpoint (and its state) alone.
    if (changes.length === 0) {
      const { group, partition, sequence, snapshot, fence, state } = checkpoint;
      await this.writeCheckpoint(group, partition, sequence, snapshot, fence, state);
      return [];
    }
    const outboxes = new Map<string, OutboxItem[]>();
    for (;;) {
      try {
        return await inTransaction(this.pool, (client) => applyBatch(client, changes, outboxes, checkpoint));
      } catch (err) {
        if (!(err instanceof OutboxNeeded)) throw err;
        for (const alert of err.alerts) outboxes.set(alert.id, await outboxFor(alert));
      }
    }
  }

  async claimOutbox(now: number, limit: number): Promise<OutboxItem[]> {
    return (await run<OutboxRow>(this.pool, 'claimOutbox', [now, limit])).rows.map(toOutboxItem);
  }

  async completeOutbox(
    id: string,
    result: { ok: true; providerId?: string } | { ok: false; error: string; retryAt: number | null },
    now: number,
  ): Promise<void> {
    if (result.ok) await run(this.pool, 'outboxSent', [id, result.providerId ?? null, now]);
    else if (result.retryAt === null) await run(this.pool, 'outboxFailed', [id, result.error, now]);
    else await run(this.pool, 'outboxRetry', [id, result.retryAt, result.error, now]);
  }

  async requeueStuckOutbox(claimedBefore: number, now: number): Promise<number> {
    return (await run(this.pool, 'requeueStuck', [now, claimedBefore])).rowCount ?? 0;
  }

  async listOutbox(alertId: string): Promise<OutboxItem[]> {
    return (await run<OutboxRow>(this.pool, 'listOutbox', [alertId])).rows.map(toOutboxItem);
  }

  async enqueueOutbox(items: OutboxItem[]): Promise<number> {
    if (items.length === 0) return 0;
    return (await run(this.pool, 'insertOutbox', [JSON.stringify(items.map(outboxRecord))])).rowCount ?? 0;
  }

  async cancelOutbox(alertId: string, reason: string, now: number): Promise<number> {
    return (await run(this.pool, 'cancelOutbox', [alertId, reason, now])).rowCount ?? 0;
  }

  async recordDelivery(channel: string, providerId: string, status: 'delivered' | 'failed', error: string | null, now: number): Promise<OutboxItem | null> {
    const reported = await run<OutboxRow>(this.pool, 'outboxReport', [channel, providerId, status, error, now]);
    if (reported.rows.length) return toOutboxItem(reported.rows[0]);
    // Nothing moved: no such row, or one already final; it is returned as it is.
    const { rows } = await run<OutboxRow>(this.pool, 'outboxByProvider', [channel, providerId]);
    return rows.length ? toOutboxItem(rows[0]) : null;
  }

  // API keys

  async createApiKey(k: Omit<ApiKey, 'revokedAt'>): Promise<ApiKey> {
    try {
      await run(this.pool, 'insertApiKey', [k.id, k.name, k.keyHash, JSON.stringify(k.scopes), json(k.residentIds), k.createdAt]);
    } catch (err) {
      if (err instanceof pg.DatabaseError && err.code === UNIQUE_VIOLATION && err.constraint === 'api_keys_key_hash_key') {
        throw new VigilError('CONFLICT', 'key hash is already in use');
      }
      throw constraintError(err, { duplicate: `API key ${k.id} already exists` });
    }
    return { ...k, scopes: [...k.scopes], residentIds: k.residentIds === null ? null : [...k.residentIds], revokedAt: null };
  }

  async findApiKeyByHash(keyHash: string): Promise<ApiKey | null> {
    const { rows } = await run<ApiKeyRow>(this.pool, 'apiKeyByHash', [keyHash]);
    return rows.length ? toApiKey(rows[0]) : null;
  }

  async listApiKeys(): Promise<ApiKey[]> {
    return (await run<ApiKeyRow>(this.pool, 'listApiKeys', [])).rows.map(toApiKey);
  }

  async revokeApiKey(id: string, at: number): Promise<ApiKey | null> {
    const { rows } = await run<ApiKeyRow>(this.pool, 'revokeApiKey', [id, at]);
    return rows.length ? toApiKey(rows[0]) : null;
  }

  // processing

  async acquireLease(group: string, partition: number, owner: string, ttlMs: number, now: number): Promise<Lease | null> {
    const expiresAt = now + ttlMs;
    const { rows } = await run<{ epoch: number }>(this.pool, 'acquireLease', [group, partition, owner, now, expiresAt]);
    return rows.length ? { group, partition, owner, epoch: rows[0].epoch, expiresAt } : null;
  }

  /** Even an expired lease renews while nobody took it: no one else can have written under it. */
  async renewLease(lease: Lease, ttlMs: number, now: number): Promise<Lease | null> {
    const expiresAt = now + ttlMs;
    const { rowCount } = await run(this.pool, 'renewLease', [lease.group, lease.partition, lease.owner, lease.epoch, expiresAt]);
    return rowCount === 1 ? { ...lease, expiresAt } : null;
  }

  async releaseLease(lease: Lease): Promise<void> {
    await run(this.pool, 'releaseLease', [lease.group, lease.partition, lease.owner, lease.epoch]);
  }

  async listLeases(group: string): Promise<Lease[]> {
    return (await run<LeaseRow>(this.pool, 'listLeases', [group])).rows.map(toLease);
  }

  async getCheckpoint(group: string, partition: number): Promise<Checkpoint | null> {
    const { rows } = await run<CheckpointRow>(this.pool, 'getCheckpoint', [group, partition]);
    return rows.length ? toCheckpoint(rows[0]) : null;
  }

  async listCheckpoints(group: string): Promise<Checkpoint[]> {
    return (await run<CheckpointRow>(this.pool, 'listCheckpoints', [group])).rows.map(toCheckpoint);
  }

  async getCheckpointState(group: string, partition: number): Promise<Map<string, unknown>> {
    const { rows } = await run<{ key: string; value: unknown }>(this.pool, 'getCheckpointState', [group, partition]);
    return new Map(rows.map((r) => [r.key, r.value]));
  }

  /** Without state changes, one statement; with them, one transaction holding the checkpoint and the changes. */
  async writeCheckpoint(group: string, partition: number, sequence: string | null, snapshot: unknown, fence: Fence, state?: StateChanges): Promise<void> {
    const checkpoint = (db: Queryable) => fencedCheckpoint(db, group, partition, sequence, snapshot, fence);
    if (!changesState(state)) return checkpoint(this.pool);
    await inTransaction(this.pool, async (client) => {
      await checkpoint(client);
      await writeState(client, group, partition, state);
    });
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}
