/**
 * The stream on NATS JetStream (DESIGN §2, the self-hosted scale-out backend).
 *
 * On the server (nats-layout.ts): JetStream stream S, one subject `S.p.<partition>` per
 * partition, file storage, `max_age` = retention; headers-only copies of stored messages on
 * `S.appended.<partition>`; KV bucket `S_seen` with each device's dedupe ranges (nats-seen.ts).
 *
 * Invariants:
 * 1. A record is one JetStream message on the subject of `partitionOf(deviceId)`, holding the
 *    packed JSON of one entry's non-duplicate readings (nats-records.ts). Its `sequence` is the
 *    JetStream stream sequence: stream-wide, so a partition's sequences increase with gaps, and
 *    never reused, even once every message expired. Its `timestamp` is JetStream's store time.
 * 2. `append` resolves after every message got its PubAck and the device's ranges record the
 *    acknowledged seqs: check ranges → publish → record (never record first: a crash would lose
 *    the reading; this order at worst appends it twice, which consumers absorb, DESIGN §3.2).
 * 3. A device's appends run one after another in this process, so its records keep request
 *    order and two of its concurrent requests cannot both pass the check. Across processes the
 *    ranges are written compare-and-set, so no seq is forgotten; a reading sent to two processes
 *    at the same instant may be appended twice.
 * 4. Every message carries `Nats-Msg-Id` naming its (deviceId, seq) set, so JetStream itself
 *    absorbs a publish retried within its duplicate window (min(2 min, retention)) and answers
 *    with the original sequence.
 * 5. Retention is JetStream's `max_age`: unlike the embedded log, a partition's newest record
 *    expires too (the partition reads empty and `head` is null); sequences still never repeat.
 *
 * Departure from the `Stream` contract: a rejected append may leave some of its entries visible
 * (JetStream 2.9 has no atomic multi-message publish). Those acknowledged are recorded as seen,
 * so a retry of the whole request appends only the rest.
 */
import { connect, type NatsConnection, type Subscription } from '@nats-io/transport-node';
import { jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager } from '@nats-io/jetstream';
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
import { ensureLayout, layoutOf, type NatsLayout } from './nats-layout.js';
import { SeenStore } from './nats-seen.js';
import { msgIdOf, packRecords, type Packed } from './nats-records.js';
import { CursorLostError, PartitionCursor, STALE_MS } from './nats-cursor.js';
import { AppendWaiters } from '../append-waiters.js';

export interface NatsStreamOptions {
  servers: string[];
  /** JetStream stream name (`[A-Za-z0-9_-]`); also the prefix of its subjects and KV bucket. */
  stream: string;
  partitions: number;
  replicas: number;
  retentionMs: number;
  /**
   * Longest wait for a PubAck or a JetStream API answer. A phone is better served by a quick
   * 503 and its retry than by a request hanging on an unreachable server.
   */
  timeoutMs?: number;
}

const DEFAULT_TIMEOUT_MS = 5000;
/** NATS's default, used until the server's INFO says otherwise. */
const DEFAULT_MAX_PAYLOAD = 1024 * 1024;
const utf8 = new TextDecoder();

function unavailable(err: unknown): StreamUnavailableError {
  if (err instanceof StreamUnavailableError) return err;
  return new StreamUnavailableError(`NATS JetStream did not acknowledge the append: ${(err as Error)?.message ?? String(err)}`, 1);
}

export class NatsStream implements Stream {
  readonly partitions: number;
  private readonly layout: NatsLayout;
  private readonly seen: SeenStore;
  private readonly timeoutMs: number;
  private connected = true;
  private closed = false;
  /** Per device, the end of its chain of appends in this process (never rejects). */
  private readonly deviceTails = new Map<string, Promise<void>>();
  /** Per partition, the end of its chain of reads: a cursor serves one read at a time. */
  private readonly readTails: Promise<unknown>[];
  private readonly cursors: (PartitionCursor | null)[];
  private appended: Subscription | null = null;
  private readonly waiters = new AppendWaiters();

  private constructor(
    private readonly nc: NatsConnection,
    private readonly js: JetStreamClient,
    private readonly jsm: JetStreamManager,
    opts: NatsStreamOptions,
  ) {
    this.partitions = opts.partitions;
    this.layout = layoutOf(opts.stream);
    this.timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.seen = new SeenStore(js, jsm, this.layout, this.timeoutMs);
    this.readTails = Array.from({ length: opts.partitions }, () => Promise.resolve());
    this.cursors = Array.from({ length: opts.partitions }, () => null);
    void this.watchConnection();
  }

