/**
 * The operational store: residents, devices, contacts, alerts, the notification outbox,
 * consumer-group checkpoints and leases, and settings (DESIGN §1, §2).
 *
 * Every method is async so that networked engines (PostgreSQL, DynamoDB) fit the same
 * interface. Guarantees every backend keeps (store/testing/conformance.ts checks them):
 * - A write has happened (durably) when its promise resolves.
 * - `commitAlertBatch` applies alert changes, outbox rows and the checkpoint atomically.
 * - Checkpoint writes are fenced: they succeed only for the current lease holder and epoch,
 *   so a worker that lost its lease can never move a checkpoint.
 * - Lease acquisition is a compare-and-set: two workers never both hold a live lease.
 */
export interface GeoPoint {
  lat: number;
  lon: number;
  radiusM?: number;
}

export interface Resident {
  id: string;
  name: string;
  birthDate: string | null;
  timezone: string;
  homeLocation: GeoPoint | null;
  /** Free text for carers (allergies, conditions): sensitive, encrypted at rest. */
  medicalNotes: string | null;
  createdAt: number;
}

/** What a backend persists for a resident: the same fields, sensitive ones possibly as ciphertext strings. */
export type ResidentPatch = Partial<Pick<Resident, 'name' | 'birthDate' | 'timezone' | 'homeLocation' | 'medicalNotes'>>;

export interface Device {
  deviceId: string;
  residentId: string;
  createdAt: number;
}

export interface Contact {
  id: string;
  residentId: string;
  name: string;
  phone: string | null;
  email: string | null;
  webhookUrl: string | null;
  /** HMAC key for X-Vigil-Signature; present when webhookUrl is. */
  webhookSecret: string | null;
  /** How and when this contact wants to be reached (escalation reads it). */
  preferences: ContactPreferences;
  createdAt: number;
}

/** A browser's Web Push subscription (PushSubscription.toJSON()). */
export interface PushSubscriptionJson {
  endpoint: string;
  keys: { p256dh: string; auth: string };
}

export interface ContactPreferences {
  /** 1 = primary, 2 = secondary, …: escalation steps name contacts by role or by id. Default 1. */
  priority?: number;
  /** Channels this contact accepts, e.g. ['push', 'sms']; absent = every channel they have an address for. */
  channels?: string[];
  /** Local times 'HH:MM' between which only critical alerts reach them; others wait for the end. */
  quietHours?: { start: string; end: string };
  /** Non-urgent alerts (severity low) gathered into one message a day at this local time, 'HH:MM'. Default '08:00'. */
  digestAt?: string;
  pushSubscriptions?: PushSubscriptionJson[];
}

export type ContactPatch = Partial<Pick<Contact, 'name' | 'phone' | 'email' | 'webhookUrl' | 'webhookSecret' | 'preferences'>>;

export type AlertState = 'open' | 'acknowledged' | 'resolved';
export type Severity = 'critical' | 'high' | 'medium' | 'low';

export interface Alert {
  id: string;
  residentId: string;
  deviceId: string;
  type: string;
  severity: Severity;
  state: AlertState;
  /** Event time of the triggering reading. */
  openedAt: number;
  /** Processing time when Vigil raised it; detectedAt − openedAt is how late it was. */
  detectedAt: number;
  /** Set when the triggering data arrived late (detectedAt − openedAt beyond a few seconds). */
  delayMs: number | null;
  acknowledgedAt: number | null;
  acknowledgedBy: string | null;
  ackNote: string | null;
  resolvedAt: number | null;
  /** Event time of the latest occurrence (a recurrence updates the open alert). */
  lastSeenAt: number;
  occurrences: number;
  evidence: Record<string, unknown>;
}

/** What a detector decided; applied by `commitAlertBatch`. */
export type AlertChange =
  | {
      kind: 'raise';
      alert: Pick<Alert, 'id' | 'residentId' | 'deviceId' | 'type' | 'severity' | 'openedAt' | 'detectedAt' | 'delayMs' | 'evidence'>;
    }
  | { kind: 'resolve'; residentId: string; type: string; at: number; evidence?: Record<string, unknown> };

export type OutboxStatus = 'queued' | 'sending' | 'sent' | 'delivered' | 'failed' | 'cancelled';

