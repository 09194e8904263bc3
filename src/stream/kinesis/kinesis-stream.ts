/**
 * The stream on Amazon Kinesis Data Streams (DESIGN §2, the AWS backend), with the AWS SDK v3.
 * The full design (mapping, positions, resharding, limits) is docs/stream-kinesis.md.
 *
 * On AWS: one Kinesis stream, created (when missing) with `partitions` shards and tagged
 * `vigil.partitions` = `partitions`; its retention set to the configured period, clamped to
 * Kinesis' 24 h … 8760 h.
 *
 * Invariants:
 * 1. Partition p has a fixed hash key, `partitionHashKey(p, partitions)` (the midpoint of the
 *    p-th equal slice of the hash-key space; kinesis-records.ts). A record is sent with
 *    `PartitionKey` = deviceId and `ExplicitHashKey` = the key of `partitionOf(deviceId)`, so a
 *    device has the same partition on every backend, and a partition's records go to the ONE
 *    open shard whose range holds its key. On a stream Vigil created, partition p is shard p.
 *    The partition count is the stream's tag `vigil.partitions`: `open` refuses another count
 *    (a device's partition depends on it), and tags an untagged stream only when its shards
 *    still are the `partitions` shards CreateStream made.
 * 2. Resharding (SplitShard, MergeShards, UpdateShardCount) may run at any time. A partition's
 *    LINEAGE is the shards whose range holds its key, in shard-index order: each one the child
 *    of the one before (checked; throws otherwise), at most the last one open. A reader reads
 *    a shard to its end (GetRecords answers no NextShardIterator) before it goes on with the
 *    next one, from its start — so a device's records, all in its partition's lineage, keep
 *    their order through any reshard. A shard may hold several partitions' keys (after a merge,
 *    or on a stream with fewer shards than partitions): a reader keeps only the records whose
 *    PartitionKey is of its partition.
 * 3. A record's `sequence` names its shard (kinesis-records.ts): a root shard's records keep
 *    their Kinesis sequence number, a later shard's get its index in front, so sequences grow
 *    along the lineage and any sequence, taken before or after a reshard, says where to resume.
 *    `timestamp` is `ApproximateArrivalTimestamp`. A record is the packed JSON of one entry's
 *    non-duplicate readings, cut into several records only past 1 MiB.
 * 4. `append` sends all of a call's records with `PutRecords` (≤ 500 records / 5 MiB per
 *    request), retries only the failed ones with backoff until `timeoutMs`, and resolves once
 *    every record is acknowledged. Kinesis does not keep the order of a `PutRecords` request
 *    once one record failed and is retried, so a request carries at most ONE record per device:
 *    a device's further records (an entry cut in parts, several entries) go in later rounds,
 *    after the previous one was acknowledged. A device's appends run one after another in this
 *    process, so its records keep request order.
 * 5. Dedupe on (deviceId, seq), with in-memory `SeqRanges` per device — Kinesis has no key-value
 *    store, and no lookup by key. A partition's ranges are seeded, lazily on its first use in
 *    the process, by reading its whole retained lineage (the retention period bounds it), then
 *    kept up to date by this process's own acknowledged appends and by every later catch-up of
 *    the partition (`head`, LATEST). Hence:
 *    - duplicates of anything still retained are found after a restart (the seeding scan);
 *    - across processes appending at the same time, dedupe is best effort: a reading appended
 *      by another process after this one's last catch-up is not known here and may be
 *      appended twice, which consumers absorb (DESIGN §3.2, effects idempotent on
 *      (deviceId, seq)). Ingest routes a device to one process in practice.
 *    - COST at scale: the seeding scan reads every retained byte of a partition's shards once
 *      per process start (a shard serves 2 MiB/s and 5 GetRecords/s shared with every consumer:
 *      24 h of a busy shard is up to ~170 GiB, i.e. ~1 day to scan — unusable). It is fine for
 *      the emulator, small streams and short retention; a large deployment must keep the ranges
 *      in a store (DynamoDB, conditional writes like NATS' KV) instead: a later change.
 *    A seq is recorded only after Kinesis acknowledged its record (a crash in between can at
 *    worst append the reading twice, never lose it).
 * 6. Reads: `GetRecords` from an `AFTER_SEQUENCE_NUMBER` iterator (TRIM_HORIZON for null, and
 *    for a shard entered from its parent); the place reached (shard, last Kinesis sequence
 *    read, `NextShardIterator`) is kept per partition with the sequence it continues after, so
 *    a reader reading batch after batch costs one call per batch.
 * 7. Positions: TRIM_HORIZON → null; LATEST → `head` (the lineage is read forward from the last
 *    known tip to the end: Kinesis cannot say a shard's last sequence); AT_TIMESTAMP → the
 *    sequence of the last record that arrived before t, found by reading forward from a sparse
 *    in-memory index (one (arrival time, sequence) per second, filled by the catch-ups) or the
 *    trim horizon; AFTER_SEQUENCE → as given. `backlog` counts the partition's records after a
 *    sequence among the last BACKLOG_WINDOW the catch-ups saw (Kinesis sequences are sparse).
 * 8. `waitForAppend` cannot be push-driven on Kinesis: it resolves after min(timeoutMs, 200 ms)
 *    (a poll interval for the caller), or earlier when this process appended.
 * 9. Retention is Kinesis' own, ≥ 24 h; like JetStream, a shard's newest record expires too,
 *    and a closed shard disappears once its records expired: a lineage then starts later.
 *
 * Departure from the `Stream` contract, as on NATS: a rejected append may leave some of its
 * records visible (Kinesis has no atomic multi-record put). Those acknowledged are recorded as
 * seen, so a retry of the whole request appends only the rest.
 */
