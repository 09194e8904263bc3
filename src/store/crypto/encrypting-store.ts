/**
 * A Store that encrypts personal data on its way to any backend and decrypts it on the way
 * back (docs/security.md), so SQLite, PostgreSQL and DynamoDB get it without a change.
 *
 * Encrypted fields (AAD = the name in FIELDS):
 * - Resident `name`, `birthDate`, `medicalNotes`: the ciphertext string in place of the value.
 * - Resident `homeLocation`: `{ enc: <ciphertext of its JSON> }`, so JSON columns still hold
 *   an object.
 * - Contact `name`, `phone`, `email`.
 * `null` stays `null` (whether a contact has a phone is not secret; the number is). Ids,
 * timezones, devices, alerts, outbox rows, webhooks, preferences, checkpoints (snapshots and
 * state entries) and API keys (a name, scopes, resident ids and a hash: no personal data)
 * pass through as they are.
 *
 * Invariants:
 * 1. Rows written in clear (before encryption, or by a backend used directly) still read.
 * 2. Settings key `field_key_check` holds a known text encrypted with a key of the store;
 *    opening checks that this process can decrypt it, so a process that lost the key file,
 *    or another node that generated its own, stops at start instead of writing data under a
 *    key the others cannot read.
 * 3. Values cannot be searched or compared in the backend (random IVs): lookups go by id.
 */
import { ConfigError } from '../../core/config.js';
import type {
  Alert,
  AlertChange,
  AlertFilter,
  ApiKey,
  Checkpoint,
  Contact,
  ContactPatch,
  Device,
  Fence,
  GeoPoint,
  Lease,
  OutboxItem,
  Resident,
  ResidentPatch,
  StateChanges,
  Store,
} from '../types.js';
import { FieldCipher, FieldCipherError, isEncrypted, keyIdOf } from './field-cipher.js';

/** AAD of each encrypted field. */
export const FIELDS = {
  residentName: 'resident.name',
  residentBirthDate: 'resident.birthDate',
  residentHomeLocation: 'resident.homeLocation',
  residentMedicalNotes: 'resident.medicalNotes',
  contactName: 'contact.name',
  contactPhone: 'contact.phone',
  contactEmail: 'contact.email',
  keyCheck: 'settings.field_key_check',
} as const;

export const KEY_CHECK_SETTING = 'field_key_check';
const KEY_CHECK_TEXT = 'vigil field encryption';
const ROTATE_PAGE = 200;

interface EncryptedLocation {
  enc: string;
}
const isEncryptedLocation = (v: unknown): v is EncryptedLocation =>
  v !== null && typeof v === 'object' && isEncrypted((v as { enc?: unknown }).enc);

export class EncryptingStore implements Store {
  constructor(
    /** The backend, which sees only ciphertext for the encrypted fields. */
    readonly inner: Store,
    readonly cipher: FieldCipher,
  ) {}

  /** Wraps `inner` after checking this keyring can read what the store holds (invariant 2). */
  static async open(inner: Store, cipher: FieldCipher): Promise<EncryptingStore> {
    const store = new EncryptingStore(inner, cipher);
    await store.checkKeys();
    return store;
  }

  private async checkKeys(): Promise<void> {
    let check = await this.inner.getSetting(KEY_CHECK_SETTING);
    if (check === null) {
      if (await this.inner.setSettingIfAbsent(KEY_CHECK_SETTING, this.cipher.encrypt(FIELDS.keyCheck, KEY_CHECK_TEXT))) return;
      check = await this.inner.getSetting(KEY_CHECK_SETTING);
    }
    try {
      if (check !== null && this.cipher.decrypt(FIELDS.keyCheck, check) === KEY_CHECK_TEXT) return;
    } catch (err) {
      if (!(err instanceof FieldCipherError)) throw err;
      throw new ConfigError(
        err.code === 'UNKNOWN_KEY'
          ? `the store holds personal data encrypted with key ${keyIdOf(check!)}, which this process lacks (it has ${this.cipher.keyIds.join(', ')}): ` +
            `restore the key file <dataDir>/keys.json from a backup, copy it from the node that created it, or set VIGIL_MASTER_KEY (docs/security.md)`
          : `the store's encryption key check is damaged: ${err.message}`,
      );
    }
    throw new ConfigError(`the store's encryption key check (setting ${KEY_CHECK_SETTING}) holds an unexpected value`);
  }

