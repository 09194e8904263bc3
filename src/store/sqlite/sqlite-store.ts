/**
 * The embedded operational store: one SQLite file, `<dataDir>/store.db`, in WAL mode.
 *
 * On-disk invariants (the rest of Vigil relies on them):
 * 1. Durability: `synchronous=FULL`, so a write whose promise resolved survives power loss.
 *    Several connections share the file (the HTTP thread and every consumer-group worker
 *    thread open their own); every read-then-write runs in a `BEGIN IMMEDIATE` transaction
 *    so writers queue on the write lock (`busy_timeout`) instead of failing when a deferred
 *    read lock cannot be upgraded.
 * 2. `devices.token_hash` is the SHA-256 of the device token, unique; the token itself is
 *    never stored; NULL is a revoked token (NULLs do not collide in the unique index).
 *    `contacts.webhook_secret` is kept as given: the notifier needs the key itself to sign
 *    webhook bodies.
 * 3. `alerts`: at most one row per (resident_id, type) with state != 'resolved' (partial
 *    unique index). An alert id is derived from its trigger, so a row is inserted at most
 *    once; 'resolved' is final.
 * 4. `outbox.id` is `alert_id:step:contact_id:channel` (CHECK), inserted with INSERT OR
 *    IGNORE in the same transaction as the alert that created it, so a notification is
 *    queued at most once. 'sent' and 'failed' are final.
 * 5. `leases.epoch` of a (group, partition) never decreases, and increases whenever the
 *    lease is taken by a new owner; a checkpoint row changes only in a transaction that
 *    found the writer's (owner, epoch) in `leases`. The alert changes, outbox rows and
 *    checkpoint of one processed batch commit together or not at all.
 * 6. JSON columns (home_location, evidence, payload, snapshot, scopes, resident_ids) hold
 *    JSON.stringify output; NULL stands for an absent value. `PRAGMA user_version` is the
 *    schema version.
 * 7. `api_keys.key_hash` is the SHA-256 of the API key, unique; the key itself is never
 *    stored. `revoked_at` is set once and never cleared.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
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
  type StateChanges,
  type Store,
} from '../types.js';

// SQLite returns JSON columns as text.
const { toResident, toDevice, toContact, toAlert, toOutboxItem, toLease, toCheckpoint } = rowMappers((v) => (v === null ? null : JSON.parse(v as string)));

/** 2: residents.medical_notes, contacts.preferences, outbox statuses delivered/cancelled. 3: api_keys. */
const SCHEMA_VERSION = 3;

interface ApiKeyRow {
  id: string;
  name: string;
  key_hash: string;
  scopes: string;
  resident_ids: string | null;
  created_at: number;
  revoked_at: number | null;
}

const toApiKey = (r: ApiKeyRow): ApiKey => ({
  id: r.id,
  name: r.name,
  keyHash: r.key_hash,
  scopes: JSON.parse(r.scopes) as string[],
  residentIds: r.resident_ids === null ? null : (JSON.parse(r.resident_ids) as string[]),
  createdAt: r.created_at,
  revokedAt: r.revoked_at,
});