export interface OutboxItem {
  /** Stable key: `${alertId}:${step}:${contactId}:${channel}`. */
  id: string;
  alertId: string;
  step: number;
  contactId: string;
  channel: string;
  /** Channel-specific payload (e.g. webhook URL and body). */
  payload: Record<string, unknown>;
  /**
   * queued → sending → sent (the provider took it) → delivered (the provider confirmed it
   * reached the phone); failed after the last attempt or when the provider reports it;
   * cancelled when the alert was acknowledged or resolved before the row was due.
   */
  status: OutboxStatus;
  attempts: number;
  nextAttemptAt: number;
  lastError: string | null;
  providerId: string | null;
  createdAt: number;
  updatedAt: number;
}

export interface Lease {
  group: string;
  partition: number;
  owner: string;
  /** Increases every time the lease changes hands: the fencing token. */
  epoch: number;
  expiresAt: number;
}

export interface Checkpoint {
  group: string;
  partition: number;
  /** Last sequence fully processed; null when nothing was yet. */
  sequence: string | null;
  /** The group's state for this partition at that sequence (detector windows, open objects). */
  snapshot: unknown;
  updatedAt: number;
}

/**
 * Keyed state kept beside a checkpoint, one entry per device: a flush writes only the entries
 * that changed since the last one, with the checkpoint (atomically where the engine allows:
 * see DynamoDbStore), so its cost follows the devices that sent, not the partition's fleet.
 */
export interface StateChanges {
  /** Deletes every entry of the partition before writing `put` (a rewind starts afresh). */
  clear?: boolean;
  put: ReadonlyArray<readonly [key: string, value: unknown]>;
}

/** Proof of ownership presented with a checkpoint write. */
export interface Fence {
  owner: string;
  epoch: number;
}

export class LeaseLostError extends Error {
  constructor(group: string, partition: number) {
    super(`lease on ${group}/${partition} is no longer ours`);
    this.name = 'LeaseLostError';
  }
}

export interface AlertFilter {
  residentId?: string;
  state?: AlertState;
  type?: string;
  limit?: number;
  /**
   * Keyset pagination: only alerts after this one in the listing order (newest first), i.e.
   * opened earlier, or at the same time with a smaller id. The last alert of a page gives the next.
   */
  after?: { openedAt: number; id: string };
}

/**
 * A key a third-party app calls the API with (docs/api.md, Third-party API). Only the SHA-256
 * of the key is stored; the key is shown once, when it is created.
 */
export interface ApiKey {
  /** `key_…`: names the key in listings, logs and rate limits (it is not the secret). */
  id: string;
  name: string;
  /** SHA-256 (hex) of the key. */
  keyHash: string;
  /** What it may do: `readings:read`, `vitals:read`, …, `admin` (api/principal.ts lists them). */
  scopes: string[];
  /** The residents it may see; null: every resident. */
  residentIds: string[] | null;
  createdAt: number;
  /** Set once by a revocation; a revoked key authenticates nothing. */
  revokedAt: number | null;
}

export interface Store {
  // settings
  getSetting(key: string): Promise<string | null>;
  /** Sets the value only if none is there; returns whether it did. */
  setSettingIfAbsent(key: string, value: string): Promise<boolean>;
  setSetting(key: string, value: string): Promise<void>;

  // residents, devices, contacts
  createResident(r: Omit<Resident, 'createdAt' | 'medicalNotes'> & { medicalNotes?: string | null }): Promise<Resident>;
  getResident(id: string): Promise<Resident | null>;
  listResidents(opts?: { limit?: number; after?: string }): Promise<Resident[]>;
  /** Fails with a `CONFLICT` VigilError if the deviceId is taken. */
  createDevice(d: { deviceId: string; residentId: string; tokenHash: string }): Promise<Device>;
  findDeviceByTokenHash(tokenHash: string): Promise<Device | null>;
  /**
   * Replaces the device's token hash (rotation): from then on the old hash finds nothing and
   * the new one finds the device. `null` revokes: the device stays registered (readings,
   * alerts, MQTT by device id) but no token finds it. Returns the device, or null when no
   * device has that id. Fails with a `CONFLICT` VigilError if another device has that hash.
   */
  setDeviceToken(deviceId: string, tokenHash: string | null): Promise<Device | null>;
  /** The device by its id (MQTT ingest, where the broker authenticated the device). */
  getDevice(deviceId: string): Promise<Device | null>;
  listDevices(residentId: string): Promise<Device[]>;
  /** Replaces the given fields; returns the resident, or null when there is none with that id. */
  updateResident(id: string, patch: ResidentPatch): Promise<Resident | null>;
  createContact(c: Omit<Contact, 'createdAt' | 'preferences'> & { preferences?: ContactPreferences }): Promise<Contact>;
  getContact(id: string): Promise<Contact | null>;
  listContacts(residentId: string): Promise<Contact[]>;
  /** Replaces the given fields; returns the contact, or null when there is none with that id. */
  updateContact(id: string, patch: ContactPatch): Promise<Contact | null>;
  /** Removes the contact (its outbox rows stay, as history); returns whether it existed. */
  deleteContact(id: string): Promise<boolean>;