  // --- the mapping between plaintext and what the backend holds ---

  private enc(field: string, value: string): string;
  private enc(field: string, value: string | null): string | null;
  private enc(field: string, value: string | null): string | null {
    return value === null || value === undefined ? value : this.cipher.encrypt(field, value);
  }

  private dec(field: string, value: string): string;
  private dec(field: string, value: string | null): string | null;
  private dec(field: string, value: string | null): string | null {
    return typeof value === 'string' ? this.cipher.decrypt(field, value) : value;
  }

  private encLocation(loc: GeoPoint | null): GeoPoint | null {
    if (loc === null || loc === undefined) return loc;
    return { enc: this.cipher.encrypt(FIELDS.residentHomeLocation, JSON.stringify(loc)) } as unknown as GeoPoint;
  }

  private decLocation(loc: GeoPoint | null): GeoPoint | null {
    return isEncryptedLocation(loc) ? (JSON.parse(this.cipher.decrypt(FIELDS.residentHomeLocation, loc.enc)) as GeoPoint) : loc;
  }

  private encResidentPatch(patch: ResidentPatch): ResidentPatch {
    const out: ResidentPatch = { ...patch };
    if (patch.name !== undefined) out.name = this.enc(FIELDS.residentName, patch.name);
    if (patch.birthDate !== undefined) out.birthDate = this.enc(FIELDS.residentBirthDate, patch.birthDate);
    if (patch.homeLocation !== undefined) out.homeLocation = this.encLocation(patch.homeLocation);
    if (patch.medicalNotes !== undefined) out.medicalNotes = this.enc(FIELDS.residentMedicalNotes, patch.medicalNotes);
    return out;
  }

  private decResident(r: Resident): Resident {
    return {
      ...r,
      name: this.dec(FIELDS.residentName, r.name),
      birthDate: this.dec(FIELDS.residentBirthDate, r.birthDate),
      homeLocation: this.decLocation(r.homeLocation),
      medicalNotes: this.dec(FIELDS.residentMedicalNotes, r.medicalNotes),
    };
  }

  private encContactPatch<T extends ContactPatch>(patch: T): T {
    const out: T = { ...patch };
    if (patch.name !== undefined) out.name = this.enc(FIELDS.contactName, patch.name);
    if (patch.phone !== undefined) out.phone = this.enc(FIELDS.contactPhone, patch.phone);
    if (patch.email !== undefined) out.email = this.enc(FIELDS.contactEmail, patch.email);
    return out;
  }

  private decContact(c: Contact): Contact {
    return { ...c, name: this.dec(FIELDS.contactName, c.name), phone: this.dec(FIELDS.contactPhone, c.phone), email: this.dec(FIELDS.contactEmail, c.email) };
  }

  // --- settings ---

  getSetting(key: string): Promise<string | null> {
    return this.inner.getSetting(key);
  }
  setSettingIfAbsent(key: string, value: string): Promise<boolean> {
    return this.inner.setSettingIfAbsent(key, value);
  }
  setSetting(key: string, value: string): Promise<void> {
    return this.inner.setSetting(key, value);
  }

  // --- residents, devices, contacts ---