import {
  AddTagsToStreamCommand,
  CreateStreamCommand,
  DecreaseStreamRetentionPeriodCommand,
  DescribeStreamSummaryCommand,
  ExpiredIteratorException,
  GetRecordsCommand,
  GetShardIteratorCommand,
  IncreaseStreamRetentionPeriodCommand,
  KinesisClient,
  ListShardsCommand,
  ListTagsForStreamCommand,
  ProvisionedThroughputExceededException,
  PutRecordsCommand,
  ResourceInUseException,
  ResourceNotFoundException,
  type ChildShard,
  type GetRecordsCommandOutput,
  type PutRecordsRequestEntry,
  type Shard,
  type _Record,
} from '@aws-sdk/client-kinesis';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import {
  compareSequences,
  StreamUnavailableError,
  type AppendEntry,
  type AppendResult,
  type Position,
  type Sequence,
  type Stream,
  type StreamRecord,
} from '../types.js';
import { partitionOf } from '../partitioner.js';
import { SeqRanges } from '../../core/seq-ranges.js';
import { decodeSequence, encodeSequence, packRecords, partitionHashKey, shardIndexOf } from './kinesis-records.js';
import { AppendWaiters } from '../append-waiters.js';

export interface KinesisStreamOptions {
  streamName: string;
  region: string;
  /** e.g. kinesalite's `http://127.0.0.1:4567`; AWS's own endpoint when absent. */
  endpoint?: string;
  partitions: number;
  retentionMs: number;
  /** Default: the SDK's provider chain. */
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
  /**
   * Longest time an append may spend retrying throttled records, and the HTTP request timeout.
   * A phone is better served by a quick 503 and its retry than by a request hanging.
   */
  timeoutMs?: number;
  /** SDK attempts per request (network errors, 5xx). Default 3. */
  maxAttempts?: number;
}

/** The stream tag that records the partition count its data was written with (invariant 1). */
export const PARTITIONS_TAG = 'vigil.partitions';

const DEFAULT_TIMEOUT_MS = 5000;
const MAX_PUT_RECORDS = 500;
const MAX_PUT_BYTES = 5 * 1024 * 1024;
const MAX_GET_LIMIT = 10_000;
const WAIT_POLL_MS = 200;
const INDEX_STEP_MS = 1000;
const MIN_RETENTION_H = 24;
const MAX_RETENTION_H = 8760;
/** GetRecords calls one read may make without finding a record of its partition (gaps after expiry, other partitions' records). */
const MAX_EMPTY_HOPS = 20;
/** Newest sequences per partition kept to count `backlog`. */
const BACKLOG_WINDOW = 4096;
/** ListShards at most this often when a lineage needs a shard not listed yet. */
const LIST_INTERVAL_MS = 1000;
const utf8 = new TextDecoder();

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function unavailable(err: unknown): StreamUnavailableError {
  if (err instanceof StreamUnavailableError) return err;
  return new StreamUnavailableError(`Kinesis did not acknowledge the append: ${(err as Error)?.message ?? String(err)}`, 1);
}

/** A shard as the lineages need it. */
interface ShardInfo {
  id: string;
  /** From the shard id: the order Kinesis created shards in. */
  index: number;
  start: bigint;
  end: bigint;
  /** ParentShardId and AdjacentParentShardId, where set: none for a shard CreateStream made. */
  parents: string[];
  closed: boolean;
}

/** A place in a partition's lineage: a shard, the Kinesis sequence last read in it (null: its start), an iterator continuing after it. */
interface Place {
  shard: ShardInfo;
  after: string | null;
  iterator: string | null;
}

