/**
 * What one Kinesis record holds, where it is sent, and how its sequence is named.
 *
 * Data: a packed record, byte for byte the JSON the embedded log writes
 * (`{"deviceId","residentId","readings":[...]}`), of an entry's non-duplicate readings. One
 * record per entry, unless it exceeds Kinesis' 1 MiB record limit (data + partition key): then
 * the readings are cut, in order, into consecutive records that each fit.
 *
 * Placement: `PartitionKey` = deviceId (kept for tools, and how a reader tells a record's
 * partition) and `ExplicitHashKey` = the partition's own hash key `partitionHashKey(p, n)`: the
 * midpoint of the p-th of n equal slices of the 128-bit hash-key space. It does not depend on
 * the stream's shards: a stream created with n shards has exactly those slices as shard ranges
 * (so partition p is shard p, as before), and after any split or merge exactly ONE open shard
 * contains the key, so a partition's records always go to one shard at a time (docs/stream-kinesis.md).
 *
 * Sequences (docs/stream-kinesis.md "Positions"): a Vigil sequence names the shard too, since
 * Kinesis sequence numbers are only ordered within a shard. A record of a root shard (one
 * CreateStream made, no parent) keeps its Kinesis sequence number as is (≤ 129 digits, the
 * API's limit); a record of a shard made by resharding, with shard index i
 * (`shardId-00000000000i`), is `(i + 1)` followed by its Kinesis sequence padded to 129 digits.
 * So, compared as numbers (`compareSequences`), every root sequence precedes every later
 * shard's, and later shards' follow shard-index order, which is the order of a lineage
 * (children get higher indexes than their parents; kinesis-stream.ts checks it).
 */
import { packRecords as packInto, type Packed } from '../record-packing.js';

export type { Packed };

/** Kinesis' limit of a record: data blob plus partition key. */
export const MAX_RECORD_BYTES = 1024 * 1024;
/** A partition key is at most 256 Unicode characters; deviceIds are ASCII of ≤ 64. */
export const PARTITION_KEY_ROOM = 256;

export function packRecords(deviceId: string, residentId: string, readings: string[], seqs: number[], maxBytes = MAX_RECORD_BYTES): Packed[] {
  return packInto(deviceId, residentId, readings, seqs, maxBytes - PARTITION_KEY_ROOM, 'a Kinesis record (1 MiB)');
}

const HASH_SPACE = 1n << 128n;

/** The explicit hash key of partition p of n: the midpoint of the p-th equal slice of [0, 2^128). */
export function partitionHashKey(partition: number, partitions: number): bigint {
  const size = HASH_SPACE / BigInt(partitions);
  const start = size * BigInt(partition);
  const end = partition === partitions - 1 ? HASH_SPACE - 1n : start + size - 1n;
  return (start + end) / 2n;
}

/** The index of a shard id (`shardId-000000000012` → 12), the order Kinesis created shards in. */
export function shardIndexOf(shardId: string): number {
  const m = /^shardId-(\d{1,15})$/.exec(shardId);
  if (!m) throw new Error(`unexpected Kinesis shard id ${shardId}`);
  return Number(m[1]);
}

/** Digits of the widest Kinesis sequence number (the API's pattern `0|([1-9]\d{0,128})`). */
export const KINESIS_SEQUENCE_DIGITS = 129;

/** The Vigil sequence of Kinesis sequence `kinesisSeq` of a shard (see the top of this file). */
export function encodeSequence(shardId: string, root: boolean, kinesisSeq: string): string {
  if (root) return kinesisSeq;
  return `${shardIndexOf(shardId) + 1}${kinesisSeq.padStart(KINESIS_SEQUENCE_DIGITS, '0')}`;
}

/** Where a Vigil sequence points: a root shard's record (`shardIndex` null) or shard `shardIndex`'s. */
export function decodeSequence(sequence: string): { shardIndex: number | null; kinesisSeq: string } {
  if (sequence.length <= KINESIS_SEQUENCE_DIGITS) return { shardIndex: null, kinesisSeq: sequence };
  const cut = sequence.length - KINESIS_SEQUENCE_DIGITS;
  return { shardIndex: Number(sequence.slice(0, cut)) - 1, kinesisSeq: sequence.slice(cut).replace(/^0+(?=\d)/, '') };
}