const SCHEMA = `
CREATE TABLE IF NOT EXISTS settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS residents (
  id            TEXT PRIMARY KEY,
  name          TEXT NOT NULL,
  birth_date    TEXT,
  timezone      TEXT NOT NULL,
  home_location TEXT,
  medical_notes TEXT,
  created_at    INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS devices (
  device_id   TEXT PRIMARY KEY,
  resident_id TEXT NOT NULL REFERENCES residents(id),
  token_hash  TEXT,
  created_at  INTEGER NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS devices_token_hash ON devices(token_hash);
CREATE INDEX IF NOT EXISTS devices_resident ON devices(resident_id);
CREATE TABLE IF NOT EXISTS contacts (
  id             TEXT PRIMARY KEY,
  resident_id    TEXT NOT NULL REFERENCES residents(id),
  name           TEXT NOT NULL,
  phone          TEXT,
  email          TEXT,
  webhook_url    TEXT,
  webhook_secret TEXT,
  preferences    TEXT,
  created_at     INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS contacts_resident ON contacts(resident_id);
CREATE TABLE IF NOT EXISTS alerts (
  id              TEXT PRIMARY KEY,
  resident_id     TEXT NOT NULL,
  device_id       TEXT NOT NULL,
  type            TEXT NOT NULL,
  severity        TEXT NOT NULL CHECK (severity IN ('critical', 'high', 'medium', 'low')),
  state           TEXT NOT NULL CHECK (state IN ('open', 'acknowledged', 'resolved')),
  opened_at       INTEGER NOT NULL,
  detected_at     INTEGER NOT NULL,
  delay_ms        INTEGER,
  acknowledged_at INTEGER,
  acknowledged_by TEXT,
  ack_note        TEXT,
  resolved_at     INTEGER,
  last_seen_at    INTEGER NOT NULL,
  occurrences     INTEGER NOT NULL,
  evidence        TEXT NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS alerts_one_unresolved ON alerts(resident_id, type) WHERE state != 'resolved';
CREATE INDEX IF NOT EXISTS alerts_opened ON alerts(opened_at);
CREATE INDEX IF NOT EXISTS alerts_resident_opened ON alerts(resident_id, opened_at);
CREATE TABLE IF NOT EXISTS outbox (
  id              TEXT PRIMARY KEY CHECK (id = alert_id || ':' || step || ':' || contact_id || ':' || channel),
  alert_id        TEXT NOT NULL REFERENCES alerts(id),
  step            INTEGER NOT NULL,
  contact_id      TEXT NOT NULL,
  channel         TEXT NOT NULL,
  payload         TEXT NOT NULL,
  status          TEXT NOT NULL CHECK (status IN ('queued', 'sending', 'sent', 'delivered', 'failed', 'cancelled')),
  attempts        INTEGER NOT NULL,
  next_attempt_at INTEGER NOT NULL,
  last_error      TEXT,
  provider_id     TEXT,
  created_at      INTEGER NOT NULL,
  updated_at      INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS outbox_due ON outbox(next_attempt_at) WHERE status = 'queued';
CREATE INDEX IF NOT EXISTS outbox_alert ON outbox(alert_id);
CREATE INDEX IF NOT EXISTS outbox_provider ON outbox(channel, provider_id) WHERE provider_id IS NOT NULL;
CREATE TABLE IF NOT EXISTS leases (
  grp        TEXT NOT NULL,
  part       INTEGER NOT NULL,
  owner      TEXT NOT NULL,
  epoch      INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  PRIMARY KEY (grp, part)
);
CREATE TABLE IF NOT EXISTS checkpoints (
  grp        TEXT NOT NULL,
  part       INTEGER NOT NULL,
  sequence   TEXT,
  snapshot   TEXT,
  updated_at INTEGER NOT NULL,
  PRIMARY KEY (grp, part)
);
CREATE TABLE IF NOT EXISTS checkpoint_state (
  grp   TEXT NOT NULL,
  part  INTEGER NOT NULL,
  key   TEXT NOT NULL,
  value TEXT NOT NULL,
  PRIMARY KEY (grp, part, key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS api_keys (
  id           TEXT PRIMARY KEY,
  name         TEXT NOT NULL,
  key_hash     TEXT NOT NULL UNIQUE,
  scopes       TEXT NOT NULL,
  resident_ids TEXT,
  created_at   INTEGER NOT NULL,
  revoked_at   INTEGER
);
`;

const alertParams = (a: Alert) => ({
  id: a.id,
  residentId: a.residentId,
  deviceId: a.deviceId,
  type: a.type,
  severity: a.severity,
  state: a.state,
  openedAt: a.openedAt,
  detectedAt: a.detectedAt,
  delayMs: a.delayMs,
  acknowledgedAt: a.acknowledgedAt,
  acknowledgedBy: a.acknowledgedBy,
  ackNote: a.ackNote,
  resolvedAt: a.resolvedAt,
  lastSeenAt: a.lastSeenAt,
  occurrences: a.occurrences,
  evidence: JSON.stringify(a.evidence),
});

const outboxParams = (o: OutboxItem) => ({
  id: o.id,
  alertId: o.alertId,
  step: o.step,
  contactId: o.contactId,
  channel: o.channel,
  payload: JSON.stringify(o.payload),
  status: o.status,
  attempts: o.attempts,
  nextAttemptAt: o.nextAttemptAt,
  lastError: o.lastError,
  providerId: o.providerId,
  createdAt: o.createdAt,
  updatedAt: o.updatedAt,
});

/** Turns SQLite constraint failures into catalogue errors; anything else passes through. */
function constraintError(err: unknown, messages: { duplicate: string; missingResident?: string }): unknown {
  const code = (err as { code?: unknown }).code;
  if (code === 'SQLITE_CONSTRAINT_PRIMARYKEY') return new VigilError('CONFLICT', messages.duplicate);
  if (code === 'SQLITE_CONSTRAINT_FOREIGNKEY' && messages.missingResident) return new VigilError('NOT_FOUND', messages.missingResident);
  return err;
}

/**
 * Thrown inside the batch transaction (rolling it back) when it would create alerts whose
 * outbox rows have not been built yet: `outboxFor` may be async and a better-sqlite3
 * transaction cannot await.
 */
class OutboxNeeded extends Error {
  constructor(readonly alerts: Alert[]) {
    super('outbox rows needed');
  }
}

type AlertRaise = Extract<AlertChange, { kind: 'raise' }>['alert'];
type AlertResolve = Extract<AlertChange, { kind: 'resolve' }>;
type BatchCheckpoint = Parameters<Store['commitAlertBatch']>[2];