interface PartitionState {
  hashKey: bigint;
  /** `ExplicitHashKey` of the partition's records. */
  hashKeyText: string;
  /** The lineage, cached for the shard list version it was computed from. */
  lineage: { version: number; shards: ShardInfo[] } | null;
  /** The first catch-up (the seeding scan); null until the partition is first used. */
  loaded: Promise<void> | null;
  /** Newest sequence seen by the catch-ups, and where they continue (possibly past it). */
  tail: Sequence | null;
  tailAt: Place | null;
  /** Sparse (arrival time, sequence), ascending: where AT_TIMESTAMP starts reading. */
  index: { ts: number; seq: Sequence }[];
  /** The newest sequences seen by the catch-ups, ascending, at most BACKLOG_WINDOW. */
  recent: Sequence[];
  /** Serializes the catch-ups and reads of this partition. */
  chain: Promise<unknown>;
  /** The reader's place and the sequence it continues after. */
  cursor: { after: Sequence | null; at: Place } | null;
}

interface Step {
  /** Every record GetRecords answered (all partitions of the shard). */
  raw: _Record[];
  /** This partition's records among them. */
  mine: StreamRecord[];
  /** Nothing more to read for now. */
  tip: boolean;
}

export class KinesisStream implements Stream {
  readonly partitions: number;
  private readonly name: string;
  private readonly timeoutMs: number;
  private readonly parts: PartitionState[];
  /** Every shard seen (ListShards, ChildShards), by id; `version` counts the changes. */
  private readonly shards = new Map<string, ShardInfo>();
  private shardsVersion = 0;
  private listing: Promise<void> | null = null;
  private listedAt = 0;
  /** Dedupe ranges per device (see invariant 5). */
  private readonly seen = new Map<string, SeqRanges>();
  private readonly deviceTails = new Map<string, Promise<void>>();
  private readonly waiters = new AppendWaiters();
  private closed = false;

  private constructor(
    private readonly client: KinesisClient,
    opts: KinesisStreamOptions,
    shards: ShardInfo[],
  ) {
    this.partitions = opts.partitions;
    this.name = opts.streamName;
    this.timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.learn(shards);
    this.listedAt = Date.now();
    this.parts = Array.from({ length: opts.partitions }, (_, p) => {
      const hashKey = partitionHashKey(p, opts.partitions);
      return {
        hashKey,
        hashKeyText: hashKey.toString(),
        lineage: null,
        loaded: null,
        tail: null,
        tailAt: null,
        index: [],
        recent: [],
        chain: Promise.resolve(),
        cursor: null,
      };
    });
  }

  /** Creates the stream (or adjusts its retention), then checks its partition count (invariant 1). */
  static async open(o: KinesisStreamOptions): Promise<KinesisStream> {
    const timeout = o.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    const client = new KinesisClient({
      region: o.region,
      endpoint: o.endpoint,
      credentials: o.credentials,
      maxAttempts: o.maxAttempts ?? 3,
      // The default HTTP/2-capable handler fails against kinesalite (DESIGN §2).
      requestHandler: new NodeHttpHandler({ connectionTimeout: timeout, requestTimeout: timeout }),
    });
    try {
      await ensureStream(client, o);
      const shards = await listShards(client, o.streamName);
      await checkPartitions(client, o, shards);
      return new KinesisStream(client, o, shards);
    } catch (err) {
      client.destroy();
      throw err;
    }
  }

  // ---------------------------------------------------------------- append

  async append(entries: AppendEntry[]): Promise<AppendResult[]> {
    if (this.closed) throw new StreamUnavailableError('stream is closed', 5);
    const devices = [...new Set(entries.map((e) => e.deviceId))];
    // After every earlier append of these devices in this process: records keep request order.
    const prev = devices.map((d) => this.deviceTails.get(d)).filter((p): p is Promise<void> => !!p);
    const run = Promise.all(prev).then(() => this.appendNow(entries));
    const tail = run.then(
      () => undefined,
      () => undefined,
    );
    for (const d of devices) this.deviceTails.set(d, tail);
    void tail.then(() => {
      for (const d of devices) if (this.deviceTails.get(d) === tail) this.deviceTails.delete(d);
    });
    try {
      return await run;
    } catch (err) {
      throw err instanceof RangeError ? err : unavailable(err);
    }
  }

