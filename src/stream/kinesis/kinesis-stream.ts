/**
 * The stream on Amazon Kinesis Data Streams (DESIGN §2, the AWS backend), with the AWS SDK v3.
 *
 * On AWS: one Kinesis stream, created (when missing) with `partitions` shards; its retention
 * set to the configured period, clamped to Kinesis' 24 h … 8760 h.
 *
 * Invariants:
 * 1. Partition p is the open shard number p, shards sorted by starting hash key. A record is
 *    sent with `PartitionKey` = deviceId and `ExplicitHashKey` = the midpoint of shard
 *    `partitionOf(deviceId)`'s range, so a device has the same partition on every backend
 *    (kinesis-records.ts). `partitions` must equal the open shard count: `open` refuses
 *    otherwise.
 * 2. A record is the packed JSON of one entry's non-duplicate readings, cut into several
 *    records only past 1 MiB. Its `sequence` is the Kinesis sequence number (decimal string,
 *    per shard, never reused); its `timestamp` is `ApproximateArrivalTimestamp`.
 * 3. `append` sends all of a call's records with `PutRecords` (≤ 500 records / 5 MiB per
 *    request), retries only the failed ones with backoff until `timeoutMs`, and resolves once
 *    every record is acknowledged. Kinesis does not keep the order of a `PutRecords` request
 *    once one record failed and is retried, so a request carries at most ONE record per device:
 *    a device's further records (an entry cut in parts, several entries) go in later rounds,
 *    after the previous one was acknowledged. A device's appends run one after another in this
 *    process, so its records keep request order.
 * 4. Dedupe on (deviceId, seq), with in-memory `SeqRanges` per device — Kinesis has no key-value
 *    store, and no lookup by key. A partition's ranges are seeded, lazily on its first use in
 *    the process, by reading the whole retained shard (TRIM_HORIZON to the tip: the retention
 *    period bounds it), then kept up to date by this process's own acknowledged appends and by
 *    every later catch-up of the shard (`head`, LATEST). Hence:
 *    - duplicates of anything still retained are found after a restart (the seeding scan);
 *    - across processes appending at the same time, dedupe is best effort: a reading appended
 *      by another process after this one's last catch-up is not known here and may be
 *      appended twice, which consumers absorb (DESIGN §3.2, effects idempotent on
 *      (deviceId, seq)). Ingest routes a device to one process in practice.
 *    - COST at scale: the seeding scan reads every retained byte of a shard once per process
 *      start (a shard serves 2 MiB/s and 5 GetRecords/s shared with every consumer: 24 h of a
 *      busy shard is up to ~170 GiB, i.e. ~1 day to scan — unusable). It is fine for the
 *      emulator, small streams and short retention; a large deployment must keep the ranges
 *      in a store (DynamoDB, conditional writes like NATS' KV) instead: a later change.
 *    A seq is recorded only after Kinesis acknowledged its record (a crash in between can at
 *    worst append the reading twice, never lose it).
 * 5. Reads: `GetRecords` from an `AFTER_SEQUENCE_NUMBER` iterator (TRIM_HORIZON for null); the
 *    `NextShardIterator` is kept per partition with the sequence it continues after, so a
 *    reader reading batch after batch costs one call per batch.
 * 6. Positions: TRIM_HORIZON → null; LATEST → `head` (the shard is read forward from the last
 *    known tip to the end: Kinesis cannot say a shard's last sequence); AT_TIMESTAMP → the
 *    sequence of the last record that arrived before t, found by reading forward from a sparse
 *    in-memory index (one (arrival time, sequence) per second, filled by the catch-ups) or the
 *    trim horizon; AFTER_SEQUENCE → as given.
 * 7. `waitForAppend` cannot be push-driven on Kinesis: it resolves after min(timeoutMs, 200 ms)
 *    (a poll interval for the caller), or earlier when this process appended.
 * 8. Retention is Kinesis' own, ≥ 24 h; like JetStream, a shard's newest record expires too.
 *
 * Resharding (not implemented): after a split or merge the parent shards are closed and their
 * records stay readable until they expire. `partitions` must still equal the number of OPEN
 * shards, and partition p maps to open shard p as above. A reader of partition p would have to
 * read each of p's closed ancestors to its end (NextShardIterator null) before p itself —
 * sequences of different shards are not comparable, so `Sequence` would need to name the shard.
 * Today the parents are ignored: reshard only an empty or drained stream.
 *
 * Departure from the `Stream` contract, as on NATS: a rejected append may leave some of its
 * records visible (Kinesis has no atomic multi-record put). Those acknowledged are recorded as
 * seen, so a retry of the whole request appends only the rest.
 */
