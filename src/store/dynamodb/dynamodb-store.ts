/**
 * The operational store on DynamoDB (DESIGN §2, the AWS engine): the same semantics as the
 * SQLite and PostgreSQL stores, in one table (docs/store-dynamodb.md describes the design).
 *
 * Invariants (the rest of Vigil relies on them):
 * 1. Durability: a write whose promise resolved was acknowledged by DynamoDB. Reads that the
 *    semantics depend on (get by key, the batch's read-modify-write, leases, checkpoints,
 *    devices and contacts of a resident) are strongly consistent. Reads through a GSI
 *    (resident listing, alert listings and counts, an alert's outbox rows, due outbox rows)
 *    are eventually consistent; every write that follows such a read is conditional on the
 *    base item, so a stale index entry can never cause a double claim or a lost update.
 * 2. A device token is found through its own item `TOKEN#<sha256>` (strongly consistent, and
 *    unique by `attribute_not_exists`), never through an index; the token is not stored.
 *    The device item's `tokenHash` names its lookup item (absent: revoked); a rotation or
 *    revocation rewrites it and deletes the old lookup item in one transaction.
 * 3. At most one unresolved alert per (resident, type): the marker item
 *    `RESIDENT#<r>` / `UNRESOLVED#<type>` names it, created with `attribute_not_exists`
 *    and deleted on resolve, in the same transaction as the alert. Alert items carry a
 *    version `ver`; every rewrite is conditional on the version read, so concurrent batches
 *    (two partitions, one resident) are serialized optimistically: the loser re-reads.
 * 3a. A person's resolve (`resolveAlert`) rewrites the alert under its version and deletes
 *    the marker naming it in one transaction, as a batch's resolve does.
 * 4. Outbox rows are put with `attribute_not_exists` (in the transaction that creates their
 *    alert, or one by one by `enqueueOutbox`), so a notification is queued at most once.
 *    Claims and cancels are conditional updates of `queued` rows; 'delivered', 'failed' and
 *    'cancelled' are final, 'sent' moves only on the provider's report. The row a report
 *    names is found through a lookup item `PROVIDER#<providerId>` / `OUTBOX#<id>`, put in
 *    the same transaction that records the provider id (strongly consistent, unlike a GSI).
 * 4a. The two items of a contact (`CONTACT#<id>` and its copy `RESIDENT#<r>` /
 *    `CONTACT#<id>`) are updated and deleted together, in one transaction.
 * 5. Leases: one conditional write (compare-and-set on the owner, epoch and expiry read),
 *    raising the epoch on owner change. A checkpoint is written in a `TransactWriteItems`
 *    whose first action is a `ConditionCheck` of the lease's (owner, epoch); the alert batch
 *    rides in the same transaction. A batch that needs more than one transaction (DynamoDB
 *    allows 100 actions in one) is split; each part carries the lease check and the
 *    checkpoint goes in the last part, so a stale fence still never moves the checkpoint,
 *    but such a batch is not all-or-nothing (see the docs: it is replayed idempotently).
 *    A checkpoint's state entries (`STATE#<group>#<partition>` / `<key>`) ride in the parts
 *    before the checkpoint's, after the alert changes; see `stateUnits` for why that is safe.
 * 6. JSON values (homeLocation, preferences, evidence, payload, snapshot, state entries) are stored as JSON
 *    strings: exact round trips, and no DynamoDB type restrictions on their contents. Times are epoch
 *    milliseconds (numbers); sort keys embed them zero-padded so string order is time order.
 * 7. API keys live in one item collection (`APIKEYS` / `APIKEY#<id>`, so listing them is a
 *    strongly consistent `Query`); a key is found by its hash through its own lookup item
 *    `APIKEYHASH#<sha256>` (unique by `attribute_not_exists`, written in the same transaction
 *    as the key), never through an index; the key itself is not stored.
 */
import {
  ConditionalCheckFailedException,
  CreateTableCommand,
  DescribeTableCommand,
  DynamoDBClient,
  ResourceInUseException,
  TransactionCanceledException,
} from '@aws-sdk/client-dynamodb';
import {
  BatchGetCommand,
  DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  QueryCommand,
  UpdateCommand,
  TransactWriteCommand,
  type BatchGetCommandOutput,
  type QueryCommandInput,
  type TransactWriteCommandInput,
} from '@aws-sdk/lib-dynamodb';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { VigilError } from '../../core/errors.js';
import { definedOnly, newAlert } from '../store-rows.js';
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

export interface DynamoDbStoreOptions {
  table: string;
  region?: string;
  endpoint?: string;
  /** Explicit credentials (tests against dynalite); otherwise the SDK's default chain. */
  credentials?: { accessKeyId: string; secretAccessKey: string };
}

type Item = Record<string, any>;
type TransactItem = NonNullable<TransactWriteCommandInput['TransactItems']>[number];

/** DynamoDB's limit of actions in one TransactWriteItems. */
export const MAX_TRANSACTION_ITEMS = 100;
/**
 * DynamoDB's limit of the aggregate size of the items in one TransactWriteItems is 4 MiB; this
 * leaves ~190 KB (~1.9 KB an action) for what `itemBytes` does not count (per-item overheads).
 */
const MAX_TRANSACTION_BYTES = 4_000_000;
const DEFAULT_LIMIT = 100;
const MAX_LIMIT = 1000;
const clampLimit = (limit: number | undefined): number => Math.min(Math.max(Math.trunc(limit ?? DEFAULT_LIMIT), 1), MAX_LIMIT);

const pad = (n: number, width = 16): string => String(Math.max(0, Math.trunc(n))).padStart(width, '0');

// Keys (docs/store-dynamodb.md lists them all).
const key = {
  setting: (k: string) => ({ pk: `SETTING#${k}`, sk: 'SETTING' }),
  resident: (id: string) => ({ pk: `RESIDENT#${id}`, sk: 'RESIDENT' }),
  device: (id: string) => ({ pk: `DEVICE#${id}`, sk: 'DEVICE' }),
  token: (hash: string) => ({ pk: `TOKEN#${hash}`, sk: 'TOKEN' }),
  residentDevice: (rid: string, id: string) => ({ pk: `RESIDENT#${rid}`, sk: `DEVICE#${id}` }),
  contact: (id: string) => ({ pk: `CONTACT#${id}`, sk: 'CONTACT' }),
  residentContact: (rid: string, id: string) => ({ pk: `RESIDENT#${rid}`, sk: `CONTACT#${id}` }),
  alert: (id: string) => ({ pk: `ALERT#${id}`, sk: 'ALERT' }),
  unresolved: (rid: string, type: string) => ({ pk: `RESIDENT#${rid}`, sk: `UNRESOLVED#${type}` }),
  outbox: (id: string) => ({ pk: `OUTBOX#${id}`, sk: 'OUTBOX' }),
  /** Written when a row is sent with a provider id; the channel is matched on the row itself. */
  providerLink: (providerId: string, outboxId: string) => ({ pk: `PROVIDER#${providerId}`, sk: `OUTBOX#${outboxId}` }),
  lease: (group: string, partition: number) => ({ pk: `GROUP#${group}`, sk: `LEASE#${pad(partition, 10)}` }),
  checkpoint: (group: string, partition: number) => ({ pk: `GROUP#${group}`, sk: `CHECKPOINT#${pad(partition, 10)}` }),
  /** One item collection per partition, so reading or clearing its entries is one Query. */
  stateEntries: (group: string, partition: number) => `STATE#${group}#${pad(partition, 10)}`,
  state: (group: string, partition: number, k: string) => ({ pk: key.stateEntries(group, partition), sk: k }),
  apiKey: (id: string) => ({ pk: 'APIKEYS', sk: `APIKEY#${id}` }),
  apiKeyHash: (hash: string) => ({ pk: `APIKEYHASH#${hash}`, sk: 'APIKEYHASH' }),
};

const alertOrder = (a: Alert) => `${pad(a.openedAt)}#${a.id}`;
const dueKey = (nextAttemptAt: number, createdAt: number, id: string) => `${pad(nextAttemptAt)}#${pad(createdAt)}#${id}`;
const DUE = 'OUTBOX#DUE';
const SENDING = 'OUTBOX#SENDING';

const json = (v: unknown): string | null => (v === undefined || v === null ? null : JSON.stringify(v));
const parse = <T>(s: unknown): T => (typeof s === 'string' ? (JSON.parse(s) as T) : (null as T));

const SEVERITY_RANK: Record<Severity, number> = { low: 0, medium: 1, high: 2, critical: 3 };
const higherSeverity = (a: Severity, b: Severity): Severity => (SEVERITY_RANK[b] > SEVERITY_RANK[a] ? b : a);