  private async appendNow(entries: AppendEntry[]): Promise<AppendResult[]> {
    const partitionOfDevice = new Map<string, number>();
    for (const e of entries) partitionOfDevice.set(e.deviceId, partitionOf(e.deviceId, this.partitions));
    await Promise.all([...new Set(partitionOfDevice.values())].map((p) => this.ensureLoaded(p)));

    const results: AppendResult[] = new Array(entries.length);
    // Copies, so that an entry repeating an earlier one of this call is a duplicate too.
    const checks = new Map<string, SeqRanges>();
    // Per device, its records in order; everything is packed before anything is sent.
    const queues = new Map<string, { index: number; seqs: number[]; request: PutRecordsRequestEntry }[]>();
    for (let i = 0; i < entries.length; i++) {
      const e = entries[i];
      let check = checks.get(e.deviceId);
      if (!check) {
        check = new SeqRanges((this.seen.get(e.deviceId)?.toJSON() ?? []).slice());
        checks.set(e.deviceId, check);
      }
      const duplicates: number[] = [];
      const kept: string[] = [];
      const keptSeqs: number[] = [];
      for (let k = 0; k < e.seqs.length; k++) {
        if (check.add(e.seqs[k])) {
          kept.push(e.readings[k]);
          keptSeqs.push(e.seqs[k]);
        } else duplicates.push(k);
      }
      results[i] = { partition: null, sequence: null, duplicates };
      if (kept.length === 0) continue;
      const hashKey = this.parts[partitionOfDevice.get(e.deviceId)!].hashKeyText;
      let queue = queues.get(e.deviceId);
      if (!queue) queues.set(e.deviceId, (queue = []));
      for (const part of packRecords(e.deviceId, e.residentId, kept, keptSeqs)) {
        queue.push({
          index: i,
          seqs: part.seqs,
          request: { Data: Buffer.from(part.data), PartitionKey: e.deviceId, ExplicitHashKey: hashKey },
        });
      }
    }

    const deadline = Date.now() + this.timeoutMs;
    let failedRounds = 0;
    let appended = false;
    try {
      while (queues.size > 0) {
        // One record per device per round (invariant 4).
        const round = [...queues].map(([deviceId, queue]) => ({ deviceId, ...queue[0] }));
        const batches = chunk(round);
        const outcomes = await Promise.all(batches.map((batch) => this.putRecords(batch.map((r) => r.request))));
        let failed = 0;
        let throttled = false;
        batches.forEach((batch, b) => {
          const answer = outcomes[b];
          batch.forEach((r, k) => {
            const got = answer?.[k];
            if (!got || !got.SequenceNumber || got.ErrorCode) {
              failed++;
              if (!got || got.ErrorCode === 'ProvisionedThroughputExceededException') throttled = true;
              return;
            }
            // An entry cut in parts reports its last part: reading after it skips none of them.
            const partition = partitionOfDevice.get(r.deviceId)!;
            const sequence = encodeSequence(got.ShardId!, this.isRoot(got.ShardId!), got.SequenceNumber);
            results[r.index] = { partition, sequence, duplicates: results[r.index].duplicates };
            this.record(r.deviceId, r.seqs);
            appended = true;
            const queue = queues.get(r.deviceId)!;
            queue.shift();
            if (queue.length === 0) queues.delete(r.deviceId);
          });
        });
        if (failed === 0) {
          failedRounds = 0;
          continue;
        }
        failedRounds++;
        const backoff = Math.min(1000, 50 * 2 ** (failedRounds - 1)) * (0.5 + Math.random() / 2);
        if (Date.now() + backoff > deadline) {
          throw new StreamUnavailableError(
            `Kinesis refused ${failed} record(s) for ${this.timeoutMs} ms${throttled ? ' (throughput exceeded)' : ''}`,
            throttled ? 1 : 2,
          );
        }
        await sleep(backoff);
      }
    } finally {
      if (appended) this.waiters.wakeAll();
    }
    return results;
  }

  /** The answer per record, or null for a whole request refused for throughput (all to retry). */
  private async putRecords(records: PutRecordsRequestEntry[]) {
    try {
      const out = await this.client.send(new PutRecordsCommand({ StreamName: this.name, Records: records }));
      return out.Records ?? null;
    } catch (err) {
      if (err instanceof ProvisionedThroughputExceededException) return null;
      throw err;
    }
  }

  private record(deviceId: string, seqs: number[]): void {
    let ranges = this.seen.get(deviceId);
    if (!ranges) this.seen.set(deviceId, (ranges = new SeqRanges()));
    for (const seq of seqs) ranges.add(seq);
  }

  private recordData(data: string): void {
    try {
      const r = JSON.parse(data) as { deviceId?: unknown; readings?: { seq?: unknown }[] };
      if (typeof r.deviceId !== 'string' || !Array.isArray(r.readings)) return;
      this.record(
        r.deviceId,
        r.readings.map((x) => x?.seq).filter((s): s is number => typeof s === 'number'),
      );
    } catch {
      // Not a Vigil record (someone else wrote to the stream): nothing to dedupe.
    }
  }

  // ---------------------------------------------------------------- shards and lineages

  private learn(shards: ShardInfo[]): void {
    for (const s of shards) this.shards.set(s.id, s);
    this.shardsVersion++;
  }

