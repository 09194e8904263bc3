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

export interface Packed {
  data: string;
  /** The `seq` of each reading in `data`. */
  seqs: number[];
}

/** Kinesis' limit of a record: data blob plus partition key. */
export const MAX_RECORD_BYTES = 1024 * 1024;
/** A partition key is at most 256 Unicode characters; deviceIds are ASCII of ≤ 64. */
export const PARTITION_KEY_ROOM = 256;

export function packRecords(deviceId: string, residentId: string, readings: string[], seqs: number[], maxBytes = MAX_RECORD_BYTES): Packed[] {
  const head = `{"deviceId":${JSON.stringify(deviceId)},"residentId":${JSON.stringify(residentId)},"readings":[`;
  const whole = `${head}${readings.join(',')}]}`;
  const budget = maxBytes - PARTITION_KEY_ROOM;
  // Length in UTF-16 units ≥ bytes / 3: most records skip counting bytes at all.
  if (whole.length * 3 <= budget || Buffer.byteLength(whole) <= budget) return [{ data: whole, seqs }];

  const out: Packed[] = [];
  const frame = Buffer.byteLength(head) + 2;
  let part: string[] = [];
  let partSeqs: number[] = [];
  let bytes = frame;
  for (let i = 0; i < readings.length; i++) {
    const size = Buffer.byteLength(readings[i]) + 1;
    if (frame + size > budget) {
      // Not a 503: retrying cannot help (ingest's limits keep a reading far below 1 MiB).
      throw new RangeError(`reading seq ${seqs[i]} of ${deviceId} is ${size} bytes, more than a Kinesis record can carry (1 MiB)`);
    }
    if (bytes + size > budget) {
      out.push({ data: `${head}${part.join(',')}]}`, seqs: partSeqs });
      part = [];
      partSeqs = [];
      bytes = frame;
    }
    part.push(readings[i]);
    partSeqs.push(seqs[i]);
    bytes += size;
  }
  out.push({ data: `${head}${part.join(',')}]}`, seqs: partSeqs });
  return out;
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