// item ↔ entity

const residentItem = (r: Resident): Item => ({
  ...key.resident(r.id),
  id: r.id,
  name: r.name,
  birthDate: r.birthDate,
  timezone: r.timezone,
  homeLocation: json(r.homeLocation),
  medicalNotes: r.medicalNotes,
  createdAt: r.createdAt,
  g1pk: 'RESIDENTS',
  g1sk: r.id,
});
const toResident = (i: Item): Resident => ({
  id: i.id,
  name: i.name,
  birthDate: i.birthDate ?? null,
  timezone: i.timezone,
  homeLocation: parse(i.homeLocation),
  // Absent on items written before medical notes existed.
  medicalNotes: i.medicalNotes ?? null,
  createdAt: i.createdAt,
});
const toDevice = (i: Item): Device => ({ deviceId: i.deviceId, residentId: i.residentId, createdAt: i.createdAt });
const toContact = (i: Item): Contact => ({
  id: i.id,
  residentId: i.residentId,
  name: i.name,
  phone: i.phone ?? null,
  email: i.email ?? null,
  webhookUrl: i.webhookUrl ?? null,
  webhookSecret: i.webhookSecret ?? null,
  // Absent on items written before preferences existed.
  preferences: parse<ContactPreferences | null>(i.preferences) ?? {},
  createdAt: i.createdAt,
});
/** The attributes of both copies of a contact (its own item and the one under its resident). */
const contactAttributes = (c: Contact): Item => ({ ...c, preferences: JSON.stringify(c.preferences) });

/**
 * How each field a patch may set is stored (JSON values as strings, the rest as they are).
 * A `Record` over the patch's keys, so a field added to the patch type must be added here.
 */
const RESIDENT_PATCH: Record<keyof ResidentPatch, (v: unknown) => unknown> = {
  name: (v) => v,
  birthDate: (v) => v,
  timezone: (v) => v,
  homeLocation: json,
  medicalNotes: (v) => v,
};
const CONTACT_PATCH: Record<keyof ContactPatch, (v: unknown) => unknown> = {
  name: (v) => v,
  phone: (v) => v,
  email: (v) => v,
  webhookUrl: (v) => v,
  webhookSecret: (v) => v,
  // Never null in a Contact: a null patch clears it to {}.
  preferences: (v) => JSON.stringify(v ?? {}),
};

/** `SET #a = :a, …` for the fields a patch gives (undefined: left alone, null: cleared); null when it gives none. */
function patchUpdate(fields: Record<string, (v: unknown) => unknown>, patch: object) {
  const given = definedOnly(patch as Record<string, unknown>);
  const set = Object.keys(fields).filter((k) => given[k] !== undefined);
  if (set.length === 0) return null;
  return {
    UpdateExpression: 'SET ' + set.map((k) => `#${k} = :${k}`).join(', '),
    ExpressionAttributeNames: names(...set),
    ExpressionAttributeValues: Object.fromEntries(set.map((k) => [`:${k}`, fields[k](given[k])])),
  };
}

function alertItem(a: Alert, ver: number): Item {
  const order = alertOrder(a);
  return {
    ...key.alert(a.id),
    ...a,
    evidence: JSON.stringify(a.evidence),
    ver,
    g1pk: 'ALERTS',
    g1sk: order,
    g2pk: `ALERTS#${a.residentId}`,
    g2sk: order,
    g3pk: `ALERTSTATE#${a.state}`,
    g3sk: order,
  };
}
const toAlert = (i: Item): Alert => ({
  id: i.id,
  residentId: i.residentId,
  deviceId: i.deviceId,
  type: i.type,
  severity: i.severity,
  state: i.state,
  openedAt: i.openedAt,
  detectedAt: i.detectedAt,
  delayMs: i.delayMs ?? null,
  acknowledgedAt: i.acknowledgedAt ?? null,
  acknowledgedBy: i.acknowledgedBy ?? null,
  ackNote: i.ackNote ?? null,
  resolvedAt: i.resolvedAt ?? null,
  lastSeenAt: i.lastSeenAt,
  occurrences: i.occurrences,
  evidence: parse(i.evidence),
});

function outboxItem(o: OutboxItem): Item {
  return {
    ...key.outbox(o.id),
    ...o,
    payload: JSON.stringify(o.payload),
    g2pk: `OUTBOX#${o.alertId}`,
    g2sk: o.id,
    ...(o.status === 'queued' && { g3pk: DUE, g3sk: dueKey(o.nextAttemptAt, o.createdAt, o.id) }),
    ...(o.status === 'sending' && { g3pk: SENDING, g3sk: o.id }),
  };
}
const toOutbox = (i: Item): OutboxItem => ({
  id: i.id,
  alertId: i.alertId,
  step: i.step,
  contactId: i.contactId,
  channel: i.channel,
  payload: parse(i.payload),
  status: i.status,
  attempts: i.attempts,
  nextAttemptAt: i.nextAttemptAt,
  lastError: i.lastError ?? null,
  providerId: i.providerId ?? null,
  createdAt: i.createdAt,
  updatedAt: i.updatedAt,
});
const outboxOrder = (a: OutboxItem, b: OutboxItem): number =>
  a.createdAt - b.createdAt || a.step - b.step || cmp(a.contactId, b.contactId) || cmp(a.channel, b.channel);
const cmp = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

const apiKeyItem = (k: ApiKey): Item => ({
  ...key.apiKey(k.id),
  ...k,
  scopes: JSON.stringify(k.scopes),
  residentIds: json(k.residentIds),
  // Absent until revoked: `revokeApiKey` sets it with if_not_exists, which an attribute holding NULL would defeat.
  revokedAt: k.revokedAt ?? undefined,
});
const toApiKey = (i: Item): ApiKey => ({
  id: i.id,
  name: i.name,
  keyHash: i.keyHash,
  scopes: parse<string[]>(i.scopes),
  residentIds: parse<string[] | null>(i.residentIds),
  createdAt: i.createdAt,
  revokedAt: i.revokedAt ?? null,
});

const toLease = (i: Item): Lease => ({ group: i.group, partition: i.partition, owner: i.owner, epoch: i.epoch, expiresAt: i.expiresAt });
const toCheckpoint = (i: Item): Checkpoint => ({
  group: i.group,
  partition: i.partition,
  sequence: i.sequence ?? null,
  snapshot: parse(i.snapshot),
  updatedAt: i.updatedAt,
});
const stateItem = (group: string, partition: number, k: string, value: unknown): Item => ({ ...key.state(group, partition, k), value: json(value) });

/**
 * Actions that must commit together (an alert and its outbox rows, or one state entry), and
 * their size as the transaction size limit counts it (see MAX_TRANSACTION_BYTES).
 */
interface Unit {
  actions: TransactItem[];
  bytes: number;
}

/** An item's size as DynamoDB counts it: its attribute names and values (undefined ones are not sent). */
const itemBytes = (item: Item): number =>
  Object.entries(item).reduce((n, [name, v]) => (v === undefined ? n : n + Buffer.byteLength(name) + valueBytes(v)), 0);

/** Strings in UTF-8, numbers at their largest (21 bytes); our items hold nothing nested but JSON fallbacks. */
function valueBytes(v: unknown): number {
  if (typeof v === 'string') return Buffer.byteLength(v);
  if (typeof v === 'number') return 21;
  if (v === null || typeof v === 'boolean') return 1;
  return Buffer.byteLength(JSON.stringify(v));
}

/** A unit of these actions, sized by the items they put and the keys of the others. */
function unit(actions: TransactItem[]): Unit {
  const item = (a: TransactItem): Item => a.Put?.Item ?? a.Delete?.Key ?? a.Update?.Key ?? a.ConditionCheck?.Key ?? {};
  return { actions, bytes: actions.reduce((n, a) => n + itemBytes(item(a)), 0) };
}

/**
 * Groups units, in order, into transactions' worth of actions, each leaving room for the
 * `reserved` actions (the fence check and the checkpoint) within both limits.
 */
function packParts(units: Unit[], reserved: Unit): TransactItem[][] {
  const room = { actions: MAX_TRANSACTION_ITEMS - reserved.actions.length, bytes: MAX_TRANSACTION_BYTES - reserved.bytes };
  const parts: Unit[] = [{ actions: [], bytes: 0 }];
  for (const u of units) {
    if (u.actions.length > room.actions || u.bytes > room.bytes) {
      throw new Error(`${u.actions.length} actions (${u.bytes} bytes) that must commit together exceed one DynamoDB transaction`);
    }
    let part = parts[parts.length - 1];
    if (part.actions.length + u.actions.length > room.actions || part.bytes + u.bytes > room.bytes) parts.push((part = { actions: [], bytes: 0 }));
    part.actions.push(...u.actions);
    part.bytes += u.bytes;
  }
  return parts.map((p) => p.actions);
}