  async createResident(r: Parameters<Store['createResident']>[0]): Promise<Resident> {
    return this.decResident(await this.inner.createResident({ ...r, ...this.encResidentPatch(r) }));
  }
  async getResident(id: string): Promise<Resident | null> {
    const r = await this.inner.getResident(id);
    return r && this.decResident(r);
  }
  async listResidents(opts?: { limit?: number; after?: string }): Promise<Resident[]> {
    return (await this.inner.listResidents(opts)).map((r) => this.decResident(r));
  }
  async updateResident(id: string, patch: ResidentPatch): Promise<Resident | null> {
    const r = await this.inner.updateResident(id, this.encResidentPatch(patch));
    return r && this.decResident(r);
  }
  createDevice(d: { deviceId: string; residentId: string; tokenHash: string }): Promise<Device> {
    return this.inner.createDevice(d);
  }
  findDeviceByTokenHash(tokenHash: string): Promise<Device | null> {
    return this.inner.findDeviceByTokenHash(tokenHash);
  }
  getDevice(deviceId: string): Promise<Device | null> {
    return this.inner.getDevice(deviceId);
  }
  setDeviceToken(deviceId: string, tokenHash: string | null): Promise<Device | null> {
    return this.inner.setDeviceToken(deviceId, tokenHash);
  }
  listDevices(residentId: string): Promise<Device[]> {
    return this.inner.listDevices(residentId);
  }
  async createContact(c: Parameters<Store['createContact']>[0]): Promise<Contact> {
    return this.decContact(await this.inner.createContact(this.encContactPatch(c)));
  }
  async getContact(id: string): Promise<Contact | null> {
    const c = await this.inner.getContact(id);
    return c && this.decContact(c);
  }
  async listContacts(residentId: string): Promise<Contact[]> {
    return (await this.inner.listContacts(residentId)).map((c) => this.decContact(c));
  }
  async updateContact(id: string, patch: ContactPatch): Promise<Contact | null> {
    const c = await this.inner.updateContact(id, this.encContactPatch(patch));
    return c && this.decContact(c);
  }
  deleteContact(id: string): Promise<boolean> {
    return this.inner.deleteContact(id);
  }

  // --- alerts and outbox ---

  getAlert(id: string): Promise<Alert | null> {
    return this.inner.getAlert(id);
  }
  listAlerts(filter?: AlertFilter): Promise<Alert[]> {
    return this.inner.listAlerts(filter);
  }
  countOpenAlerts(): Promise<number> {
    return this.inner.countOpenAlerts();
  }
  acknowledgeAlert(id: string, by: string, note: string | null, at: number): Promise<Alert | null> {
    return this.inner.acknowledgeAlert(id, by, note, at);
  }
  resolveAlert(id: string, by: string, note: string | null, at: number): Promise<Alert | null> {
    return this.inner.resolveAlert(id, by, note, at);
  }
  commitAlertBatch(
    changes: AlertChange[],
    outboxFor: (alert: Alert) => Promise<OutboxItem[]> | OutboxItem[],
    checkpoint: Parameters<Store['commitAlertBatch']>[2],
  ): Promise<Alert[]> {
    return this.inner.commitAlertBatch(changes, outboxFor, checkpoint);
  }
  claimOutbox(now: number, limit: number): Promise<OutboxItem[]> {
    return this.inner.claimOutbox(now, limit);
  }
  completeOutbox(id: string, result: { ok: true; providerId?: string } | { ok: false; error: string; retryAt: number | null }, now: number): Promise<void> {
    return this.inner.completeOutbox(id, result, now);
  }
  requeueStuckOutbox(claimedBefore: number, now: number): Promise<number> {
    return this.inner.requeueStuckOutbox(claimedBefore, now);
  }
  listOutbox(alertId: string): Promise<OutboxItem[]> {
    return this.inner.listOutbox(alertId);
  }
  enqueueOutbox(items: OutboxItem[]): Promise<number> {
    return this.inner.enqueueOutbox(items);
  }
  cancelOutbox(alertId: string, reason: string, now: number): Promise<number> {
    return this.inner.cancelOutbox(alertId, reason, now);
  }
  recordDelivery(channel: string, providerId: string, status: 'delivered' | 'failed', error: string | null, now: number): Promise<OutboxItem | null> {
    return this.inner.recordDelivery(channel, providerId, status, error, now);
  }

  // --- API keys (no personal data) ---