  /** Children announced by GetRecords at the end of a closed shard (AWS does; kinesalite does not). */
  private learnChildren(children: ChildShard[] | undefined): void {
    const fresh = (children ?? []).filter((c) => c.ShardId && c.HashKeyRange && !this.shards.has(c.ShardId));
    if (fresh.length === 0) return;
    this.learn(
      fresh.map((c) => ({
        id: c.ShardId!,
        index: shardIndexOf(c.ShardId!),
        start: BigInt(c.HashKeyRange!.StartingHashKey!),
        end: BigInt(c.HashKeyRange!.EndingHashKey!),
        parents: c.ParentShards ?? [],
        closed: false,
      })),
    );
  }

  /** Lists the shards again (at most every LIST_INTERVAL_MS; concurrent callers share one call). */
  private refreshShards(): Promise<void> {
    this.listing ??= (async () => {
      const wait = this.listedAt + LIST_INTERVAL_MS - Date.now();
      if (wait > 0) await sleep(wait);
      const shards = await listShards(this.client, this.name);
      this.listedAt = Date.now();
      this.learn(shards);
    })().finally(() => {
      this.listing = null;
    });
    return this.listing;
  }

  /**
   * Whether a shard is a root (made by CreateStream). One this process does not know yet was made
   * after it listed the shards, hence by a reshard: not a root.
   */
  private isRoot(shardId: string): boolean {
    return this.shards.get(shardId)?.parents.length === 0;
  }

  /** The shards that hold the partition's key, oldest first, each the child of the one before (invariant 2). */
  private lineageOf(partition: number): ShardInfo[] {
    const part = this.parts[partition];
    if (part.lineage?.version === this.shardsVersion) return part.lineage.shards;
    const shards = [...this.shards.values()].filter((s) => s.start <= part.hashKey && part.hashKey <= s.end).sort((a, b) => a.index - b.index);
    for (let i = 1; i < shards.length; i++) {
      if (!shards[i].parents.includes(shards[i - 1].id)) {
        throw new Error(
          `Kinesis stream ${this.name}: shard ${shards[i].id} follows ${shards[i - 1].id} in the lineage of partition ${partition} ` +
            `but is not its child (shard ids are expected to grow from parent to child)`,
        );
      }
    }
    part.lineage = { version: this.shardsVersion, shards };
    return shards;
  }

  /** The shard after `shard` in the partition's lineage, or null when there is none (yet). */
  private async nextInLineage(partition: number, shard: ShardInfo): Promise<ShardInfo | null> {
    for (let attempt = 0; ; attempt++) {
      const lineage = this.lineageOf(partition);
      const i = lineage.findIndex((s) => s.id === shard.id);
      if (i >= 0 && i + 1 < lineage.length) return lineage[i + 1];
      if (attempt > 0) return null;
      await this.refreshShards();
    }
  }

  /** Where a reader continuing after `sequence` reads next (null: the oldest record kept). */
  private async locate(partition: number, sequence: Sequence | null): Promise<Place> {
    let lineage = this.lineageOf(partition);
    if (lineage.length === 0) {
      await this.refreshShards();
      lineage = this.lineageOf(partition);
      if (lineage.length === 0) throw new Error(`no shard of the Kinesis stream ${this.name} holds partition ${partition}'s hash key`);
    }
    const first = lineage[0];
    const start: Place = { shard: first, after: null, iterator: null };
    if (sequence === null) return start;
    const { shardIndex, kinesisSeq } = decodeSequence(sequence);
    // A root shard's record: in the partition's root, unless that expired (then so did the record).
    if (shardIndex === null) return first.parents.length === 0 ? { shard: first, after: kinesisSeq, iterator: null } : start;
    let shard = lineage.find((s) => s.index === shardIndex);
    if (!shard && shardIndex > lineage[lineage.length - 1].index) {
      await this.refreshShards();
      shard = this.lineageOf(partition).find((s) => s.index === shardIndex);
    }
    if (shard) return { shard, after: kinesisSeq, iterator: null };
    // A shard older than every one kept: expired, and its records with it.
    if (shardIndex < first.index && first.parents.length > 0) return start;
    throw new Error(`sequence ${sequence} is not of partition ${partition}: shard ${shardIndex} of ${this.name} does not hold its records`);
  }