  /** Connects, then creates the stream and its dedupe bucket or updates them to `o`. */
  static async open(o: NatsStreamOptions): Promise<NatsStream> {
    const timeout = o.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    const nc = await connect({
      servers: o.servers,
      name: `vigil ${o.stream}`,
      timeout,
      maxReconnectAttempts: -1,
      reconnectTimeWait: 500,
    });
    try {
      const jsm = await jetstreamManager(nc, { timeout });
      await ensureLayout(jsm, layoutOf(o.stream), o);
      return new NatsStream(nc, jetstream(nc, { timeout }), jsm, o);
    } catch (err) {
      await nc.close();
      throw err;
    }
  }

  /** While the client reconnects, appends fail at once (503) instead of waiting for a timeout. */
  private async watchConnection(): Promise<void> {
    for await (const s of this.nc.status()) {
      if (s.type === 'disconnect') this.connected = false;
      else if (s.type === 'reconnect') {
        this.connected = true;
        // The server may have restarted and lost its (in-memory) consumers: start afresh.
        this.cursors.fill(null);
      }
    }
  }

  private subjectOf(partition: number): string {
    return `${this.layout.partitionPrefix}.${partition}`;
  }

  async append(entries: AppendEntry[]): Promise<AppendResult[]> {
    if (this.closed) throw new StreamUnavailableError('stream is closed', 5);
    if (!this.connected || this.nc.isClosed()) throw new StreamUnavailableError('NATS is unreachable (reconnecting)', 2);
    const results: AppendResult[] = new Array(entries.length);
    const byDevice = new Map<string, number[]>();
    for (let i = 0; i < entries.length; i++) {
      const list = byDevice.get(entries[i].deviceId);
      if (list) list.push(i);
      else byDevice.set(entries[i].deviceId, [i]);
    }
    const jobs: Promise<void>[] = [];
    for (const [deviceId, indexes] of byDevice) {
      jobs.push(this.inDeviceOrder(deviceId, () => this.appendDevice(deviceId, entries, indexes, results)));
    }
    const settled = await Promise.allSettled(jobs);
    for (const s of settled) {
      if (s.status === 'rejected') throw s.reason instanceof RangeError ? s.reason : unavailable(s.reason);
    }
    return results;
  }

  private inDeviceOrder(deviceId: string, job: () => Promise<void>): Promise<void> {
    const prev = this.deviceTails.get(deviceId);
    const run = prev ? prev.then(job) : job();
    const tail = run.catch(() => undefined);
    this.deviceTails.set(deviceId, tail);
    void tail.then(() => {
      if (this.deviceTails.get(deviceId) === tail) this.deviceTails.delete(deviceId);
    });
    return run;
  }

  /** One device's entries of a call: check, publish all at once, record what was acknowledged. */
  private async appendDevice(deviceId: string, entries: AppendEntry[], indexes: number[], results: AppendResult[]): Promise<void> {
    const seen = await this.seen.load(deviceId);
    // A copy, so that an entry repeating an earlier one of this call is a duplicate too.
    const check = new SeqRanges(seen.ranges.toJSON().slice());
    const partition = partitionOf(deviceId, this.partitions);
    const subject = this.subjectOf(partition);
    const maxPayload = this.nc.info?.max_payload ?? DEFAULT_MAX_PAYLOAD;
    // Everything is packed before anything is sent: a reading too large to send fails the call whole.
    const toSend: { index: number; duplicates: number[]; part: Packed }[] = [];
    for (const i of indexes) {
      const e = entries[i];
      const duplicates: number[] = [];
      const kept: string[] = [];
      const keptSeqs: number[] = [];
      for (let k = 0; k < e.seqs.length; k++) {
        if (check.add(e.seqs[k])) {
          kept.push(e.readings[k]);
          keptSeqs.push(e.seqs[k]);
        } else duplicates.push(k);
      }
      if (kept.length === 0) results[i] = { partition: null, sequence: null, duplicates };
      else for (const part of packRecords(deviceId, e.residentId, kept, keptSeqs, maxPayload)) toSend.push({ index: i, duplicates, part });
    }
    // One connection: JetStream stores the device's messages in the order they are sent here.
    const publishes = toSend.map(({ index, duplicates, part }) =>
      this.js.publish(subject, part.data, { msgID: msgIdOf(deviceId, part.seqs), timeout: this.timeoutMs }).then((ack) => {
        // An entry cut in parts reports its last part: reading after it skips none of them.
        const prev = results[index]?.sequence;
        if (!prev || Number(prev) < ack.seq) results[index] = { partition, sequence: String(ack.seq), duplicates };
        return part.seqs;
      }),
    );
    const settled = await Promise.allSettled(publishes);
    const acknowledged: number[] = [];
    for (const s of settled) if (s.status === 'fulfilled') acknowledged.push(...s.value);
    if (acknowledged.length) await this.seen.record(deviceId, acknowledged, seen);
    for (const s of settled) if (s.status === 'rejected') throw s.reason;
  }

