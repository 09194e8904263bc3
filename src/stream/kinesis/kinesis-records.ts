/**
 * What one Kinesis record holds, and where it is sent.
 *
 * Data: a packed record, byte for byte the JSON the embedded log writes
 * (`{"deviceId","residentId","readings":[...]}`), of an entry's non-duplicate readings. One
 * record per entry, unless it exceeds Kinesis' 1 MiB record limit (data + partition key): then
 * the readings are cut, in order, into consecutive records that each fit.
 *
 * Placement: `PartitionKey` = deviceId (kept for tools that look at it) and `ExplicitHashKey` =
 * the midpoint of the hash-key range of the open shard number `partitionOf(deviceId)` (shards
 * sorted by starting hash key), so Kinesis routes the record to that shard and a device's
 * partition is the same on every backend.
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

export interface ShardRange {
  shardId: string;
  startingHashKey: string;
  endingHashKey: string;
}

/** Open shards in partition order (by starting hash key, compared as 128-bit integers). */
export function orderShards<T extends ShardRange>(shards: T[]): T[] {
  return [...shards].sort((a, b) => {
    const d = BigInt(a.startingHashKey) - BigInt(b.startingHashKey);
    return d < 0n ? -1 : d > 0n ? 1 : 0;
  });
}

/** The explicit hash key that lands a record in `shard`: the midpoint of its range. */
export function hashKeyOf(shard: ShardRange): string {
  return ((BigInt(shard.startingHashKey) + BigInt(shard.endingHashKey)) / 2n).toString();
}
