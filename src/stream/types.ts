/**
 * The durable, partitioned stream of readings (DESIGN §1, §2, §3.2).
 *
 * Lifecycle: `openStream(config)` (registry.ts) → `append`/`read`… → `close()`.
 *
 * Guarantees every backend keeps (the conformance suite in testing/ checks them):
 * - `append` resolves only once every accepted entry is durable (fsync'd / acknowledged);
 *   when it rejects, none of the batch's entries is visible to readers.
 * - An entry's partition is `partitionOf(deviceId, partitions)`; within a partition records
 *   are read in append order and sequences strictly increase. Nothing is ordered across
 *   partitions.
 * - Readings are deduplicated on (deviceId, seq) for at least the retention period: a reading
 *   seen before is reported in `duplicates` and not appended again.
 * - Records older than the retention period may disappear from the head (TRIM_HORIZON moves).
 */
import type { ReadingBatchRecord } from '../core/reading.js';

/** A sequence number, as a decimal string so that 128-bit Kinesis sequences fit too. */
export type Sequence = string;

export type Position =
  | { type: 'TRIM_HORIZON' }
  | { type: 'LATEST' }
  | { type: 'AT_TIMESTAMP'; timestamp: number }
  | { type: 'AFTER_SEQUENCE'; sequence: Sequence };

/** One request's readings of one device, each already serialized (the hot path serializes once). */
export interface AppendEntry {
  deviceId: string;
  residentId: string;
  /** The readings' `seq`, parallel to `readings`. */
  seqs: number[];
  /** Each reading as JSON text. */
  readings: string[];
}

export interface AppendResult {
  /** Null when every reading was a duplicate and nothing was appended. */
  partition: number | null;
  sequence: Sequence | null;
  /** Indexes (into the entry's readings) of readings seen before. */
  duplicates: number[];
}

export interface StreamRecord {
  partition: number;
  sequence: Sequence;
  /** Append time, epoch ms (not the readings' event time). */
  timestamp: number;
  /** JSON text of a ReadingBatchRecord. */
  data: string;
}

export interface StreamProducer {
  append(entries: AppendEntry[]): Promise<AppendResult[]>;
}

export interface StreamReader {
  readonly partitions: number;
  /**
   * Where a reader positioned at `position` starts: it will next read the first record with a
   * sequence greater than the returned one (null: from the oldest record still kept).
   */
  resolve(partition: number, position: Position): Promise<Sequence | null>;
  /** Up to `limit` records after `after` (null: from the oldest kept), in order. */
  read(partition: number, after: Sequence | null, limit: number): Promise<StreamRecord[]>;
  /** The newest sequence of the partition, or null when it is empty. */
  head(partition: number): Promise<Sequence | null>;
  /**
   * Records of the partition after `after` (where this reader last read), for backends whose
   * sequences are not dense per partition (JetStream's count across the stream), so that lag
   * is not head − position. Null when not known yet. Backends with dense sequences omit it.
   */
  backlog?(partition: number, after: Sequence | null): Promise<number | null>;
  /** Resolves when new records may be there, or after `timeoutMs`. */
  waitForAppend(timeoutMs: number): Promise<void>;
}

export interface Stream extends StreamProducer, StreamReader {
  close(): Promise<void>;
}

/** Thrown by `append` when the stream cannot accept writes (ingest answers 503). */
export class StreamUnavailableError extends Error {
  constructor(message: string, readonly retryAfterSeconds = 1) {
    super(message);
    this.name = 'StreamUnavailableError';
  }
}

export function compareSequences(a: Sequence, b: Sequence): number {
  return a.length !== b.length ? a.length - b.length : a < b ? -1 : a > b ? 1 : 0;
}

export function decodeRecord(record: StreamRecord): ReadingBatchRecord {
  return JSON.parse(record.data) as ReadingBatchRecord;
}