/** Builds `#a = :a` style expressions: every attribute name goes through a placeholder (many are reserved words). */
function names(...attrs: string[]): Record<string, string> {
  return Object.fromEntries(attrs.map((a) => [`#${a}`, a]));
}

/** The cancellation codes of a failed transaction, one per action ('None' when that one was fine). */
function cancellationCodes(err: unknown): string[] | null {
  if (!(err instanceof TransactionCanceledException)) return null;
  return (err.CancellationReasons ?? []).map((r) => r.Code ?? 'None');
}

const isConditionFailure = (err: unknown) => err instanceof ConditionalCheckFailedException;

/** A concurrent writer changed an item the batch read: the batch is re-read and re-applied. */
class Conflict extends Error {}

type BatchCheckpoint = Parameters<Store['commitAlertBatch']>[2];
/** What a fenced checkpoint write puts: `writeCheckpoint`'s arguments, or a batch's checkpoint. */
type CheckpointWrite = Omit<BatchCheckpoint, 'sequence' | 'state'> & { sequence: string | null };

/** The in-memory result of applying a batch to the state it read. */
interface Plan {
  /** Alerts the batch read or created, with the version read (null: created by this batch). */
  alerts: Map<string, { alert: Alert; ver: number | null; changed: boolean }>;
  /** Unresolved markers by (resident, type): the alert id read and the one after the batch. */
  markers: Map<string, { residentId: string; type: string; before: string | null; after: string | null }>;
  created: Alert[];
}

const markerKey = (residentId: string, type: string) => JSON.stringify([residentId, type]);

export class DynamoDbStore implements Store {
  static async open(o: DynamoDbStoreOptions): Promise<DynamoDbStore> {
    const client = new DynamoDBClient({
      region: o.region || 'us-east-1',
      ...(o.endpoint && { endpoint: o.endpoint }),
      ...(o.credentials && { credentials: o.credentials }),
      requestHandler: new NodeHttpHandler(),
    });
    const doc = DynamoDBDocumentClient.from(client, { marshallOptions: { removeUndefinedValues: true } });
    const store = new DynamoDbStore(client, doc, o.table);
    try {
      await store.ensureTable();
    } catch (err) {
      client.destroy();
      throw err;
    }
    return store;
  }

  private constructor(
    private readonly client: DynamoDBClient,
    private readonly doc: DynamoDBDocumentClient,
    private readonly table: string,
  ) {}

  /** Creates the table and its GSIs (on-demand billing) when missing, and waits until it is active. */
  private async ensureTable(): Promise<void> {
    const s = (name: string) => ({ AttributeName: name, AttributeType: 'S' as const });
    const gsi = (n: number) => ({
      IndexName: `gsi${n}`,
      KeySchema: [
        { AttributeName: `g${n}pk`, KeyType: 'HASH' as const },
        { AttributeName: `g${n}sk`, KeyType: 'RANGE' as const },
      ],
      Projection: { ProjectionType: 'ALL' as const },
    });
    try {
      await this.client.send(
        new CreateTableCommand({
          TableName: this.table,
          BillingMode: 'PAY_PER_REQUEST',
          AttributeDefinitions: ['pk', 'sk', 'g1pk', 'g1sk', 'g2pk', 'g2sk', 'g3pk', 'g3sk'].map(s),
          KeySchema: [
            { AttributeName: 'pk', KeyType: 'HASH' },
            { AttributeName: 'sk', KeyType: 'RANGE' },
          ],
          GlobalSecondaryIndexes: [gsi(1), gsi(2), gsi(3)],
        }),
      );
    } catch (err) {
      if (!(err instanceof ResourceInUseException)) throw err;
    }
    for (let i = 0; ; i++) {
      const { Table } = await this.client.send(new DescribeTableCommand({ TableName: this.table }));
      const indexesActive = (Table?.GlobalSecondaryIndexes ?? []).every((g) => g.IndexStatus === 'ACTIVE');
      if (Table?.TableStatus === 'ACTIVE' && indexesActive) return;
      if (i > 600) throw new Error(`DynamoDB table ${this.table} did not become active`);
      await new Promise((r) => setTimeout(r, Math.min(50 * (i + 1), 1000)));
    }
  }

  // low-level helpers

  private async get(k: { pk: string; sk: string }): Promise<Item | null> {
    const { Item } = await this.doc.send(new GetCommand({ TableName: this.table, Key: k, ConsistentRead: true }));
    return Item ?? null;
  }

  /** Strongly consistent BatchGetItem, 100 keys per request, retrying unprocessed keys. */
  private async getMany(keys: { pk: string; sk: string }[]): Promise<Item[]> {
    const out: Item[] = [];
    for (let i = 0; i < keys.length; i += 100) {
      let pending: Record<string, any>[] | undefined = keys.slice(i, i + 100);
      for (let attempt = 0; pending?.length; attempt++) {
        const res: BatchGetCommandOutput = await this.doc.send(
          new BatchGetCommand({ RequestItems: { [this.table]: { Keys: pending, ConsistentRead: true } } }),
        );
        out.push(...(res.Responses?.[this.table] ?? []));
        pending = res.UnprocessedKeys?.[this.table]?.Keys;
        if (pending?.length) await new Promise((r) => setTimeout(r, Math.min(20 * 2 ** attempt, 1000)));
      }
    }
    return out;
  }

  /** Runs a query page by page; stops once `max` items were gathered. */
  private async query(input: Omit<QueryCommandInput, 'TableName'>, max = Infinity): Promise<Item[]> {
    const out: Item[] = [];
    let start: Record<string, any> | undefined;
    do {
      const res = await this.doc.send(new QueryCommand({ ...input, TableName: this.table, ExclusiveStartKey: start }));
      out.push(...(res.Items ?? []));
      start = res.LastEvaluatedKey;
    } while (start && out.length < max);
    return out.slice(0, max);
  }

  private async count(input: Omit<QueryCommandInput, 'TableName'>): Promise<number> {
    let n = 0;
    let start: Record<string, any> | undefined;
    do {
      const res = await this.doc.send(new QueryCommand({ ...input, TableName: this.table, Select: 'COUNT', ExclusiveStartKey: start }));
      n += res.Count ?? 0;
      start = res.LastEvaluatedKey;
    } while (start);
    return n;
  }

  private transact(items: TransactItem[]) {
    return this.doc.send(new TransactWriteCommand({ TransactItems: items }));
  }

  private leaseCheck(group: string, partition: number, fence: Fence): TransactItem {
    return {
      ConditionCheck: {
        TableName: this.table,
        Key: key.lease(group, partition),
        ConditionExpression: '#owner = :owner AND #epoch = :epoch',
        ExpressionAttributeNames: names('owner', 'epoch'),
        ExpressionAttributeValues: { ':owner': fence.owner, ':epoch': fence.epoch },
      },
    };
  }

  private checkpointPut(group: string, partition: number, sequence: string | null, snapshot: unknown): TransactItem {
    return {
      Put: {
        TableName: this.table,
        Item: { ...key.checkpoint(group, partition), group, partition, sequence, snapshot: json(snapshot), updatedAt: Date.now() },
      },
    };
  }

  // settings

  async getSetting(k: string): Promise<string | null> {
    return (await this.get(key.setting(k)))?.value ?? null;
  }

  async setSettingIfAbsent(k: string, value: string): Promise<boolean> {
    try {
      await this.doc.send(
        new PutCommand({ TableName: this.table, Item: { ...key.setting(k), value }, ConditionExpression: 'attribute_not_exists(pk)' }),
      );
      return true;
    } catch (err) {
      if (isConditionFailure(err)) return false;
      throw err;
    }
  }