  /**
   * One GetRecords at `at` (which it moves on): the records of the whole answer and the
   * partition's among them. A shard read to its end hands over to the next of the lineage.
   */
  private async step(partition: number, at: Place, limit: number): Promise<Step> {
    for (;;) {
      if (at.iterator === null) {
        try {
          at.iterator = await this.iteratorAfter(at.shard.id, at.after);
        } catch (err) {
          // A closed shard past retention is gone, and its records with it: its successor goes on.
          if (!(err instanceof ResourceNotFoundException)) throw err;
          const next = await this.nextInLineage(partition, at.shard);
          if (!next) throw err;
          Object.assign(at, { shard: next, after: null, iterator: null });
          continue;
        }
      }
      let out: GetRecordsCommandOutput;
      try {
        out = await this.client.send(new GetRecordsCommand({ ShardIterator: at.iterator, Limit: Math.min(limit, MAX_GET_LIMIT) }));
      } catch (err) {
        // Over the shard's 5 reads/s (shared by every reader): nothing for now, the iterator stays good.
        if (err instanceof ProvisionedThroughputExceededException) return { raw: [], mine: [], tip: true };
        // Iterators live 5 minutes: a reader that paused longer just gets a new one.
        if (!(err instanceof ExpiredIteratorException)) throw err;
        at.iterator = null;
        continue;
      }
      const raw = out.Records ?? [];
      const next = out.NextShardIterator ?? null;
      // The listed object, whose `closed` may be newer than the place's.
      const shard = this.shards.get(at.shard.id) ?? at.shard;
      // Found before `at` moves, so that a failure here leaves it where it was.
      let successor: ShardInfo | null = null;
      if (next === null) {
        shard.closed = true;
        this.learnChildren(out.ChildShards);
        successor = await this.nextInLineage(partition, shard);
      }
      const mine: StreamRecord[] = [];
      for (const r of raw) {
        if (partitionOf(r.PartitionKey ?? '', this.partitions) !== partition) continue;
        mine.push({ partition, sequence: encodeSequence(shard.id, shard.parents.length === 0, r.SequenceNumber!), timestamp: arrivalOf(r), data: utf8.decode(r.Data) });
      }
      if (raw.length > 0) at.after = raw[raw.length - 1].SequenceNumber!;
      at.iterator = next;
      if (successor) Object.assign(at, { shard: successor, after: null, iterator: null });
      // A closed shard answers empty until its end: only an open one's empty answer is the tip.
      const tip = raw.length === 0 && (next === null ? successor === null : !shard.closed && (out.MillisBehindLatest ?? 0) === 0);
      return { raw, mine, tip };
    }
  }

  private async iteratorAfter(shardId: string, after: string | null): Promise<string> {
    const out = await this.client.send(
      new GetShardIteratorCommand(
        after === null
          ? { StreamName: this.name, ShardId: shardId, ShardIteratorType: 'TRIM_HORIZON' }
          : { StreamName: this.name, ShardId: shardId, ShardIteratorType: 'AFTER_SEQUENCE_NUMBER', StartingSequenceNumber: after },
      ),
    );
    return out.ShardIterator!;
  }

  // ---------------------------------------------------------------- partition state

  private onPartition<T>(partition: number, job: () => Promise<T>): Promise<T> {
    const part = this.parts[partition];
    const run = part.chain.then(job);
    part.chain = run.catch(() => undefined);
    return run;
  }

  private ensureLoaded(partition: number): Promise<void> {
    const part = this.parts[partition];
    if (!part.loaded) {
      part.loaded = this.onPartition(partition, () => this.catchUpNow(partition));
      // A failed scan (network) is tried again by the next use.
      part.loaded.catch(() => {
        part.loaded = null;
      });
    }
    return part.loaded;
  }

  /** Reads the lineage from the last known tip to its end: dedupe ranges, tip, time index, backlog window. */
  private async catchUpNow(partition: number): Promise<void> {
    const part = this.parts[partition];
    part.tailAt ??= await this.locate(partition, part.tail);
    let emptyHops = 0;
    for (;;) {
      const { raw, mine, tip } = await this.step(partition, part.tailAt, MAX_GET_LIMIT);
      // Every device's readings, of this partition or another sharing the shard.
      for (const r of raw) this.recordData(utf8.decode(r.Data));
      for (const r of mine) {
        part.tail = r.sequence;
        const last = part.index[part.index.length - 1];
        if (!last || r.timestamp >= last.ts + INDEX_STEP_MS) part.index.push({ ts: r.timestamp, seq: r.sequence });
        part.recent.push(r.sequence);
      }
      if (part.recent.length > BACKLOG_WINDOW) part.recent.splice(0, part.recent.length - BACKLOG_WINDOW);
      if (tip) return;
      if (raw.length === 0 && ++emptyHops >= MAX_EMPTY_HOPS) return;
    }
  }

  // ---------------------------------------------------------------- reads

  read(partition: number, after: Sequence | null, limit: number): Promise<StreamRecord[]> {
    if (after !== null && !/^\d+$/.test(after)) return Promise.reject(new Error(`not a Kinesis sequence number: ${after}`));
    return this.onPartition(partition, () => this.readNow(partition, after, limit));
  }