function openDatabase(path: string): Database.Database {
  const db = new Database(path);
  // First, so that the pragmas below and schema creation wait for other connections' locks.
  db.pragma('busy_timeout = 5000');
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  db.pragma('foreign_keys = ON');
  db.transaction(() => {
    const version = db.pragma('user_version', { simple: true }) as number;
    if (version > SCHEMA_VERSION) {
      throw new Error(`${path} has store schema ${version}; this Vigil knows up to ${SCHEMA_VERSION}`);
    }
    if (version === 1) migrateFrom1(db);
    // Schema 2 → 3 is one new table (api_keys), which SCHEMA's CREATE TABLE IF NOT EXISTS adds.
    db.exec(SCHEMA);
    allowRevokedTokens(db);
    db.pragma(`user_version = ${SCHEMA_VERSION}`);
  }).immediate();
  return db;
}

/** Schema 1 → 2: two new columns, and the outbox rebuilt for its wider status CHECK (SQLite cannot alter one). */
function migrateFrom1(db: Database.Database): void {
  db.exec(`
    ALTER TABLE residents ADD COLUMN medical_notes TEXT;
    ALTER TABLE contacts ADD COLUMN preferences TEXT;
    ALTER TABLE outbox RENAME TO outbox_v1;
    DROP INDEX IF EXISTS outbox_due;
    DROP INDEX IF EXISTS outbox_alert;
  `);
  db.exec(SCHEMA);
  db.exec('INSERT INTO outbox SELECT * FROM outbox_v1; DROP TABLE outbox_v1;');
}

/**
 * `devices.token_hash` became nullable (a revoked token) within schema 2: a file whose column
 * is still NOT NULL gets its devices table rebuilt (SQLite cannot drop a NOT NULL). Nothing
 * references `devices`, and older Vigils read and write the relaxed table unchanged, so the
 * schema version stays.
 */
function allowRevokedTokens(db: Database.Database): void {
  const columns = db.pragma('table_info(devices)') as { name: string; notnull: number }[];
  if (!columns.find((c) => c.name === 'token_hash')?.notnull) return;
  db.exec(`
    ALTER TABLE devices RENAME TO devices_old;
    DROP INDEX IF EXISTS devices_token_hash;
    DROP INDEX IF EXISTS devices_resident;
  `);
  db.exec(SCHEMA);
  db.exec(`
    INSERT INTO devices (device_id, resident_id, token_hash, created_at)
      SELECT device_id, resident_id, token_hash, created_at FROM devices_old;
    DROP TABLE devices_old;
  `);
}