  async setSetting(k: string, value: string): Promise<void> {
    await this.doc.send(new PutCommand({ TableName: this.table, Item: { ...key.setting(k), value } }));
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
      await this.doc.send(
        new PutCommand({ TableName: this.table, Item: residentItem(resident), ConditionExpression: 'attribute_not_exists(pk)' }),
      );
    } catch (err) {
      if (isConditionFailure(err)) throw new VigilError('CONFLICT', `resident ${r.id} already exists`);
      throw err;
    }
    return resident;
  }

  async getResident(id: string): Promise<Resident | null> {
    const item = await this.get(key.resident(id));
    return item ? toResident(item) : null;
  }

  /** One `UpdateItem` of the given fields, so concurrent patches of different fields both stay. */
  async updateResident(id: string, patch: ResidentPatch): Promise<Resident | null> {
    const update = patchUpdate(RESIDENT_PATCH, patch);
    if (!update) return this.getResident(id);
    try {
      const { Attributes } = await this.doc.send(
        new UpdateCommand({ TableName: this.table, Key: key.resident(id), ConditionExpression: 'attribute_exists(pk)', ...update, ReturnValues: 'ALL_NEW' }),
      );
      return toResident(Attributes!);
    } catch (err) {
      if (isConditionFailure(err)) return null;
      throw err;
    }
  }

  /** Through gsi1 (eventually consistent): a resident created a moment ago may be missing. */
  async listResidents(opts: { limit?: number; after?: string } = {}): Promise<Resident[]> {
    const limit = clampLimit(opts.limit);
    const after = opts.after ?? '';
    const items = await this.query(
      {
        IndexName: 'gsi1',
        KeyConditionExpression: after === '' ? 'g1pk = :p' : 'g1pk = :p AND g1sk > :after',
        ExpressionAttributeValues: { ':p': 'RESIDENTS', ...(after !== '' && { ':after': after }) },
        Limit: limit,
      },
      limit,
    );
    return items.map(toResident);
  }

  async createDevice(d: { deviceId: string; residentId: string; tokenHash: string }): Promise<Device> {
    const device: Device = { deviceId: d.deviceId, residentId: d.residentId, createdAt: Date.now() };
    const notExists = 'attribute_not_exists(pk)';
    try {
      await this.transact([
        { Put: { TableName: this.table, Item: { ...key.device(d.deviceId), ...device, tokenHash: d.tokenHash }, ConditionExpression: notExists } },
        { ConditionCheck: { TableName: this.table, Key: key.resident(d.residentId), ConditionExpression: 'attribute_exists(pk)' } },
        { Put: { TableName: this.table, Item: { ...key.token(d.tokenHash), ...device }, ConditionExpression: notExists } },
        { Put: { TableName: this.table, Item: { ...key.residentDevice(d.residentId, d.deviceId), ...device } } },
      ]);
    } catch (err) {
      const codes = cancellationCodes(err);
      if (codes?.[0] === 'ConditionalCheckFailed') throw new VigilError('CONFLICT', `device ${d.deviceId} is already registered`);
      if (codes?.[1] === 'ConditionalCheckFailed') throw new VigilError('NOT_FOUND', `resident ${d.residentId} does not exist`);
      if (codes?.[2] === 'ConditionalCheckFailed') throw new VigilError('CONFLICT', 'token hash is already in use');
      throw err;
    }
    return device;
  }

  async findDeviceByTokenHash(tokenHash: string): Promise<Device | null> {
    const item = await this.get(key.token(tokenHash));
    return item ? toDevice(item) : null;
  }

  /**
   * One transaction, conditioned on the hash read from the device item (a concurrent rotation
   * makes it re-read): the device item's `tokenHash` set or removed, the old `TOKEN#` item
   * deleted, the new one put with `attribute_not_exists` (a hash in use → CONFLICT).
   */
  async setDeviceToken(deviceId: string, tokenHash: string | null): Promise<Device | null> {
    for (let round = 0; ; round++) {
      const current = await this.get(key.device(deviceId));
      if (!current) return null;
      const device = toDevice(current);
      const old: string | null = current.tokenHash ?? null;
      if (old === tokenHash) return device;
      const values: Record<string, string> = {};
      if (tokenHash !== null) values[':new'] = tokenHash;
      if (old !== null) values[':old'] = old;
      const items: TransactItem[] = [
        {
          Update: {
            TableName: this.table,
            Key: key.device(deviceId),
            UpdateExpression: tokenHash === null ? 'REMOVE #tokenHash' : 'SET #tokenHash = :new',
            ConditionExpression: `attribute_exists(pk) AND ${old === null ? 'attribute_not_exists(#tokenHash)' : '#tokenHash = :old'}`,
            ExpressionAttributeNames: names('tokenHash'),
            ...(Object.keys(values).length && { ExpressionAttributeValues: values }),
          },
        },
      ];
      if (tokenHash !== null) {
        items.push({ Put: { TableName: this.table, Item: { ...key.token(tokenHash), ...device }, ConditionExpression: 'attribute_not_exists(pk)' } });
      }
      if (old !== null) items.push({ Delete: { TableName: this.table, Key: key.token(old) } });
      try {
        await this.transactRetryingConflicts(items);
        return device;
      } catch (err) {
        const codes = cancellationCodes(err);
        if (codes?.[0] === 'ConditionalCheckFailed' && round < 50) continue; // changed or deleted meanwhile: re-read
        if (tokenHash !== null && codes?.[1] === 'ConditionalCheckFailed') throw new VigilError('CONFLICT', 'token hash is already in use');
        throw err;
      }
    }
  }

  async getDevice(deviceId: string): Promise<Device | null> {
    const item = await this.get(key.device(deviceId));
    return item ? toDevice(item) : null;
  }

  async listDevices(residentId: string): Promise<Device[]> {
    const items = await this.query({
      KeyConditionExpression: 'pk = :pk AND begins_with(sk, :prefix)',
      ExpressionAttributeValues: { ':pk': `RESIDENT#${residentId}`, ':prefix': 'DEVICE#' },
      ConsistentRead: true,
    });
    return items.map(toDevice).sort((a, b) => a.createdAt - b.createdAt || cmp(a.deviceId, b.deviceId));
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
    const attributes = contactAttributes(contact);
    try {
      await this.transact([
        { Put: { TableName: this.table, Item: { ...key.contact(c.id), ...attributes }, ConditionExpression: 'attribute_not_exists(pk)' } },
        { ConditionCheck: { TableName: this.table, Key: key.resident(c.residentId), ConditionExpression: 'attribute_exists(pk)' } },
        { Put: { TableName: this.table, Item: { ...key.residentContact(c.residentId, c.id), ...attributes } } },
      ]);
    } catch (err) {
      const codes = cancellationCodes(err);
      if (codes?.[0] === 'ConditionalCheckFailed') throw new VigilError('CONFLICT', `contact ${c.id} already exists`);
      if (codes?.[1] === 'ConditionalCheckFailed') throw new VigilError('NOT_FOUND', `resident ${c.residentId} does not exist`);
      throw err;
    }
    return contact;
  }

  async getContact(id: string): Promise<Contact | null> {
    const item = await this.get(key.contact(id));
    return item ? toContact(item) : null;
  }

  async listContacts(residentId: string): Promise<Contact[]> {
    const items = await this.query({
      KeyConditionExpression: 'pk = :pk AND begins_with(sk, :prefix)',
      ExpressionAttributeValues: { ':pk': `RESIDENT#${residentId}`, ':prefix': 'CONTACT#' },
      ConsistentRead: true,
    });
    return items.map(toContact).sort((a, b) => a.createdAt - b.createdAt || cmp(a.id, b.id));
  }

  /**
   * The same `UpdateItem` on both copies in one transaction, each conditioned on existing
   * (a contact deleted meanwhile → null), then the contact as stored, read back.
   */
  async updateContact(id: string, patch: ContactPatch): Promise<Contact | null> {
    const current = await this.get(key.contact(id));
    if (!current) return null;
    const update = patchUpdate(CONTACT_PATCH, patch);
    if (!update) return toContact(current);
    const both = { TableName: this.table, ConditionExpression: 'attribute_exists(pk)', ...update };
    try {
      await this.transactRetryingConflicts([
        { Update: { ...both, Key: key.contact(id) } },
        { Update: { ...both, Key: key.residentContact(current.residentId, id) } },
      ]);
    } catch (err) {
      if (cancellationCodes(err)?.includes('ConditionalCheckFailed')) return null;
      throw err;
    }
    return this.getContact(id);
  }

  /** Both copies in one transaction; the contact's outbox rows stay. */
  async deleteContact(id: string): Promise<boolean> {
    const current = await this.get(key.contact(id));
    if (!current) return false;
    try {
      await this.transactRetryingConflicts([
        { Delete: { TableName: this.table, Key: key.contact(id), ConditionExpression: 'attribute_exists(pk)' } },
        { Delete: { TableName: this.table, Key: key.residentContact(current.residentId, id) } },
      ]);
      return true;
    } catch (err) {
      if (cancellationCodes(err)?.[0] === 'ConditionalCheckFailed') return false; // deleted meanwhile
      throw err;
    }
  }

  // alerts and outbox

  async getAlert(id: string): Promise<Alert | null> {
    const item = await this.get(key.alert(id));
    return item ? toAlert(item) : null;
  }

  /**
   * Newest first through the most selective index (gsi2 by resident, gsi3 by state, else
   * gsi1 over all alerts), the other filters applied as a FilterExpression. Eventually consistent.
   */
  async listAlerts(filter: AlertFilter = {}): Promise<Alert[]> {
    const limit = clampLimit(filter.limit);
    const [index, partition] =
      filter.residentId !== undefined
        ? ['gsi2', `ALERTS#${filter.residentId}`]
        : filter.state !== undefined
          ? ['gsi3', `ALERTSTATE#${filter.state}`]
          : ['gsi1', 'ALERTS'];
    const conditions: string[] = [];
    const values: Record<string, unknown> = { ':p': partition };
    const attrNames: Record<string, string> = {};
    if (filter.residentId !== undefined && filter.state !== undefined) {
      conditions.push('#state = :state');
      values[':state'] = filter.state;
      attrNames['#state'] = 'state';
    }
    if (filter.type !== undefined) {
      conditions.push('#type = :type');
      values[':type'] = filter.type;
      attrNames['#type'] = 'type';
    }
    const n = index.slice(3);
    // The index sort key is `<openedAt>#<id>`: string order is the listing order, so a page starts below the cursor's.
    if (filter.after !== undefined) values[':after'] = `${pad(filter.after.openedAt)}#${filter.after.id}`;
    const items = await this.query(
      {
        IndexName: index,
        KeyConditionExpression: filter.after === undefined ? `g${n}pk = :p` : `g${n}pk = :p AND g${n}sk < :after`,
        ExpressionAttributeValues: values,
        ...(conditions.length && { FilterExpression: conditions.join(' AND '), ExpressionAttributeNames: attrNames }),
        ScanIndexForward: false,
        ...(!conditions.length && { Limit: limit }),
      },
      limit,
    );
    return items.map(toAlert);
  }

  /** Counts through gsi3 (eventually consistent). */
  async countOpenAlerts(): Promise<number> {
    const counts = await Promise.all(
      ['open', 'acknowledged'].map((state) =>
        this.count({ IndexName: 'gsi3', KeyConditionExpression: 'g3pk = :p', ExpressionAttributeValues: { ':p': `ALERTSTATE#${state}` } }),
      ),
    );
    return counts[0] + counts[1];
  }

  async acknowledgeAlert(id: string, by: string, note: string | null, at: number): Promise<Alert | null> {
    try {
      await this.doc.send(
        new UpdateCommand({
          TableName: this.table,
          Key: key.alert(id),
          ConditionExpression: '#state = :open',
          UpdateExpression:
            'SET #state = :ack, #acknowledgedAt = :at, #acknowledgedBy = :by, #ackNote = :note, #g3pk = :g3pk, #ver = #ver + :one',
          ExpressionAttributeNames: names('state', 'acknowledgedAt', 'acknowledgedBy', 'ackNote', 'g3pk', 'ver'),
          ExpressionAttributeValues: {
            ':open': 'open',
            ':ack': 'acknowledged',
            ':at': at,
            ':by': by,
            ':note': note,
            ':g3pk': 'ALERTSTATE#acknowledged',
            ':one': 1,
          },
        }),
      );
    } catch (err) {
      if (!isConditionFailure(err)) throw err;
    }
    return this.getAlert(id);
  }

  /**
   * Like a batch's resolve: the alert is rewritten conditioned on the version read, and the
   * unresolved marker naming it is deleted (conditioned on still naming it) in the same
   * transaction, so a new alert of that (resident, type) can open, and a concurrent batch
   * that read the alert as open fails its own version condition and re-reads. A concurrent
   * change (batch, acknowledgement) makes this re-read and re-apply.
   */
  async resolveAlert(id: string, by: string, note: string | null, at: number): Promise<Alert | null> {
    for (let round = 0; ; round++) {
      const item = await this.get(key.alert(id));
      if (!item) return null;
      const alert = toAlert(item);
      if (alert.state === 'resolved') return alert;
      const resolved: Alert = {
        ...alert,
        state: 'resolved',
        resolvedAt: at,
        acknowledgedAt: alert.acknowledgedAt ?? at,
        acknowledgedBy: alert.acknowledgedBy ?? by,
        ackNote: note ?? alert.ackNote,
      };
      const unresolvedKey = key.unresolved(alert.residentId, alert.type);
      const marker = await this.get(unresolvedKey);
      const items: TransactItem[] = [
        {
          Put: {
            TableName: this.table,
            Item: alertItem(resolved, item.ver + 1),
            ConditionExpression: '#ver = :ver',
            ExpressionAttributeNames: names('ver'),
            ExpressionAttributeValues: { ':ver': item.ver },
          },
        },
      ];
      if (marker?.alertId === id) {
        items.push({
          Delete: {
            TableName: this.table,
            Key: unresolvedKey,
            ConditionExpression: '#alertId = :id',
            ExpressionAttributeNames: names('alertId'),
            ExpressionAttributeValues: { ':id': id },
          },
        });
      }
      try {
        await this.transactRetryingConflicts(items);
        return resolved;
      } catch (err) {
        if (!cancellationCodes(err)?.includes('ConditionalCheckFailed') || round >= 50) throw err;
        await new Promise((r) => setTimeout(r, Math.random() * Math.min(5 * 2 ** Math.min(round, 6), 200)));
      }
    }
  }

  /**
   * Optimistic, like the PostgreSQL store's retry loop: read the state the batch touches
   * (strongly consistent), apply the changes in memory, and write the result in one
   * transaction conditioned on what was read and on the fence. When the batch would create
   * alerts whose outbox rows are not built yet, `outboxFor` runs (outside any transaction)
   * and the round starts again; a concurrent writer's change (a failed condition other than
   * the fence) also restarts it. `outboxFor` must be free of side effects.
   */
  async commitAlertBatch(
    changes: AlertChange[],
    outboxFor: (alert: Alert) => Promise<OutboxItem[]> | OutboxItem[],
    checkpoint: BatchCheckpoint,
  ): Promise<Alert[]> {
    const { group, partition, fence, state } = checkpoint;
    if (changes.length === 0) {
      await this.writeCheckpoint(group, partition, checkpoint.sequence, checkpoint.snapshot, fence, state);
      return [];
    }
    // Fence first: a worker that lost its lease should not even build outbox rows.
    await this.checkFence(group, partition, fence);
    // Read once: while the lease is ours nobody else writes the partition's entries.
    const stateUnits = await this.stateUnits(group, partition, state);
    const outboxes = new Map<string, OutboxItem[]>();
    for (let round = 0; ; round++) {
      const plan = await this.plan(changes);
      const missing = plan.created.filter((a) => !outboxes.has(a.id));
      if (missing.length) {
        for (const alert of missing) outboxes.set(alert.id, await outboxFor(alert));
        continue;
      }
      try {
        await this.commitPlan(plan, outboxes, checkpoint, stateUnits);
        return plan.created;
      } catch (err) {
        if (err instanceof Conflict && round < 50) {
          await new Promise((r) => setTimeout(r, Math.random() * Math.min(5 * 2 ** Math.min(round, 6), 200)));
          continue;
        }
        throw err;
      }
    }
  }

  private async checkFence(group: string, partition: number, fence: Fence): Promise<void> {
    const lease = await this.get(key.lease(group, partition));
    if (!lease || lease.owner !== fence.owner || lease.epoch !== fence.epoch) throw new LeaseLostError(group, partition);
  }

  /** Reads what the batch touches and applies it in memory. */
  private async plan(changes: AlertChange[]): Promise<Plan> {
    const raiseIds = [...new Set(changes.flatMap((c) => (c.kind === 'raise' ? [c.alert.id] : [])))];
    const pairs = new Map<string, { residentId: string; type: string }>();
    for (const c of changes) {
      const [residentId, type] = c.kind === 'raise' ? [c.alert.residentId, c.alert.type] : [c.residentId, c.type];
      pairs.set(markerKey(residentId, type), { residentId, type });
    }
    const first = await this.getMany([
      ...raiseIds.map(key.alert),
      ...[...pairs.values()].map((p) => key.unresolved(p.residentId, p.type)),
    ]);
    const plan: Plan = { alerts: new Map(), markers: new Map(), created: [] };
    const markerItems = new Map<string, string>();
    for (const item of first) {
      if (item.sk === 'ALERT') plan.alerts.set(item.id, { alert: toAlert(item), ver: item.ver, changed: false });
      else markerItems.set(markerKey(item.residentId, item.type), item.alertId);
    }
    const referenced = [...new Set(markerItems.values())].filter((id) => !plan.alerts.has(id));
    for (const item of await this.getMany(referenced.map(key.alert))) {
      plan.alerts.set(item.id, { alert: toAlert(item), ver: item.ver, changed: false });
    }
    for (const [k, p] of pairs) {
      const id = markerItems.get(k) ?? null;
      plan.markers.set(k, { ...p, before: id, after: id });
    }

    for (const change of changes) {
      if (change.kind === 'raise') {
        const raise = change.alert;
        if (plan.alerts.has(raise.id)) continue; // a replay of a raise already applied
        const marker = plan.markers.get(markerKey(raise.residentId, raise.type))!;
        const open = marker.after === null ? undefined : plan.alerts.get(marker.after);
        if (open) {
          const a = open.alert;
          open.alert = {
            ...a,
            occurrences: a.occurrences + 1,
            lastSeenAt: Math.max(a.lastSeenAt, raise.openedAt),
            evidence: raise.evidence,
            severity: higherSeverity(a.severity, raise.severity),
          };
          open.changed = true;
          continue;
        }
        const alert = newAlert(raise);
        plan.alerts.set(alert.id, { alert, ver: null, changed: true });
        marker.after = alert.id;
        plan.created.push(alert);
      } else {
        const marker = plan.markers.get(markerKey(change.residentId, change.type))!;
        const open = marker.after === null ? undefined : plan.alerts.get(marker.after);
        if (!open) continue;
        open.alert = {
          ...open.alert,
          state: 'resolved',
          resolvedAt: change.at,
          evidence: change.evidence === undefined ? open.alert.evidence : { ...open.alert.evidence, resolution: change.evidence },
        };
        open.changed = true;
        marker.after = null;
      }
    }
    return plan;
  }

  /** Writes a plan, then the state changes and the checkpoint: one transaction when it fits, else several (see the class header). */
  private async commitPlan(plan: Plan, outboxes: Map<string, OutboxItem[]>, cp: BatchCheckpoint, stateUnits: Unit[]): Promise<void> {
    const T = this.table;
    const units: TransactItem[][] = [];
    for (const { alert, ver, changed } of plan.alerts.values()) {
      if (!changed) continue;
      const alertUnit: TransactItem[] = [
        {
          Put: {
            TableName: T,
            Item: alertItem(alert, (ver ?? 0) + 1),
            ...(ver === null
              ? { ConditionExpression: 'attribute_not_exists(pk)' }
              : { ConditionExpression: '#ver = :ver', ExpressionAttributeNames: names('ver'), ExpressionAttributeValues: { ':ver': ver } }),
          },
        },
      ];
      if (ver === null) {
        // One row per id, the first wins (as ON CONFLICT DO NOTHING would keep it).
        const rows = new Map<string, OutboxItem>();
        for (const o of outboxes.get(alert.id) ?? []) if (!rows.has(o.id)) rows.set(o.id, o);
        for (const o of rows.values()) {
          alertUnit.push({ Put: { TableName: T, Item: outboxItem(o), ConditionExpression: 'attribute_not_exists(pk)' } });
        }
      }
      units.push(alertUnit);
    }
    for (const m of plan.markers.values()) {
      const k = key.unresolved(m.residentId, m.type);
      const was =
        m.before === null
          ? { ConditionExpression: 'attribute_not_exists(pk)' }
          : { ConditionExpression: '#alertId = :was', ExpressionAttributeNames: names('alertId'), ExpressionAttributeValues: { ':was': m.before } };
      if (m.after === m.before) units.push([{ ConditionCheck: { TableName: T, Key: k, ...was } }]);
      else if (m.after === null) units.push([{ Delete: { TableName: T, Key: k, ...was } }]);
      else units.push([{ Put: { TableName: T, Item: { ...k, residentId: m.residentId, type: m.type, alertId: m.after }, ...was } }]);
    }

    try {
      await this.writeFenced(cp, [...units.map(unit), ...stateUnits]);
    } catch (err) {
      // A cancellation writeFenced passes on is one of the first part: nothing was applied.
      if (cancellationCodes(err) !== null) throw new Conflict('a concurrent writer changed what the batch read');
      throw err;
    }
  }

  /**
   * Writes the units and then the checkpoint, in as few transactions as the limits allow, in
   * order: each part starts with the fence check, the last puts the checkpoint, so a stale
   * fence never moves it. A failed fence throws LeaseLostError; another cancellation of the
   * first part (nothing applied) is thrown as it came; one of a later part, as partly applied.
   */
  private async writeFenced(cp: CheckpointWrite, units: Unit[]): Promise<void> {
    const fence = this.leaseCheck(cp.group, cp.partition, cp.fence);
    const checkpoint = this.checkpointPut(cp.group, cp.partition, cp.sequence, cp.snapshot);
    const parts = packParts(units, unit([fence, checkpoint]));
    for (let i = 0; i < parts.length; i++) {
      const last = i === parts.length - 1;
      try {
        await this.transactRetryingConflicts([fence, ...parts[i], ...(last ? [checkpoint] : [])]);
      } catch (err) {
        const codes = cancellationCodes(err);
        if (codes?.[0] === 'ConditionalCheckFailed') throw new LeaseLostError(cp.group, cp.partition);
        if (codes === null || i === 0) throw err;
        // Earlier parts are committed: the checkpoint did not move, so the batch is replayed.
        throw new Error(`checkpoint write partly applied (${i} of ${parts.length} transactions) before a concurrent change; replay it`);
      }
    }
  }

  /**
   * A checkpoint's state changes as units of one action each: with `clear`, deletes of the
   * entries there now (but for keys the write puts again: a transaction may not touch an item
   * twice), then the puts. Written in the parts before the checkpoint's (after a batch's alert
   * changes), so a write larger than one transaction is not atomic. A crash between parts is safe:
   * - Entries newer than the checkpoint (puts committed, checkpoint not) only make the replay
   *   from that checkpoint see readings whose (deviceId, seq) the restored device state has
   *   already admitted: the detectors' reorder buffer drops them as duplicates, and their alert
   *   changes were committed in earlier parts, so nothing is lost or raised twice.
   * - A clear cut short (a rewind): some entries are gone, the others remain beside the old
   *   checkpoint; the devices whose entries went start afresh, which a rewind does anyway.
   */
  private async stateUnits(group: string, partition: number, state: StateChanges | undefined): Promise<Unit[]> {
    if (!state) return [];
    const puts = new Map(state.put); // a key put twice: the last value, as successive writes would leave it
    const drops = state.clear ? (await this.stateItems(group, partition)).filter((i) => !puts.has(i.sk)) : [];
    return [
      // Sized by the item it removes, in case the limit counts it.
      ...drops.map((i) => ({ actions: [{ Delete: { TableName: this.table, Key: key.state(group, partition, i.sk) } }], bytes: itemBytes(i) })),
      ...[...puts].map(([k, v]) => unit([{ Put: { TableName: this.table, Item: stateItem(group, partition, k, v) } }])),
    ];
  }

  private stateItems(group: string, partition: number): Promise<Item[]> {
    return this.query({ KeyConditionExpression: 'pk = :pk', ExpressionAttributeValues: { ':pk': key.stateEntries(group, partition) }, ConsistentRead: true });
  }

  /** TransactionConflict (another transaction in flight on an item) is retried as is. */
  private async transactRetryingConflicts(items: TransactItem[]): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      try {
        await this.transact(items);
        return;
      } catch (err) {
        const codes = cancellationCodes(err);
        const conflictOnly = codes !== null && codes.some((c) => c === 'TransactionConflict') && !codes.includes('ConditionalCheckFailed');
        if (!conflictOnly || attempt >= 10) throw err;
        await new Promise((r) => setTimeout(r, Math.random() * Math.min(10 * 2 ** attempt, 500)));
      }
    }
  }

  /**
   * Due rows through the sparse gsi3 partition `OUTBOX#DUE` (eventually consistent), each
   * taken by a conditional update queued → sending; a row another sender took first, or a
   * stale index entry, fails its condition and is skipped.
   */
  async claimOutbox(now: number, limit: number): Promise<OutboxItem[]> {
    const claimed: OutboxItem[] = [];
    let start: Record<string, any> | undefined;
    do {
      const res = await this.doc.send(
        new QueryCommand({
          TableName: this.table,
          IndexName: 'gsi3',
          KeyConditionExpression: 'g3pk = :p AND g3sk < :bound',
          ExpressionAttributeValues: { ':p': DUE, ':bound': pad(now + 1) },
          Limit: Math.max(limit - claimed.length, 1),
          ExclusiveStartKey: start,
        }),
      );
      start = res.LastEvaluatedKey;
      const taken = await Promise.all((res.Items ?? []).map((i) => this.claimOne(i, now)));
      for (const o of taken) if (o && claimed.length < limit) claimed.push(o);
    } while (start && claimed.length < limit);
    return claimed.sort((a, b) => a.nextAttemptAt - b.nextAttemptAt || a.createdAt - b.createdAt || cmp(a.id, b.id));
  }

  private async claimOne(seen: Item, now: number): Promise<OutboxItem | null> {
    try {
      const { Attributes } = await this.doc.send(
        new UpdateCommand({
          TableName: this.table,
          Key: key.outbox(seen.id),
          ConditionExpression: '#status = :queued AND #nextAttemptAt = :next',
          UpdateExpression: 'SET #status = :sending, #attempts = #attempts + :one, #updatedAt = :now, #g3pk = :g3pk, #g3sk = :id',
          ExpressionAttributeNames: names('status', 'nextAttemptAt', 'attempts', 'updatedAt', 'g3pk', 'g3sk'),
          ExpressionAttributeValues: {
            ':queued': 'queued',
            ':next': seen.nextAttemptAt,
            ':sending': 'sending',
            ':one': 1,
            ':now': now,
            ':g3pk': SENDING,
            ':id': seen.id,
          },
          ReturnValues: 'ALL_NEW',
        }),
      );
      return Attributes ? toOutbox(Attributes) : null;
    } catch (err) {
      if (isConditionFailure(err)) return null;
      throw err;
    }
  }

  async completeOutbox(
    id: string,
    result: { ok: true; providerId?: string } | { ok: false; error: string; retryAt: number | null },
    now: number,
  ): Promise<void> {
    let update: string;
    let values: Record<string, unknown>;
    const attrs = ['status', 'updatedAt', 'g3pk', 'g3sk'];
    if (result.ok) {
      update = 'SET #status = :sent, #providerId = :provider, #updatedAt = :now REMOVE #g3pk, #g3sk';
      values = { ':sent': 'sent', ':provider': result.providerId ?? null, ':now': now };
      attrs.push('providerId');
    } else if (result.retryAt === null) {
      update = 'SET #status = :failed, #lastError = :error, #updatedAt = :now REMOVE #g3pk, #g3sk';
      values = { ':failed': 'failed', ':error': result.error, ':now': now };
      attrs.push('lastError');
    } else {
      // The due key embeds createdAt, which the update cannot compute: read it first.
      const row = await this.get(key.outbox(id));
      if (!row || row.status !== 'sending') return;
      update = 'SET #status = :queued, #nextAttemptAt = :retry, #lastError = :error, #updatedAt = :now, #g3pk = :due, #g3sk = :dueKey';
      values = {
        ':queued': 'queued',
        ':retry': result.retryAt,
        ':error': result.error,
        ':now': now,
        ':due': DUE,
        ':dueKey': dueKey(result.retryAt, row.createdAt, id),
      };
      attrs.push('nextAttemptAt', 'lastError');
    }
    const row = {
      TableName: this.table,
      Key: key.outbox(id),
      // Only a row being sent can complete, so a late report never reopens a final row.
      ConditionExpression: '#status = :sendingState',
      UpdateExpression: update,
      ExpressionAttributeNames: names(...attrs),
      ExpressionAttributeValues: { ...values, ':sendingState': 'sending' },
    };
    if (result.ok && result.providerId !== undefined) {
      // The provider id and its lookup item (recordDelivery finds the row through it) together.
      const link = { ...key.providerLink(result.providerId, id), providerId: result.providerId, outboxId: id, createdAt: now };
      try {
        await this.transactRetryingConflicts([{ Update: row }, { Put: { TableName: this.table, Item: link } }]);
      } catch (err) {
        if (cancellationCodes(err)?.[0] !== 'ConditionalCheckFailed') throw err;
      }
      return;
    }
    try {
      await this.doc.send(new UpdateCommand(row));
    } catch (err) {
      if (!isConditionFailure(err)) throw err;
    }
  }

  /** Rows left `sending`, found through the sparse gsi3 partition `OUTBOX#SENDING`. */
  async requeueStuckOutbox(claimedBefore: number, now: number): Promise<number> {
    const sending = await this.query({ IndexName: 'gsi3', KeyConditionExpression: 'g3pk = :p', ExpressionAttributeValues: { ':p': SENDING } });
    const stuck = sending.filter((row) => row.updatedAt < claimedBefore);
    const done = await Promise.all(
      stuck.map(async (row) => {
        try {
          await this.doc.send(
            new UpdateCommand({
              TableName: this.table,
              Key: key.outbox(row.id),
              ConditionExpression: '#status = :sending AND #updatedAt < :before',
              UpdateExpression: 'SET #status = :queued, #nextAttemptAt = :now, #updatedAt = :now, #g3pk = :due, #g3sk = :dueKey',
              ExpressionAttributeNames: names('status', 'nextAttemptAt', 'updatedAt', 'g3pk', 'g3sk'),
              ExpressionAttributeValues: {
                ':sending': 'sending',
                ':queued': 'queued',
                ':now': now,
                ':before': claimedBefore,
                ':due': DUE,
                ':dueKey': dueKey(now, row.createdAt, row.id),
              },
            }),
          );
          return 1;
        } catch (err) {
          if (isConditionFailure(err)) return 0;
          throw err;
        }
      }),
    );
    return done.reduce<number>((a, b) => a + b, 0);
  }

  /** Through gsi2 (eventually consistent), sorted by creation time, step, contact and channel. */
  async listOutbox(alertId: string): Promise<OutboxItem[]> {
    return (await this.alertOutbox(alertId)).map(toOutbox).sort(outboxOrder);
  }

  private alertOutbox(alertId: string): Promise<Item[]> {
    return this.query({ IndexName: 'gsi2', KeyConditionExpression: 'g2pk = :p', ExpressionAttributeValues: { ':p': `OUTBOX#${alertId}` } });
  }

  /** One conditional `PutItem` per row (`attribute_not_exists`), so a row already there stays as it is. */
  async enqueueOutbox(items: OutboxItem[]): Promise<number> {
    const rows = new Map<string, OutboxItem>();
    for (const o of items) if (!rows.has(o.id)) rows.set(o.id, o); // the first of an id wins
    const put = async (o: OutboxItem): Promise<number> => {
      try {
        await this.doc.send(new PutCommand({ TableName: this.table, Item: outboxItem(o), ConditionExpression: 'attribute_not_exists(pk)' }));
        return 1;
      } catch (err) {
        if (isConditionFailure(err)) return 0;
        throw err;
      }
    };
    const done = await Promise.all([...rows.values()].map(put));
    return done.reduce<number>((a, b) => a + b, 0);
  }

  /**
   * The alert's rows through gsi2 (eventually consistent), then per row a conditional update
   * queued → cancelled (leaving gsi3, so no claim finds it). A row the index shows in a final
   * state is final (those never change back); one it shows queued or sending is tried, and
   * its condition decides. A row put a moment ago may not be in the index yet: see the docs.
   */
  async cancelOutbox(alertId: string, reason: string, now: number): Promise<number> {
    const open = (await this.alertOutbox(alertId)).filter((row) => row.status === 'queued' || row.status === 'sending');
    const done = await Promise.all(
      open.map(async (row) => {
        try {
          await this.doc.send(
            new UpdateCommand({
              TableName: this.table,
              Key: key.outbox(row.id),
              ConditionExpression: '#status = :queued',
              UpdateExpression: 'SET #status = :cancelled, #lastError = :reason, #updatedAt = :now REMOVE #g3pk, #g3sk',
              ExpressionAttributeNames: names('status', 'lastError', 'updatedAt', 'g3pk', 'g3sk'),
              ExpressionAttributeValues: { ':queued': 'queued', ':cancelled': 'cancelled', ':reason': reason, ':now': now },
            }),
          );
          return 1;
        } catch (err) {
          if (isConditionFailure(err)) return 0;
          throw err;
        }
      }),
    );
    return done.reduce<number>((a, b) => a + b, 0);
  }

  /**
   * The lookup items `PROVIDER#<providerId>` (a consistent Query: one item per row sent with
   * that id, usually one) name the rows; the first of them (by creation, id) on `channel` is
   * updated, conditioned on being `sent`/`sending` with that provider id and channel. A row
   * that is already final is returned as it is.
   */
  async recordDelivery(channel: string, providerId: string, status: 'delivered' | 'failed', error: string | null, now: number): Promise<OutboxItem | null> {
    const links = await this.query({
      KeyConditionExpression: 'pk = :pk AND begins_with(sk, :prefix)',
      ExpressionAttributeValues: { ':pk': `PROVIDER#${providerId}`, ':prefix': 'OUTBOX#' },
      ConsistentRead: true,
    });
    if (links.length === 0) return null;
    const row = (await this.getMany(links.map((l) => key.outbox(l.outboxId))))
      .map(toOutbox)
      .filter((o) => o.channel === channel && o.providerId === providerId)
      .sort((a, b) => a.createdAt - b.createdAt || cmp(a.id, b.id))[0];
    if (!row) return null;
    try {
      const { Attributes } = await this.doc.send(
        new UpdateCommand({
          TableName: this.table,
          Key: key.outbox(row.id),
          // A report only moves a row the provider took; `delivered` is final, a later `failed` does not undo it.
          ConditionExpression: '#status IN (:sent, :sending) AND #channel = :channel AND #providerId = :providerId',
          UpdateExpression: 'SET #status = :status, #lastError = :error, #updatedAt = :now',
          ExpressionAttributeNames: names('status', 'channel', 'providerId', 'lastError', 'updatedAt'),
          ExpressionAttributeValues: {
            ':sent': 'sent',
            ':sending': 'sending',
            ':channel': channel,
            ':providerId': providerId,
            ':status': status,
            ':error': error,
            ':now': now,
          },
          ReturnValues: 'ALL_NEW',
        }),
      );
      return toOutbox(Attributes!);
    } catch (err) {
      if (!isConditionFailure(err)) throw err;
      const current = await this.get(key.outbox(row.id));
      return current ? toOutbox(current) : null;
    }
  }

  // API keys

  /** The key and its hash lookup item in one transaction, each conditioned on not existing. */
  async createApiKey(k: Omit<ApiKey, 'revokedAt'>): Promise<ApiKey> {
    const apiKey: ApiKey = { ...k, scopes: [...k.scopes], residentIds: k.residentIds === null ? null : [...k.residentIds], revokedAt: null };
    try {
      await this.transact([
        { Put: { TableName: this.table, Item: apiKeyItem(apiKey), ConditionExpression: 'attribute_not_exists(pk)' } },
        { Put: { TableName: this.table, Item: { ...key.apiKeyHash(k.keyHash), id: k.id }, ConditionExpression: 'attribute_not_exists(pk)' } },
      ]);
    } catch (err) {
      const codes = cancellationCodes(err);
      if (codes?.[0] === 'ConditionalCheckFailed') throw new VigilError('CONFLICT', `API key ${k.id} already exists`);
      if (codes?.[1] === 'ConditionalCheckFailed') throw new VigilError('CONFLICT', 'key hash is already in use');
      throw err;
    }
    return apiKey;
  }

  /** Two strongly consistent `GetItem`s: the lookup item, then the key it names. */
  async findApiKeyByHash(keyHash: string): Promise<ApiKey | null> {
    const link = await this.get(key.apiKeyHash(keyHash));
    if (!link) return null;
    const item = await this.get(key.apiKey(link.id));
    return item ? toApiKey(item) : null;
  }

  async listApiKeys(): Promise<ApiKey[]> {
    const items = await this.query({
      KeyConditionExpression: 'pk = :pk AND begins_with(sk, :prefix)',
      ExpressionAttributeValues: { ':pk': 'APIKEYS', ':prefix': 'APIKEY#' },
      ConsistentRead: true,
    });
    return items.map(toApiKey).sort((a, b) => a.createdAt - b.createdAt || cmp(a.id, b.id));
  }

  /** One `UpdateItem`: `revokedAt` set if absent (the first revocation's time stays). */
  async revokeApiKey(id: string, at: number): Promise<ApiKey | null> {
    try {
      const { Attributes } = await this.doc.send(
        new UpdateCommand({
          TableName: this.table,
          Key: key.apiKey(id),
          ConditionExpression: 'attribute_exists(pk)',
          UpdateExpression: 'SET #revokedAt = if_not_exists(#revokedAt, :at)',
          ExpressionAttributeNames: names('revokedAt'),
          ExpressionAttributeValues: { ':at': at },
          ReturnValues: 'ALL_NEW',
        }),
      );
      return toApiKey(Attributes!);
    } catch (err) {
      if (isConditionFailure(err)) return null;
      throw err;
    }
  }

  // processing

  /**
   * A compare-and-set: the lease read (strongly consistent) decides the new epoch, and the
   * write is conditioned on that exact lease (or on its absence). Losing the race re-reads.
   */
  async acquireLease(group: string, partition: number, owner: string, ttlMs: number, now: number): Promise<Lease | null> {
    const k = key.lease(group, partition);
    for (let attempt = 0; attempt < 10; attempt++) {
      const old = await this.get(k);
      if (old && old.owner !== owner && old.expiresAt > now) return null;
      const epoch = !old ? 1 : old.owner === owner ? old.epoch : old.epoch + 1;
      const lease: Lease = { group, partition, owner, epoch, expiresAt: now + ttlMs };
      try {
        await this.doc.send(
          new PutCommand({
            TableName: this.table,
            Item: { ...k, ...lease },
            ...(old
              ? {
                  ConditionExpression: '#owner = :owner AND #epoch = :epoch AND #expiresAt = :expiresAt',
                  ExpressionAttributeNames: names('owner', 'epoch', 'expiresAt'),
                  ExpressionAttributeValues: { ':owner': old.owner, ':epoch': old.epoch, ':expiresAt': old.expiresAt },
                }
              : { ConditionExpression: 'attribute_not_exists(pk)' }),
          }),
        );
        return lease;
      } catch (err) {
        if (!isConditionFailure(err)) throw err;
      }
    }
    return null;
  }

  /** Even an expired lease renews while nobody took it: no one else can have written under it. */
  async renewLease(lease: Lease, ttlMs: number, now: number): Promise<Lease | null> {
    const expiresAt = now + ttlMs;
    return (await this.updateLease(lease, expiresAt)) ? { ...lease, expiresAt } : null;
  }

  async releaseLease(lease: Lease): Promise<void> {
    await this.updateLease(lease, 0);
  }

  private async updateLease(lease: Lease, expiresAt: number): Promise<boolean> {
    try {
      await this.doc.send(
        new UpdateCommand({
          TableName: this.table,
          Key: key.lease(lease.group, lease.partition),
          ConditionExpression: '#owner = :owner AND #epoch = :epoch',
          UpdateExpression: 'SET #expiresAt = :expiresAt',
          ExpressionAttributeNames: names('owner', 'epoch', 'expiresAt'),
          ExpressionAttributeValues: { ':owner': lease.owner, ':epoch': lease.epoch, ':expiresAt': expiresAt },
        }),
      );
      return true;
    } catch (err) {
      if (isConditionFailure(err)) return false;
      throw err;
    }
  }

  async listLeases(group: string): Promise<Lease[]> {
    return (await this.groupItems(group, 'LEASE#')).map(toLease).sort((a, b) => a.partition - b.partition);
  }

  async getCheckpoint(group: string, partition: number): Promise<Checkpoint | null> {
    const item = await this.get(key.checkpoint(group, partition));
    return item ? toCheckpoint(item) : null;
  }

  async listCheckpoints(group: string): Promise<Checkpoint[]> {
    return (await this.groupItems(group, 'CHECKPOINT#')).map(toCheckpoint).sort((a, b) => a.partition - b.partition);
  }

  private groupItems(group: string, prefix: string): Promise<Item[]> {
    return this.query({
      KeyConditionExpression: 'pk = :pk AND begins_with(sk, :prefix)',
      ExpressionAttributeValues: { ':pk': `GROUP#${group}`, ':prefix': prefix },
      ConsistentRead: true,
    });
  }

  async getCheckpointState(group: string, partition: number): Promise<Map<string, unknown>> {
    return new Map((await this.stateItems(group, partition)).map((i) => [i.sk as string, parse(i.value)]));
  }

  /** One transaction with the fence check, or several when the state changes need them (see `stateUnits`). */
  async writeCheckpoint(group: string, partition: number, sequence: string | null, snapshot: unknown, fence: Fence, state?: StateChanges): Promise<void> {
    await this.writeFenced({ group, partition, sequence, snapshot, fence }, await this.stateUnits(group, partition, state));
  }

  async close(): Promise<void> {
    this.client.destroy();
  }
}