  private async readNow(partition: number, after: Sequence | null, limit: number): Promise<StreamRecord[]> {
    if (limit <= 0) return [];
    const part = this.parts[partition];
    const at = part.cursor && part.cursor.after === after ? part.cursor.at : await this.locate(partition, after);
    // Dropped while reading: a failed call leaves no place that might be past unreturned records.
    part.cursor = null;
    for (let hops = 0; ; hops++) {
      const { mine, tip } = await this.step(partition, at, limit);
      // Other partitions' records, an empty answer behind the tip, a shard ended: go on (bounded).
      if (mine.length === 0 && !tip && hops < MAX_EMPTY_HOPS) continue;
      part.cursor = { after: mine.length ? mine[mine.length - 1].sequence : after, at };
      return mine;
    }
  }

  async head(partition: number): Promise<Sequence | null> {
    await this.ensureLoaded(partition);
    await this.onPartition(partition, () => this.catchUpNow(partition));
    return this.parts[partition].tail;
  }

  /** The partition's records after `after` among the newest BACKLOG_WINDOW seen by the catch-ups (`head`). */
  async backlog(partition: number, after: Sequence | null): Promise<number | null> {
    const part = this.parts[partition];
    if (!part.loaded) return null;
    const recent = part.recent;
    if (after === null) return recent.length;
    let lo = 0;
    let hi = recent.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (compareSequences(recent[mid], after) <= 0) lo = mid + 1;
      else hi = mid;
    }
    return recent.length - lo;
  }

  async resolve(partition: number, position: Position): Promise<Sequence | null> {
    switch (position.type) {
      case 'TRIM_HORIZON':
        return null;
      case 'LATEST':
        return this.head(partition);
      case 'AFTER_SEQUENCE':
        return position.sequence;
      case 'AT_TIMESTAMP':
        await this.ensureLoaded(partition);
        return this.onPartition(partition, () => this.lastBefore(partition, position.timestamp));
    }
  }

  /** The sequence of the last record that arrived before `t` (null: none kept). */
  private async lastBefore(partition: number, t: number): Promise<Sequence | null> {
    const part = this.parts[partition];
    // The last indexed record before t: the answer is it or a later one.
    let lo = 0;
    let hi = part.index.length - 1;
    let from: Sequence | null = null;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (part.index[mid].ts < t) {
        from = part.index[mid].seq;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    let prev = from;
    const at = await this.locate(partition, from);
    let emptyHops = 0;
    for (;;) {
      const { raw, mine, tip } = await this.step(partition, at, MAX_GET_LIMIT);
      for (const r of mine) {
        if (r.timestamp >= t) return prev;
        prev = r.sequence;
      }
      if (tip) return prev;
      if (raw.length === 0 && ++emptyHops >= MAX_EMPTY_HOPS) return prev;
    }
  }

  /** Kinesis cannot push: resolves after a poll interval, or earlier when this process appended. */
  waitForAppend(timeoutMs: number): Promise<void> {
    if (this.closed) return Promise.resolve();
    return this.waiters.wait(Math.max(0, Math.min(timeoutMs, WAIT_POLL_MS)));
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.allSettled([...this.deviceTails.values(), ...this.parts.map((p) => p.chain), this.listing]);
    this.waiters.wakeAll();
    this.client.destroy();
  }
}

function arrivalOf(r: _Record): number {
  return r.ApproximateArrivalTimestamp ? r.ApproximateArrivalTimestamp.getTime() : 0;
}

/** Splits a round into PutRecords requests of ≤ 500 records and ≤ 5 MiB. */
function chunk<T extends { request: PutRecordsRequestEntry }>(round: T[]): T[][] {
  const out: T[][] = [];
  let current: T[] = [];
  let bytes = 0;
  for (const r of round) {
    const size = (r.request.Data?.byteLength ?? 0) + Buffer.byteLength(r.request.PartitionKey ?? '');
    if (current.length > 0 && (current.length >= MAX_PUT_RECORDS || bytes + size > MAX_PUT_BYTES)) {
      out.push(current);
      current = [];
      bytes = 0;
    }
    current.push(r);
    bytes += size;
  }
  if (current.length) out.push(current);
  return out;
}

function retentionHoursOf(ms: number): number {
  return Math.min(MAX_RETENTION_H, Math.max(MIN_RETENTION_H, Math.ceil(ms / 3_600_000)));
}

/**
 * Waits until the stream can be used: ACTIVE, or UPDATING (a reshard or retention change in
 * progress, during which reads and writes go on) unless `active` asks for ACTIVE.
 */
async function waitUsable(client: KinesisClient, name: string, active = false): Promise<{ status: string; retentionHours: number }> {
  const started = Date.now();
  for (;;) {
    const { StreamDescriptionSummary: s } = await client.send(new DescribeStreamSummaryCommand({ StreamName: name }));
    const status = s?.StreamStatus ?? 'UNKNOWN';
    if (status === 'ACTIVE' || (status === 'UPDATING' && !active)) return { status, retentionHours: s?.RetentionPeriodHours ?? MIN_RETENTION_H };
    if (Date.now() - started > 120_000) throw new Error(`Kinesis stream ${name} is still ${status} after 2 minutes`);
    await sleep(Date.now() - started < 2000 ? 50 : 1000);
  }
}