function prepareStatements(db: Database.Database) {
  return {
    getSetting: db.prepare<[string], string>('SELECT value FROM settings WHERE key = ?').pluck(),
    insertSettingIfAbsent: db.prepare<[string, string]>('INSERT OR IGNORE INTO settings (key, value) VALUES (?, ?)'),
    upsertSetting: db.prepare<[string, string]>(
      'INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value',
    ),

    insertResident: db.prepare(
      `INSERT INTO residents (id, name, birth_date, timezone, home_location, medical_notes, created_at)
       VALUES (@id, @name, @birthDate, @timezone, @homeLocation, @medicalNotes, @createdAt)`,
    ),
    updateResident: db.prepare(
      `UPDATE residents SET name = @name, birth_date = @birthDate, timezone = @timezone, home_location = @homeLocation,
         medical_notes = @medicalNotes WHERE id = @id`,
    ),
    getResident: db.prepare<[string], ResidentRow>('SELECT * FROM residents WHERE id = ?'),
    listResidents: db.prepare<[string, number], ResidentRow>('SELECT * FROM residents WHERE id > ? ORDER BY id LIMIT ?'),
    insertDevice: db.prepare<[string, string, string, number]>(
      'INSERT INTO devices (device_id, resident_id, token_hash, created_at) VALUES (?, ?, ?, ?)',
    ),
    deviceByTokenHash: db.prepare<[string], DeviceRow>('SELECT * FROM devices WHERE token_hash = ?'),
    deviceById: db.prepare<[string], DeviceRow>('SELECT * FROM devices WHERE device_id = ?'),
    setDeviceToken: db.prepare<[string | null, string], DeviceRow>('UPDATE devices SET token_hash = ? WHERE device_id = ? RETURNING *'),
    listDevices: db.prepare<[string], DeviceRow>('SELECT * FROM devices WHERE resident_id = ? ORDER BY created_at, device_id'),
    insertContact: db.prepare(
      `INSERT INTO contacts (id, resident_id, name, phone, email, webhook_url, webhook_secret, preferences, created_at)
       VALUES (@id, @residentId, @name, @phone, @email, @webhookUrl, @webhookSecret, @preferences, @createdAt)`,
    ),
    getContact: db.prepare<[string], ContactRow>('SELECT * FROM contacts WHERE id = ?'),
    updateContact: db.prepare(
      `UPDATE contacts SET name = @name, phone = @phone, email = @email, webhook_url = @webhookUrl,
         webhook_secret = @webhookSecret, preferences = @preferences WHERE id = @id`,
    ),
    deleteContact: db.prepare<[string]>('DELETE FROM contacts WHERE id = ?'),
    listContacts: db.prepare<[string], ContactRow>('SELECT * FROM contacts WHERE resident_id = ? ORDER BY created_at, id'),

    getAlert: db.prepare<[string], AlertRow>('SELECT * FROM alerts WHERE id = ?'),
    alertExists: db.prepare<[string], number>('SELECT 1 FROM alerts WHERE id = ?').pluck(),
    unresolvedAlert: db.prepare<[string, string], AlertRow>(
      "SELECT * FROM alerts WHERE resident_id = ? AND type = ? AND state != 'resolved'",
    ),
    countOpenAlerts: db.prepare<[], number>("SELECT COUNT(*) FROM alerts WHERE state != 'resolved'").pluck(),
    insertAlert: db.prepare(
      `INSERT INTO alerts (id, resident_id, device_id, type, severity, state, opened_at, detected_at, delay_ms,
         acknowledged_at, acknowledged_by, ack_note, resolved_at, last_seen_at, occurrences, evidence)
       VALUES (@id, @residentId, @deviceId, @type, @severity, @state, @openedAt, @detectedAt, @delayMs,
         @acknowledgedAt, @acknowledgedBy, @ackNote, @resolvedAt, @lastSeenAt, @occurrences, @evidence)`,
    ),
    recurAlert: db.prepare(
      `UPDATE alerts SET occurrences = occurrences + 1, last_seen_at = MAX(last_seen_at, @seenAt),
         evidence = @evidence, severity = @severity WHERE id = @id`,
    ),
    resolveAlert: db.prepare(
      "UPDATE alerts SET state = 'resolved', resolved_at = @at, evidence = @evidence WHERE id = @id",
    ),
    acknowledgeAlert: db.prepare(
      `UPDATE alerts SET state = 'acknowledged', acknowledged_at = @at, acknowledged_by = @by, ack_note = @note
       WHERE id = @id AND state = 'open'`,
    ),
    resolveAlertBy: db.prepare(
      `UPDATE alerts SET state = 'resolved', resolved_at = @at,
         acknowledged_at = COALESCE(acknowledged_at, @at), acknowledged_by = COALESCE(acknowledged_by, @by),
         ack_note = COALESCE(@note, ack_note) WHERE id = @id AND state != 'resolved'`,
    ),

    insertOutbox: db.prepare(
      `INSERT OR IGNORE INTO outbox (id, alert_id, step, contact_id, channel, payload, status, attempts,
         next_attempt_at, last_error, provider_id, created_at, updated_at)
       VALUES (@id, @alertId, @step, @contactId, @channel, @payload, @status, @attempts,
         @nextAttemptAt, @lastError, @providerId, @createdAt, @updatedAt)`,
    ),
    dueOutbox: db.prepare<[number, number], OutboxRow>(
      "SELECT * FROM outbox WHERE status = 'queued' AND next_attempt_at <= ? ORDER BY next_attempt_at, created_at, id LIMIT ?",
    ),
    markSending: db.prepare<[number, string]>(
      "UPDATE outbox SET status = 'sending', attempts = attempts + 1, updated_at = ? WHERE id = ?",
    ),
    // Only a row being sent can complete, so a late report never reopens a final row.
    outboxSent: db.prepare<[string | null, number, string]>(
      "UPDATE outbox SET status = 'sent', provider_id = ?, updated_at = ? WHERE id = ? AND status = 'sending'",
    ),
    outboxRetry: db.prepare<[number, string, number, string]>(
      `UPDATE outbox SET status = 'queued', next_attempt_at = ?, last_error = ?, updated_at = ?
       WHERE id = ? AND status = 'sending'`,
    ),
    outboxFailed: db.prepare<[string, number, string]>(
      "UPDATE outbox SET status = 'failed', last_error = ?, updated_at = ? WHERE id = ? AND status = 'sending'",
    ),
    requeueStuck: db.prepare<[number, number, number]>(
      "UPDATE outbox SET status = 'queued', next_attempt_at = ?, updated_at = ? WHERE status = 'sending' AND updated_at < ?",
    ),
    cancelOutbox: db.prepare<[string, number, string]>(
      "UPDATE outbox SET status = 'cancelled', last_error = ?, updated_at = ? WHERE alert_id = ? AND status = 'queued'",
    ),
    outboxByProvider: db.prepare<[string, string], OutboxRow>('SELECT * FROM outbox WHERE channel = ? AND provider_id = ?'),
    // A report only moves a row the provider took; `delivered` is final, a later `failed` does not undo it.
    outboxReport: db.prepare<[string, string | null, number, string]>(
      "UPDATE outbox SET status = ?, last_error = ?, updated_at = ? WHERE id = ? AND status IN ('sent', 'sending')",
    ),
    listOutbox: db.prepare<[string], OutboxRow>(
      'SELECT * FROM outbox WHERE alert_id = ? ORDER BY created_at, step, contact_id, channel',
    ),

    getLease: db.prepare<[string, number], LeaseRow>('SELECT * FROM leases WHERE grp = ? AND part = ?'),
    putLease: db.prepare<[string, number, string, number, number]>(
      `INSERT INTO leases (grp, part, owner, epoch, expires_at) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (grp, part) DO UPDATE SET owner = excluded.owner, epoch = excluded.epoch, expires_at = excluded.expires_at`,
    ),
    renewLease: db.prepare<[number, string, number, string, number]>(
      'UPDATE leases SET expires_at = ? WHERE grp = ? AND part = ? AND owner = ? AND epoch = ?',
    ),
    releaseLease: db.prepare<[string, number, string, number]>(
      'UPDATE leases SET expires_at = 0 WHERE grp = ? AND part = ? AND owner = ? AND epoch = ?',
    ),
    listLeases: db.prepare<[string], LeaseRow>('SELECT * FROM leases WHERE grp = ? ORDER BY part'),

    getCheckpoint: db.prepare<[string, number], CheckpointRow>('SELECT * FROM checkpoints WHERE grp = ? AND part = ?'),
    listCheckpoints: db.prepare<[string], CheckpointRow>('SELECT * FROM checkpoints WHERE grp = ? ORDER BY part'),
    putCheckpoint: db.prepare<[string, number, string | null, string | null, number]>(
      `INSERT INTO checkpoints (grp, part, sequence, snapshot, updated_at) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (grp, part) DO UPDATE SET sequence = excluded.sequence, snapshot = excluded.snapshot,
         updated_at = excluded.updated_at`,
    ),
    getCheckpointState: db.prepare<[string, number], { key: string; value: string }>('SELECT key, value FROM checkpoint_state WHERE grp = ? AND part = ?'),
    putCheckpointState: db.prepare<[string, number, string, string]>(
      'INSERT INTO checkpoint_state (grp, part, key, value) VALUES (?, ?, ?, ?) ON CONFLICT (grp, part, key) DO UPDATE SET value = excluded.value',
    ),
    clearCheckpointState: db.prepare<[string, number]>('DELETE FROM checkpoint_state WHERE grp = ? AND part = ?'),

    insertApiKey: db.prepare(
      `INSERT INTO api_keys (id, name, key_hash, scopes, resident_ids, created_at, revoked_at)
       VALUES (@id, @name, @keyHash, @scopes, @residentIds, @createdAt, NULL)`,
    ),
    apiKeyByHash: db.prepare<[string], ApiKeyRow>('SELECT * FROM api_keys WHERE key_hash = ?'),
    listApiKeys: db.prepare<[], ApiKeyRow>('SELECT * FROM api_keys ORDER BY created_at, id'),
    revokeApiKey: db.prepare<[number, string], ApiKeyRow>(
      'UPDATE api_keys SET revoked_at = COALESCE(revoked_at, ?) WHERE id = ? RETURNING *',
    ),
  };
}