  // alerts and outbox
  getAlert(id: string): Promise<Alert | null>;
  listAlerts(filter?: AlertFilter): Promise<Alert[]>;
  countOpenAlerts(): Promise<number>;
  /** open → acknowledged; returns the alert, or null when there is none with that id. */
  acknowledgeAlert(id: string, by: string, note: string | null, at: number): Promise<Alert | null>;
  /** open or acknowledged → resolved (by a person, not by the detector); returns the alert, or null when there is none. */
  resolveAlert(id: string, by: string, note: string | null, at: number): Promise<Alert | null>;
  /**
   * Atomically: applies the changes (a raise of an id that exists is a no-op; a raise while
   * another alert of that (resident, type) is unresolved updates that one instead), queues
   * outbox rows for alerts that were newly created (`outboxFor` builds them), and writes the
   * checkpoint under its fence, with its state changes. Returns the alerts that were newly created.
   */
  commitAlertBatch(
    changes: AlertChange[],
    outboxFor: (alert: Alert) => Promise<OutboxItem[]> | OutboxItem[],
    checkpoint: { group: string; partition: number; sequence: string; snapshot: unknown; fence: Fence; state?: StateChanges },
  ): Promise<Alert[]>;
  /** Queued or retry-due rows, marked `sending` so no other sender takes them. */
  claimOutbox(now: number, limit: number): Promise<OutboxItem[]>;
  completeOutbox(id: string, result: { ok: true; providerId?: string } | { ok: false; error: string; retryAt: number | null }, now: number): Promise<void>;
  /**
   * Rows left `sending` since before `claimedBefore` (their sender died: a live one finishes
   * within its timeout) go back to `queued`, due at `now`. Returns how many.
   */
  requeueStuckOutbox(claimedBefore: number, now: number): Promise<number>;
  listOutbox(alertId: string): Promise<OutboxItem[]>;
  /** Inserts the rows whose id is not there yet (an escalation's repeats); returns how many. */
  enqueueOutbox(items: OutboxItem[]): Promise<number>;
  /** The alert's `queued` rows become `cancelled` with `reason` as lastError; returns how many. */
  cancelOutbox(alertId: string, reason: string, now: number): Promise<number>;
  /**
   * A provider's report on a row it took (`sent`): `delivered`, or `failed` with its error.
   * Found by (channel, providerId); returns the row, or null when none matches.
   */
  recordDelivery(channel: string, providerId: string, status: 'delivered' | 'failed', error: string | null, now: number): Promise<OutboxItem | null>;

  // API keys (third-party API)
  /** Stores a new key, not revoked. Fails with a `CONFLICT` VigilError if the id or the hash is taken. */
  createApiKey(k: Omit<ApiKey, 'revokedAt'>): Promise<ApiKey>;
  /** The key with that hash, revoked or not (the caller refuses a revoked one); null when none has it. */
  findApiKeyByHash(keyHash: string): Promise<ApiKey | null>;
  /** Every key, revoked ones too, oldest first (createdAt, then id). */
  listApiKeys(): Promise<ApiKey[]>;
  /** Sets `revokedAt` (a second revocation keeps the first time); returns the key, or null when none has that id. */
  revokeApiKey(id: string, at: number): Promise<ApiKey | null>;

  // processing
  /** Takes the lease if it is free, expired, or already ours; returns it, or null. */
  acquireLease(group: string, partition: number, owner: string, ttlMs: number, now: number): Promise<Lease | null>;
  /** Extends a lease we hold; null when it is no longer ours. */
  renewLease(lease: Lease, ttlMs: number, now: number): Promise<Lease | null>;
  releaseLease(lease: Lease): Promise<void>;
  listLeases(group: string): Promise<Lease[]>;
  getCheckpoint(group: string, partition: number): Promise<Checkpoint | null>;
  listCheckpoints(group: string): Promise<Checkpoint[]>;
  /** Every state entry of the partition (written with its checkpoints), by key. */
  getCheckpointState(group: string, partition: number): Promise<Map<string, unknown>>;
  /** Writes the checkpoint and its state changes; throws LeaseLostError when the fence is stale. */
  writeCheckpoint(group: string, partition: number, sequence: string | null, snapshot: unknown, fence: Fence, state?: StateChanges): Promise<void>;

  close(): Promise<void>;
}