async function ensureStream(client: KinesisClient, o: KinesisStreamOptions): Promise<void> {
  try {
    await client.send(new DescribeStreamSummaryCommand({ StreamName: o.streamName }));
  } catch (err) {
    if (!(err instanceof ResourceNotFoundException)) throw err;
    try {
      await client.send(new CreateStreamCommand({ StreamName: o.streamName, ShardCount: o.partitions }));
    } catch (e) {
      // Another process created it between our describe and create.
      if (!(e instanceof ResourceInUseException)) throw e;
    }
  }
  const { retentionHours } = await waitUsable(client, o.streamName);
  const desired = retentionHoursOf(o.retentionMs);
  if (desired === retentionHours) return;
  // A retention change needs an ACTIVE stream (not in the middle of a reshard).
  await waitUsable(client, o.streamName, true);
  if (desired > retentionHours) {
    await client.send(new IncreaseStreamRetentionPeriodCommand({ StreamName: o.streamName, RetentionPeriodHours: desired }));
  } else {
    await client.send(new DecreaseStreamRetentionPeriodCommand({ StreamName: o.streamName, RetentionPeriodHours: desired }));
  }
  await waitUsable(client, o.streamName);
}

/** Every shard of the stream still listed: open ones, and closed ones whose records are not all expired. */
async function listShards(client: KinesisClient, name: string): Promise<ShardInfo[]> {
  const shards: Shard[] = [];
  let token: string | undefined;
  do {
    const out = await client.send(new ListShardsCommand(token ? { NextToken: token } : { StreamName: name }));
    shards.push(...(out.Shards ?? []));
    token = out.NextToken;
  } while (token);
  return shards.map((s) => ({
    id: s.ShardId!,
    index: shardIndexOf(s.ShardId!),
    start: BigInt(s.HashKeyRange!.StartingHashKey!),
    end: BigInt(s.HashKeyRange!.EndingHashKey!),
    parents: [s.ParentShardId, s.AdjacentParentShardId].filter((x): x is string => !!x),
    closed: !!s.SequenceNumberRange?.EndingSequenceNumber,
  }));
}

async function partitionsTag(client: KinesisClient, name: string): Promise<string | null> {
  let start: string | undefined;
  for (;;) {
    const out = await client.send(new ListTagsForStreamCommand({ StreamName: name, ExclusiveStartTagKey: start }));
    const tags = out.Tags ?? [];
    const found = tags.find((t) => t.Key === PARTITIONS_TAG);
    if (found) return found.Value ?? '';
    if (!out.HasMoreTags || tags.length === 0) return null;
    start = tags[tags.length - 1].Key;
  }
}

/**
 * The stream's partition count is its tag (invariant 1). An untagged stream is tagged only while
 * its shards are still the `partitions` shards CreateStream made (Vigil's own, or an older
 * Vigil's, which required that): otherwise its data may have been written with another count.
 */
async function checkPartitions(client: KinesisClient, o: KinesisStreamOptions, shards: ShardInfo[]): Promise<void> {
  const tagged = await partitionsTag(client, o.streamName);
  const refuse = (why: string) =>
    new Error(
      `stream.partitions is ${o.partitions} but the Kinesis stream ${o.streamName} ${why}; a device's partition depends on the ` +
        `count, fixed once data exists (docs/stream-kinesis.md)`,
    );
  if (tagged !== null) {
    if (tagged !== String(o.partitions)) throw refuse(`holds ${tagged} partitions (tag ${PARTITIONS_TAG})`);
    return;
  }
  const open = shards.filter((s) => !s.closed).length;
  if (open !== o.partitions || shards.some((s) => s.parents.length > 0)) {
    throw refuse(
      `has ${open} open shards${shards.some((s) => s.parents.length > 0) ? ' after a reshard' : ''} and no ${PARTITIONS_TAG} tag ` +
        `to say which partition count its data was written with: tag it (aws kinesis add-tags-to-stream --stream-name ${o.streamName} ` +
        `--tags ${PARTITIONS_TAG}=<count>)`,
    );
  }
  try {
    await client.send(new AddTagsToStreamCommand({ StreamName: o.streamName, Tags: { [PARTITIONS_TAG]: String(o.partitions) } }));
  } catch (err) {
    // Several processes starting at once: another one's tag is as good (and checked).
    const now = await partitionsTag(client, o.streamName).catch(() => null);
    if (now !== String(o.partitions)) throw err;
  }
}