export class SqliteStore implements Store {
  private readonly q;
  /** listAlerts statements, one per combination of filters, prepared on first use. */
  private readonly alertQueries = new Map<string, Database.Statement<[Record<string, unknown>], AlertRow>>();

  private readonly claimTx;
  private readonly acquireTx;
  private readonly checkpointTx;
  private readonly batchTx;

  static open(dataDir: string): SqliteStore {
    mkdirSync(dataDir, { recursive: true });
    return new SqliteStore(openDatabase(join(dataDir, 'store.db')));
  }

  private constructor(private readonly db: Database.Database) {
    this.q = prepareStatements(db);
    this.claimTx = db.transaction((now: number, limit: number) => this.claim(now, limit));
    this.acquireTx = db.transaction((group: string, partition: number, owner: string, ttlMs: number, now: number) =>
      this.acquire(group, partition, owner, ttlMs, now),
    );
    this.checkpointTx = db.transaction(
      (group: string, partition: number, sequence: string | null, snapshot: unknown, fence: Fence, state: StateChanges | undefined) =>
        this.fencedCheckpoint(group, partition, sequence, snapshot, fence, state),
    );
    this.batchTx = db.transaction(
      (changes: AlertChange[], outboxes: Map<string, OutboxItem[]>, checkpoint: BatchCheckpoint) =>
        this.applyBatch(changes, outboxes, checkpoint),
    );
  }

  // settings

  async getSetting(key: string): Promise<string | null> {
    return this.q.getSetting.get(key) ?? null;
  }

  async setSettingIfAbsent(key: string, value: string): Promise<boolean> {
    return this.q.insertSettingIfAbsent.run(key, value).changes === 1;
  }