import {
  CreateStreamCommand,
  DecreaseStreamRetentionPeriodCommand,
  DescribeStreamSummaryCommand,
  ExpiredIteratorException,
  GetRecordsCommand,
  GetShardIteratorCommand,
  IncreaseStreamRetentionPeriodCommand,
  KinesisClient,
  ListShardsCommand,
  ProvisionedThroughputExceededException,
  PutRecordsCommand,
  ResourceInUseException,
  ResourceNotFoundException,
  type GetRecordsCommandOutput,
  type PutRecordsRequestEntry,
  type Shard,
  type _Record,
} from '@aws-sdk/client-kinesis';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import {
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
import { hashKeyOf, orderShards, packRecords, type ShardRange } from './kinesis-records.js';
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

const DEFAULT_TIMEOUT_MS = 5000;
const MAX_PUT_RECORDS = 500;
const MAX_PUT_BYTES = 5 * 1024 * 1024;
const MAX_GET_LIMIT = 10_000;
const WAIT_POLL_MS = 200;
const INDEX_STEP_MS = 1000;
const MIN_RETENTION_H = 24;
const MAX_RETENTION_H = 8760;
/** Reads of an empty answer while Kinesis says records lie further on (gaps after expiry). */
const MAX_EMPTY_HOPS = 20;
const utf8 = new TextDecoder();

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function unavailable(err: unknown): StreamUnavailableError {
  if (err instanceof StreamUnavailableError) return err;
  return new StreamUnavailableError(`Kinesis did not acknowledge the append: ${(err as Error)?.message ?? String(err)}`, 1);
}

interface PartitionState {
  shard: ShardRange;
  hashKey: string;
  /** The first catch-up (the seeding scan); null until the partition is first used. */
  loaded: Promise<void> | null;
  /** Newest sequence seen by the catch-ups, and an iterator continuing after it. */
  tail: Sequence | null;
  tailIterator: string | null;
  /** Sparse (arrival time, sequence), ascending: where AT_TIMESTAMP starts reading. */
  index: { ts: number; seq: Sequence }[];
  /** Serializes the catch-ups and reads of this partition. */
  chain: Promise<unknown>;
  /** The reader's iterator and the sequence it continues after. */
  cursor: { after: Sequence | null; iterator: string } | null;
}

export class KinesisStream implements Stream {
  readonly partitions: number;
  private readonly name: string;
  private readonly timeoutMs: number;
  private readonly parts: PartitionState[];
  /** Dedupe ranges per device (see invariant 4). */
  private readonly seen = new Map<string, SeqRanges>();
  private readonly deviceTails = new Map<string, Promise<void>>();
  private readonly waiters = new AppendWaiters();
  private closed = false;

  private constructor(
    private readonly client: KinesisClient,
    opts: KinesisStreamOptions,
    shards: ShardRange[],
  ) {
    this.partitions = opts.partitions;
    this.name = opts.streamName;
    this.timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.parts = shards.map((shard) => ({
      shard,
      hashKey: hashKeyOf(shard),
      loaded: null,
      tail: null,
      tailIterator: null,
      index: [],
      chain: Promise.resolve(),
      cursor: null,
    }));
  }

  /** Creates the stream (or adjusts its retention), then checks the open shards against `partitions`. */
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
      const shards = await openShards(client, o.streamName);
      if (shards.length !== o.partitions) {
        throw new Error(
          `stream.partitions is ${o.partitions} but the Kinesis stream ${o.streamName} has ${shards.length} open shards; ` +
            `the count must equal the open shard count (reshard the stream, or change stream.partitions)`,
        );
      }
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
      const hashKey = this.parts[partitionOfDevice.get(e.deviceId)!].hashKey;
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
        // One record per device per round (invariant 3).
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
            results[r.index] = { partition, sequence: got.SequenceNumber, duplicates: results[r.index].duplicates };
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

  /** Reads the shard from the last known tip to its end: dedupe ranges, tip and time index. */
  private async catchUpNow(partition: number): Promise<void> {
    const part = this.parts[partition];
    let iterator = part.tailIterator;
    let emptyHops = 0;
    for (;;) {
      iterator ??= await this.iteratorAfter(part.shard.shardId, part.tail);
      let out;
      try {
        out = await this.client.send(new GetRecordsCommand({ ShardIterator: iterator, Limit: MAX_GET_LIMIT }));
      } catch (err) {
        if (!(err instanceof ExpiredIteratorException)) throw err;
        part.tailIterator = iterator = null;
        continue;
      }
      const records = out.Records ?? [];
      for (const r of records) {
        const ts = arrivalOf(r);
        this.recordData(utf8.decode(r.Data));
        part.tail = r.SequenceNumber!;
        const last = part.index[part.index.length - 1];
        if (!last || ts >= last.ts + INDEX_STEP_MS) part.index.push({ ts, seq: r.SequenceNumber! });
      }
      part.tailIterator = iterator = out.NextShardIterator ?? null;
      if (!iterator) return; // closed shard, read to its end
      if (records.length > 0) continue;
      if ((out.MillisBehindLatest ?? 0) === 0 || ++emptyHops >= MAX_EMPTY_HOPS) return;
    }
  }

  private async iteratorAfter(shardId: string, after: Sequence | null): Promise<string> {
    const out = await this.client.send(
      new GetShardIteratorCommand(
        after === null
          ? { StreamName: this.name, ShardId: shardId, ShardIteratorType: 'TRIM_HORIZON' }
          : { StreamName: this.name, ShardId: shardId, ShardIteratorType: 'AFTER_SEQUENCE_NUMBER', StartingSequenceNumber: after },
      ),
    );
    return out.ShardIterator!;
  }

  // ---------------------------------------------------------------- reads

  read(partition: number, after: Sequence | null, limit: number): Promise<StreamRecord[]> {
    if (after !== null && !/^\d+$/.test(after)) return Promise.reject(new Error(`not a Kinesis sequence number: ${after}`));
    return this.onPartition(partition, () => this.readNow(partition, after, limit));
  }

  private async readNow(partition: number, after: Sequence | null, limit: number): Promise<StreamRecord[]> {
    if (limit <= 0) return [];
    const part = this.parts[partition];
    let iterator = part.cursor && part.cursor.after === after ? part.cursor.iterator : null;
    part.cursor = null;
    let emptyHops = 0;
    for (;;) {
      iterator ??= await this.iteratorAfter(part.shard.shardId, after);
      let out;
      try {
        out = await this.client.send(new GetRecordsCommand({ ShardIterator: iterator, Limit: Math.min(limit, MAX_GET_LIMIT) }));
      } catch (err) {
        // Iterators live 5 minutes: a reader that paused longer just gets a new one.
        if (!(err instanceof ExpiredIteratorException)) throw err;
        iterator = null;
        continue;
      }
      const records = (out.Records ?? []).map((r) => ({
        partition,
        sequence: r.SequenceNumber!,
        timestamp: arrivalOf(r),
        data: utf8.decode(r.Data),
      }));
      const next = out.NextShardIterator ?? null;
      // An empty answer while Kinesis says records lie further on: keep going (bounded).
      if (records.length === 0 && next && (out.MillisBehindLatest ?? 0) > 0 && ++emptyHops < MAX_EMPTY_HOPS) {
        iterator = next;
        continue;
      }
      if (next) part.cursor = { after: records.length ? records[records.length - 1].sequence : after, iterator: next };
      return records;
    }
  }

  async head(partition: number): Promise<Sequence | null> {
    await this.ensureLoaded(partition);
    await this.onPartition(partition, () => this.catchUpNow(partition));
    return this.parts[partition].tail;
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
    let iterator: string | null = null;
    let emptyHops = 0;
    for (;;) {
      iterator ??= await this.iteratorAfter(part.shard.shardId, from);
      const out: GetRecordsCommandOutput = await this.client.send(new GetRecordsCommand({ ShardIterator: iterator, Limit: MAX_GET_LIMIT }));
      const records = out.Records ?? [];
      for (const r of records) {
        if (arrivalOf(r) >= t) return prev;
        prev = r.SequenceNumber!;
      }
      iterator = out.NextShardIterator ?? null;
      if (!iterator) return prev;
      if (records.length > 0) continue;
      if ((out.MillisBehindLatest ?? 0) === 0 || ++emptyHops >= MAX_EMPTY_HOPS) return prev;
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
    await Promise.allSettled([...this.deviceTails.values(), ...this.parts.map((p) => p.chain)]);
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

async function waitActive(client: KinesisClient, name: string): Promise<{ retentionHours: number }> {
  const started = Date.now();
  for (;;) {
    const { StreamDescriptionSummary: s } = await client.send(new DescribeStreamSummaryCommand({ StreamName: name }));
    if (s?.StreamStatus === 'ACTIVE') return { retentionHours: s.RetentionPeriodHours ?? MIN_RETENTION_H };
    if (Date.now() - started > 120_000) throw new Error(`Kinesis stream ${name} is still ${s?.StreamStatus} after 2 minutes`);
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
  const { retentionHours } = await waitActive(client, o.streamName);
  const desired = retentionHoursOf(o.retentionMs);
  if (desired > retentionHours) {
    await client.send(new IncreaseStreamRetentionPeriodCommand({ StreamName: o.streamName, RetentionPeriodHours: desired }));
    await waitActive(client, o.streamName);
  } else if (desired < retentionHours) {
    await client.send(new DecreaseStreamRetentionPeriodCommand({ StreamName: o.streamName, RetentionPeriodHours: desired }));
    await waitActive(client, o.streamName);
  }
}

/** The open shards (no ending sequence number), in partition order. */
async function openShards(client: KinesisClient, name: string): Promise<ShardRange[]> {
  const shards: Shard[] = [];
  let token: string | undefined;
  do {
    const out = await client.send(new ListShardsCommand(token ? { NextToken: token } : { StreamName: name }));
    shards.push(...(out.Shards ?? []));
    token = out.NextToken;
  } while (token);
  return orderShards(
    shards
      .filter((s) => !s.SequenceNumberRange?.EndingSequenceNumber)
      .map((s) => ({ shardId: s.ShardId!, startingHashKey: s.HashKeyRange!.StartingHashKey!, endingHashKey: s.HashKeyRange!.EndingHashKey! })),
  );
}