  private onPartition<T>(partition: number, job: () => Promise<T>): Promise<T> {
    const run = this.readTails[partition].then(job);
    this.readTails[partition] = run.catch(() => undefined);
    return run;
  }

  read(partition: number, after: Sequence | null, limit: number): Promise<StreamRecord[]> {
    if (after !== null && !/^\d+$/.test(after)) return Promise.reject(new Error(`not a JetStream sequence: ${after}`));
    return this.onPartition(partition, () => this.readNow(partition, after === null ? null : Number(after), limit));
  }

  private async readNow(partition: number, after: number | null, limit: number): Promise<StreamRecord[]> {
    if (limit <= 0) return [];
    for (let attempt = 1; ; attempt++) {
      let cursor = this.cursors[partition];
      if (!cursor || cursor.after !== after || Date.now() - cursor.lastUsed > STALE_MS) {
        // A reader that jumped (replay, another position): its old place is of no use.
        if (cursor) void cursor.close(this.jsm);
        this.cursors[partition] = null;
        cursor = await PartitionCursor.open(this.nc, this.jsm, this.layout.stream, this.subjectOf(partition), { after });
        this.cursors[partition] = cursor;
      }
      try {
        const delivered = await cursor.pull(this.jsm, limit, this.timeoutMs);
        return delivered.map((d) => ({ partition, sequence: String(d.seq), timestamp: d.timestamp, data: utf8.decode(d.data) }));
      } catch (err) {
        this.cursors[partition] = null;
        void cursor.close(this.jsm);
        // A consumer the server dropped (idle too long, restart) is simply made again, once.
        if (!(err instanceof CursorLostError) || attempt >= 2) throw err;
      }
    }
  }

  /** JetStream sequences count across partitions; the read cursor's pending count does not. */
  async backlog(partition: number, after: Sequence | null): Promise<number | null> {
    const cursor = this.cursors[partition];
    return cursor && cursor.after === (after === null ? null : Number(after)) ? cursor.pending : null;
  }

  async head(partition: number): Promise<Sequence | null> {
    const last = await this.jsm.direct.getMessage(this.layout.stream, { last_by_subj: this.subjectOf(partition) });
    return last ? String(last.seq) : null;
  }

  async resolve(partition: number, position: Position): Promise<Sequence | null> {
    switch (position.type) {
      case 'TRIM_HORIZON':
        return null;
      case 'LATEST':
        return this.head(partition);
      case 'AFTER_SEQUENCE':
        return position.sequence;
      case 'AT_TIMESTAMP': {
        // Head first: if nothing on the subject is that recent, everything up to this head is older.
        const head = await this.head(partition);
        const cursor = await PartitionCursor.open(this.nc, this.jsm, this.layout.stream, this.subjectOf(partition), {
          time: position.timestamp,
        });
        try {
          const [first] = await cursor.pull(this.jsm, 1, this.timeoutMs);
          if (!first) return head;
          // Stream-wide sequences: first-1 may be another partition's, which reads skip anyway.
          return first.seq > 1 ? String(first.seq - 1) : null;
        } finally {
          void cursor.close(this.jsm);
        }
      }
    }
  }

  waitForAppend(timeoutMs: number): Promise<void> {
    if (this.closed) return Promise.resolve();
    // Headers-only copies, sent by the server once a message is stored: a woken reader finds it.
    this.appended ??= this.nc.subscribe(`${this.layout.appendedPrefix}.>`, { callback: () => this.waiters.wakeAll() });
    return this.waiters.wait(timeoutMs);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.allSettled([...this.deviceTails.values(), ...this.readTails]);
    this.waiters.wakeAll();
    this.appended?.unsubscribe();
    if (this.connected) {
      await Promise.allSettled(this.cursors.map((c) => c?.close(this.jsm)));
    }
    await this.nc.close();
  }
}