  async setSetting(key: string, value: string): Promise<void> {
    this.q.upsertSetting.run(key, value);
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
      this.q.insertResident.run({
        ...resident,
        homeLocation: resident.homeLocation === null ? null : JSON.stringify(resident.homeLocation),
      });
    } catch (err) {
      throw constraintError(err, { duplicate: `resident ${r.id} already exists` });
    }
    return resident;
  }

  async getResident(id: string): Promise<Resident | null> {
    const row = this.q.getResident.get(id);
    return row ? toResident(row) : null;
  }

  async updateResident(id: string, patch: ResidentPatch): Promise<Resident | null> {
    const current = await this.getResident(id);
    if (!current) return null;
    const next: Resident = { ...current, ...definedOnly(patch) };
    this.q.updateResident.run({ ...next, homeLocation: next.homeLocation === null ? null : JSON.stringify(next.homeLocation) });
    return next;
  }

  async listResidents(opts: { limit?: number; after?: string } = {}): Promise<Resident[]> {
    return this.q.listResidents.all(opts.after ?? '', clampLimit(opts.limit)).map(toResident);
  }

  async createDevice(d: { deviceId: string; residentId: string; tokenHash: string }): Promise<Device> {
    const createdAt = Date.now();
    try {
      this.q.insertDevice.run(d.deviceId, d.residentId, d.tokenHash, createdAt);
    } catch (err) {
      throw constraintError(err, {
        duplicate: `device ${d.deviceId} is already registered`,
        missingResident: `resident ${d.residentId} does not exist`,
      });
    }
    return { deviceId: d.deviceId, residentId: d.residentId, createdAt };
  }

  async findDeviceByTokenHash(tokenHash: string): Promise<Device | null> {
    const row = this.q.deviceByTokenHash.get(tokenHash);
    return row ? toDevice(row) : null;
  }

  async setDeviceToken(deviceId: string, tokenHash: string | null): Promise<Device | null> {
    let row: DeviceRow | undefined;
    try {
      row = this.q.setDeviceToken.get(tokenHash, deviceId);
    } catch (err) {
      if ((err as { code?: unknown }).code === 'SQLITE_CONSTRAINT_UNIQUE') throw new VigilError('CONFLICT', 'token hash is already in use');
      throw err;
    }
    return row ? toDevice(row) : null;
  }

  async getDevice(deviceId: string): Promise<Device | null> {
    const row = this.q.deviceById.get(deviceId);
    return row ? toDevice(row) : null;
  }

  async listDevices(residentId: string): Promise<Device[]> {
    return this.q.listDevices.all(residentId).map(toDevice);
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
      this.q.insertContact.run({ ...contact, preferences: JSON.stringify(contact.preferences) });
    } catch (err) {
      throw constraintError(err, {
        duplicate: `contact ${c.id} already exists`,
        missingResident: `resident ${c.residentId} does not exist`,
      });
    }
    return contact;
  }

  async listContacts(residentId: string): Promise<Contact[]> {
    return this.q.listContacts.all(residentId).map(toContact);
  }

  async getContact(id: string): Promise<Contact | null> {
    const row = this.q.getContact.get(id);
    return row ? toContact(row) : null;
  }

  async updateContact(id: string, patch: ContactPatch): Promise<Contact | null> {
    const current = await this.getContact(id);
    if (!current) return null;
    const next: Contact = { ...current, ...definedOnly(patch) };
    this.q.updateContact.run({ ...next, preferences: JSON.stringify(next.preferences) });
    return next;
  }

  async deleteContact(id: string): Promise<boolean> {
    return this.q.deleteContact.run(id).changes === 1;
  }

  // alerts and outbox

  async getAlert(id: string): Promise<Alert | null> {
    const row = this.q.getAlert.get(id);
    return row ? toAlert(row) : null;
  }

  async listAlerts(filter: AlertFilter = {}): Promise<Alert[]> {
    const params: Record<string, unknown> = { limit: clampLimit(filter.limit) };
    if (filter.residentId !== undefined) params.residentId = filter.residentId;
    if (filter.state !== undefined) params.state = filter.state;
    if (filter.type !== undefined) params.type = filter.type;
    if (filter.after !== undefined) {
      params.afterOpenedAt = filter.after.openedAt;
      params.afterId = filter.after.id;
    }
    return this.alertQuery(params).all(params).map(toAlert);
  }

  private alertQuery(params: Record<string, unknown>) {
    const columns = { residentId: 'resident_id', state: 'state', type: 'type' } as const;
    const used = (Object.keys(columns) as (keyof typeof columns)[]).filter((k) => k in params);
    const after = 'afterId' in params;
    const key = used.join(',') + (after ? ',after' : '');
    let stmt = this.alertQueries.get(key);
    if (!stmt) {
      const conditions = used.map((k) => `${columns[k]} = @${k}`);
      if (after) conditions.push('(opened_at < @afterOpenedAt OR (opened_at = @afterOpenedAt AND id < @afterId))');
      const where = conditions.length ? 'WHERE ' + conditions.join(' AND ') : '';
      stmt = this.db.prepare<[Record<string, unknown>], AlertRow>(
        `SELECT * FROM alerts ${where} ORDER BY opened_at DESC, id DESC LIMIT @limit`,
      );
      this.alertQueries.set(key, stmt);
    }
    return stmt;
  }

  async countOpenAlerts(): Promise<number> {
    return this.q.countOpenAlerts.get() ?? 0;
  }

  async acknowledgeAlert(id: string, by: string, note: string | null, at: number): Promise<Alert | null> {
    this.q.acknowledgeAlert.run({ id, by, note, at });
    return this.getAlert(id);
  }

  async resolveAlert(id: string, by: string, note: string | null, at: number): Promise<Alert | null> {
    this.q.resolveAlertBy.run({ id, by, note, at });
    return this.getAlert(id);
  }

  /**
   * `outboxFor` may be async, and a better-sqlite3 transaction cannot await. So the batch is
   * applied optimistically: when the transaction would create alerts whose outbox rows are not
   * built yet, it rolls back, their rows are built, and it runs again. Each round builds rows
   * for at least one more raise of the batch, so this ends. `outboxFor` must therefore be free
   * of side effects: it may be called for an alert that another connection then creates first.
   */
  async commitAlertBatch(
    changes: AlertChange[],
    outboxFor: (alert: Alert) => Promise<OutboxItem[]> | OutboxItem[],
    checkpoint: BatchCheckpoint,
  ): Promise<Alert[]> {
    const outboxes = new Map<string, OutboxItem[]>();
    for (;;) {
      try {
        return this.batchTx.immediate(changes, outboxes, checkpoint);
      } catch (err) {
        if (!(err instanceof OutboxNeeded)) throw err;
        for (const alert of err.alerts) outboxes.set(alert.id, await outboxFor(alert));
      }
    }
  }

  private applyBatch(changes: AlertChange[], outboxes: Map<string, OutboxItem[]>, checkpoint: BatchCheckpoint): Alert[] {
    // Fence first: a worker that lost its lease should not even build outbox rows.
    this.fencedCheckpoint(checkpoint.group, checkpoint.partition, checkpoint.sequence, checkpoint.snapshot, checkpoint.fence, checkpoint.state);
    const created: Alert[] = [];
    for (const change of changes) {
      if (change.kind === 'raise') this.raise(change.alert, created);
      else this.resolve(change);
    }
    const missing = created.filter((a) => !outboxes.has(a.id));
    if (missing.length) throw new OutboxNeeded(missing);
    for (const alert of created) {
      for (const item of outboxes.get(alert.id)!) this.q.insertOutbox.run(outboxParams(item));
    }
    return created;
  }

  private raise(raise: AlertRaise, created: Alert[]): void {
    if (this.q.alertExists.get(raise.id)) return; // a replay of a raise already applied
    const open = this.q.unresolvedAlert.get(raise.residentId, raise.type);
    if (open) {
      this.q.recurAlert.run({
        id: open.id,
        seenAt: raise.openedAt,
        evidence: JSON.stringify(raise.evidence),
        severity: higherSeverity(open.severity, raise.severity),
      });
      return;
    }
    const alert = newAlert(raise);
    this.q.insertAlert.run(alertParams(alert));
    created.push(alert);
  }

  private resolve(change: AlertResolve): void {
    const open = this.q.unresolvedAlert.get(change.residentId, change.type);
    if (!open) return;
    const before = JSON.parse(open.evidence as string) as Record<string, unknown>;
    const evidence = change.evidence ? { ...before, resolution: change.evidence } : before;
    this.q.resolveAlert.run({ id: open.id, at: change.at, evidence: JSON.stringify(evidence) });
  }

  async claimOutbox(now: number, limit: number): Promise<OutboxItem[]> {
    return this.claimTx.immediate(now, limit);
  }

  private claim(now: number, limit: number): OutboxItem[] {
    return this.q.dueOutbox.all(now, limit).map((row) => {
      this.q.markSending.run(now, row.id);
      return toOutboxItem({ ...row, status: 'sending', attempts: row.attempts + 1, updated_at: now });
    });
  }

  async completeOutbox(
    id: string,
    result: { ok: true; providerId?: string } | { ok: false; error: string; retryAt: number | null },
    now: number,
  ): Promise<void> {
    if (result.ok) this.q.outboxSent.run(result.providerId ?? null, now, id);
    else if (result.retryAt === null) this.q.outboxFailed.run(result.error, now, id);
    else this.q.outboxRetry.run(result.retryAt, result.error, now, id);
  }

  async requeueStuckOutbox(claimedBefore: number, now: number): Promise<number> {
    return this.q.requeueStuck.run(now, now, claimedBefore).changes;
  }

  async listOutbox(alertId: string): Promise<OutboxItem[]> {
    return this.q.listOutbox.all(alertId).map(toOutboxItem);
  }

  async enqueueOutbox(items: OutboxItem[]): Promise<number> {
    let inserted = 0;
    this.db.transaction(() => {
      for (const item of items) inserted += this.q.insertOutbox.run(outboxParams(item)).changes;
    })();
    return inserted;
  }

  async cancelOutbox(alertId: string, reason: string, now: number): Promise<number> {
    return this.q.cancelOutbox.run(reason, now, alertId).changes;
  }

  async recordDelivery(channel: string, providerId: string, status: 'delivered' | 'failed', error: string | null, now: number): Promise<OutboxItem | null> {
    const row = this.q.outboxByProvider.get(channel, providerId);
    if (!row) return null;
    this.q.outboxReport.run(status, error, now, row.id);
    return toOutboxItem(this.q.listOutbox.all(row.alert_id).find((r) => r.id === row.id)!);
  }

  // API keys

  async createApiKey(k: Omit<ApiKey, 'revokedAt'>): Promise<ApiKey> {
    try {
      this.q.insertApiKey.run({
        ...k,
        scopes: JSON.stringify(k.scopes),
        residentIds: k.residentIds === null ? null : JSON.stringify(k.residentIds),
      });
    } catch (err) {
      if ((err as { code?: unknown }).code === 'SQLITE_CONSTRAINT_UNIQUE') throw new VigilError('CONFLICT', 'key hash is already in use');
      throw constraintError(err, { duplicate: `API key ${k.id} already exists` });
    }
    return { ...k, scopes: [...k.scopes], residentIds: k.residentIds === null ? null : [...k.residentIds], revokedAt: null };
  }

  async findApiKeyByHash(keyHash: string): Promise<ApiKey | null> {
    const row = this.q.apiKeyByHash.get(keyHash);
    return row ? toApiKey(row) : null;
  }

  async listApiKeys(): Promise<ApiKey[]> {
    return this.q.listApiKeys.all().map(toApiKey);
  }

  async revokeApiKey(id: string, at: number): Promise<ApiKey | null> {
    const row = this.q.revokeApiKey.get(at, id);
    return row ? toApiKey(row) : null;
  }

  // processing

  async acquireLease(group: string, partition: number, owner: string, ttlMs: number, now: number): Promise<Lease | null> {
    return this.acquireTx.immediate(group, partition, owner, ttlMs, now);
  }

  private acquire(group: string, partition: number, owner: string, ttlMs: number, now: number): Lease | null {
    const row = this.q.getLease.get(group, partition);
    if (row && row.owner !== owner && row.expires_at > now) return null;
    const epoch = !row ? 1 : row.owner === owner ? row.epoch : row.epoch + 1;
    const lease: Lease = { group, partition, owner, epoch, expiresAt: now + ttlMs };
    this.q.putLease.run(group, partition, owner, epoch, lease.expiresAt);
    return lease;
  }

  /** Even an expired lease renews while nobody took it: no one else can have written under it. */
  async renewLease(lease: Lease, ttlMs: number, now: number): Promise<Lease | null> {
    const expiresAt = now + ttlMs;
    const { changes } = this.q.renewLease.run(expiresAt, lease.group, lease.partition, lease.owner, lease.epoch);
    return changes === 1 ? { ...lease, expiresAt } : null;
  }

  async releaseLease(lease: Lease): Promise<void> {
    this.q.releaseLease.run(lease.group, lease.partition, lease.owner, lease.epoch);
  }

  async listLeases(group: string): Promise<Lease[]> {
    return this.q.listLeases.all(group).map(toLease);
  }

  async getCheckpoint(group: string, partition: number): Promise<Checkpoint | null> {
    const row = this.q.getCheckpoint.get(group, partition);
    return row ? toCheckpoint(row) : null;
  }

  async listCheckpoints(group: string): Promise<Checkpoint[]> {
    return this.q.listCheckpoints.all(group).map(toCheckpoint);
  }

  async getCheckpointState(group: string, partition: number): Promise<Map<string, unknown>> {
    return new Map(this.q.getCheckpointState.all(group, partition).map((r) => [r.key, JSON.parse(r.value) as unknown]));
  }

  async writeCheckpoint(group: string, partition: number, sequence: string | null, snapshot: unknown, fence: Fence, state?: StateChanges): Promise<void> {
    this.checkpointTx.immediate(group, partition, sequence, snapshot, fence, state);
  }

  /** Runs inside a transaction, so the fence cannot change between the check and the write. */
  private fencedCheckpoint(group: string, partition: number, sequence: string | null, snapshot: unknown, fence: Fence, state?: StateChanges): void {
    const lease = this.q.getLease.get(group, partition);
    if (!lease || lease.owner !== fence.owner || lease.epoch !== fence.epoch) throw new LeaseLostError(group, partition);
    const json = snapshot === undefined || snapshot === null ? null : JSON.stringify(snapshot);
    this.q.putCheckpoint.run(group, partition, sequence, json, Date.now());
    if (!state) return;
    if (state.clear) this.q.clearCheckpointState.run(group, partition);
    for (const [key, value] of state.put) this.q.putCheckpointState.run(group, partition, key, JSON.stringify(value));
  }

  async close(): Promise<void> {
    this.db.close();
  }
}