  createApiKey(k: Omit<ApiKey, 'revokedAt'>): Promise<ApiKey> {
    return this.inner.createApiKey(k);
  }
  findApiKeyByHash(keyHash: string): Promise<ApiKey | null> {
    return this.inner.findApiKeyByHash(keyHash);
  }
  listApiKeys(): Promise<ApiKey[]> {
    return this.inner.listApiKeys();
  }
  revokeApiKey(id: string, at: number): Promise<ApiKey | null> {
    return this.inner.revokeApiKey(id, at);
  }

  // --- processing ---

  acquireLease(group: string, partition: number, owner: string, ttlMs: number, now: number): Promise<Lease | null> {
    return this.inner.acquireLease(group, partition, owner, ttlMs, now);
  }
  renewLease(lease: Lease, ttlMs: number, now: number): Promise<Lease | null> {
    return this.inner.renewLease(lease, ttlMs, now);
  }
  releaseLease(lease: Lease): Promise<void> {
    return this.inner.releaseLease(lease);
  }
  listLeases(group: string): Promise<Lease[]> {
    return this.inner.listLeases(group);
  }
  getCheckpoint(group: string, partition: number): Promise<Checkpoint | null> {
    return this.inner.getCheckpoint(group, partition);
  }
  listCheckpoints(group: string): Promise<Checkpoint[]> {
    return this.inner.listCheckpoints(group);
  }
  getCheckpointState(group: string, partition: number): Promise<Map<string, unknown>> {
    return this.inner.getCheckpointState(group, partition);
  }
  writeCheckpoint(group: string, partition: number, sequence: string | null, snapshot: unknown, fence: Fence, state?: StateChanges): Promise<void> {
    return this.inner.writeCheckpoint(group, partition, sequence, snapshot, fence, state);
  }

  close(): Promise<void> {
    return this.inner.close();
  }

  // --- rotation ---

  /**
   * Re-encrypts, under the current key, every resident and contact that has a value under
   * another key or in clear (so it also encrypts rows written before encryption was on), and
   * the key check. Rows already all under the current key are left alone, so a run that
   * stopped half-way is finished by running it again. Returns how many rows it rewrote.
   *
   * Not atomic with concurrent edits of the same row: run it while Vigil is stopped, or when
   * nobody edits residents and contacts.
   */
  async rotateKeys(): Promise<{ residents: number; contacts: number }> {
    const current = this.cipher.currentKeyId;
    const stale = (v: unknown): boolean => (typeof v === 'string' ? keyIdOf(v) !== current : false);
    let residents = 0;
    let contacts = 0;
    for (let after: string | undefined; ; ) {
      const page = await this.inner.listResidents({ limit: ROTATE_PAGE, after });
      if (page.length === 0) break;
      for (const raw of page) {
        const loc = raw.homeLocation as unknown;
        if (stale(raw.name) || stale(raw.birthDate) || stale(raw.medicalNotes) || (loc != null && (!isEncryptedLocation(loc) || stale(loc.enc)))) {
          const r = this.decResident(raw);
          await this.inner.updateResident(r.id, this.encResidentPatch({ name: r.name, birthDate: r.birthDate, homeLocation: r.homeLocation, medicalNotes: r.medicalNotes }));
          residents++;
        }
        for (const rawContact of await this.inner.listContacts(raw.id)) {
          if (!stale(rawContact.name) && !stale(rawContact.phone) && !stale(rawContact.email)) continue;
          const c = this.decContact(rawContact);
          await this.inner.updateContact(c.id, this.encContactPatch({ name: c.name, phone: c.phone, email: c.email }));
          contacts++;
        }
      }
      after = page[page.length - 1]!.id;
    }
    const check = await this.inner.getSetting(KEY_CHECK_SETTING);
    if (check === null || stale(check)) await this.inner.setSetting(KEY_CHECK_SETTING, this.cipher.encrypt(FIELDS.keyCheck, KEY_CHECK_TEXT));
    return { residents, contacts };
  }
}
