import { randomBytes } from 'node:crypto';
import { createServer, connect as tcpConnect, type AddressInfo, type Socket } from 'node:net';
import { createServer as createHttpServer, request as httpRequest, type IncomingHttpHeaders, type Server } from 'node:http';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import kinesalite from 'kinesalite';
import {
  AddTagsToStreamCommand,
  CreateStreamCommand,
  DescribeStreamSummaryCommand,
  GetRecordsCommand,
  GetShardIteratorCommand,
  KinesisClient,
  ListShardsCommand,
  ListTagsForStreamCommand,
  MergeShardsCommand,
  SplitShardCommand,
} from '@aws-sdk/client-kinesis';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { entry, streamConformance } from '../testing/conformance.js';
import { compareSequences, decodeRecord, StreamUnavailableError, type Stream, type StreamRecord } from '../types.js';
import { partitionOf } from '../partitioner.js';
import { KinesisStream, PARTITIONS_TAG, type KinesisStreamOptions } from './kinesis-stream.js';
import { decodeSequence, encodeSequence, packRecords, partitionHashKey } from './kinesis-records.js';

const WEEK_MS = 7 * 86_400_000;
const credentials = { accessKeyId: 'fake', secretAccessKey: 'fake' };

let server: Server;
let endpoint = '';

beforeAll(async () => {
  server = kinesalite({ createStreamMs: 0, deleteStreamMs: 0, updateStreamMs: 0, shardLimit: 100_000 });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await new Promise((resolve) => server.close(resolve));
});

/** A TCP relay to kinesalite that a test can cut. */
async function relay(): Promise<{ port: number; cut(): void }> {
  const sockets = new Set<Socket>();
  const target = Number(new URL(endpoint).port);
  const proxy = createServer((client) => {
    const upstream = tcpConnect(target, '127.0.0.1');
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('error', () => s.destroy());
      s.on('close', () => sockets.delete(s));
    }
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  return {
    port: (proxy.address() as AddressInfo).port,
    cut: () => {
      proxy.close();
      for (const s of sockets) s.destroy();
    },
  };
}

/**
 * An HTTP proxy to kinesalite that throttles PutRecords as `plan` says for each call in turn:
 * 'all' answers ProvisionedThroughputExceededException for the whole call, 'odd' forwards only
 * the even-indexed records and reports the odd ones failed; past the plan it forwards.
 */
async function throttler(plan: ('all' | 'odd')[]): Promise<{ endpoint: string; putCalls: () => number; close(): Promise<void> }> {
  let calls = 0;
  const target = new URL(endpoint);
  const forward = (headers: IncomingHttpHeaders, body: string) =>
    new Promise<{ status: number; headers: IncomingHttpHeaders; body: string }>((resolve, reject) => {
      const req = httpRequest(
        { host: '127.0.0.1', port: Number(target.port), method: 'POST', path: '/', headers: { ...headers, 'content-length': Buffer.byteLength(body) } },
        (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (d: string) => (text += d));
          res.on('end', () => resolve({ status: res.statusCode ?? 500, headers: res.headers, body: text }));
        },
      );
      req.on('error', reject);
      req.end(body);
    });
  const proxy = createHttpServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (d: string) => (body += d));
    req.on('end', async () => {
      const isPut = String(req.headers['x-amz-target'] ?? '').endsWith('.PutRecords');
      const mode = isPut ? plan[calls++] : undefined;
      if (mode === 'all') {
        res.writeHead(400, { 'content-type': 'application/x-amz-json-1.1' });
        res.end(JSON.stringify({ __type: 'ProvisionedThroughputExceededException', message: 'Rate exceeded for shard' }));
        return;
      }
      if (mode === 'odd') {
        const request = JSON.parse(body) as { StreamName: string; Records: unknown[] };
        const sent = await forward(req.headers, JSON.stringify({ ...request, Records: request.Records.filter((_, i) => i % 2 === 0) }));
        const answer = JSON.parse(sent.body) as { Records: unknown[] };
        const failed = { ErrorCode: 'ProvisionedThroughputExceededException', ErrorMessage: 'Rate exceeded for shard' };
        const records = request.Records.map((_, i) => (i % 2 === 0 ? answer.Records[i / 2] : failed));
        res.writeHead(200, { 'content-type': 'application/x-amz-json-1.1' });
        res.end(JSON.stringify({ FailedRecordCount: records.filter((r) => r === failed).length, Records: records }));
        return;
      }
      const sent = await forward(req.headers, body);
      res.writeHead(sent.status, { 'content-type': String(sent.headers['content-type'] ?? 'application/x-amz-json-1.1') });
      res.end(sent.body);
    });
  });
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  return {
    endpoint: `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`,
    putCalls: () => calls,
    close: () =>
      new Promise<void>((resolve) => {
        proxy.closeAllConnections();
        proxy.close(() => resolve());
      }),
  };
}

async function readAll(stream: Stream, partition: number, after: string | null = null): Promise<StreamRecord[]> {
  const out: StreamRecord[] = [];
  for (;;) {
    const batch = await stream.read(partition, out.length ? out[out.length - 1].sequence : after, 50);
    if (batch.length === 0) return out;
    out.push(...batch);
  }
}

async function waitActive(client: KinesisClient, name: string): Promise<void> {
  for (;;) {
    const { StreamDescriptionSummary: s } = await client.send(new DescribeStreamSummaryCommand({ StreamName: name }));
    if (s?.StreamStatus === 'ACTIVE') return;
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function openShardHolding(client: KinesisClient, name: string, key: bigint) {
  const { Shards = [] } = await client.send(new ListShardsCommand({ StreamName: name }));
  const shard = Shards.find(
    (s) => !s.SequenceNumberRange?.EndingSequenceNumber && BigInt(s.HashKeyRange!.StartingHashKey!) <= key && key <= BigInt(s.HashKeyRange!.EndingHashKey!),
  );
  if (!shard) throw new Error(`no open shard holds ${key}`);
  return shard;
}

/** Splits the open shard holding `key` at `at` (the upper child starts there), as an operator would, and waits for ACTIVE. */
async function splitAt(client: KinesisClient, name: string, key: bigint, at: bigint): Promise<void> {
  const shard = await openShardHolding(client, name, key);
  await client.send(new SplitShardCommand({ StreamName: name, ShardToSplit: shard.ShardId, NewStartingHashKey: at.toString() }));
  await waitActive(client, name);
}

/** Merges the two adjacent open shards holding `lower` and `upper`, and waits for ACTIVE. */
async function mergeHolding(client: KinesisClient, name: string, lower: bigint, upper: bigint): Promise<void> {
  const [a, b] = [await openShardHolding(client, name, lower), await openShardHolding(client, name, upper)];
  await client.send(new MergeShardsCommand({ StreamName: name, ShardToMerge: a.ShardId, AdjacentShardToMerge: b.ShardId }));
  await waitActive(client, name);
}

/** `perPartition` device ids on each of `partitions` partitions. */
function devicesCovering(partitions: number, perPartition: number): string[] {
  const counts = new Array<number>(partitions).fill(0);
  const out: string[] = [];
  for (let i = 0; out.length < partitions * perPartition; i++) {
    const d = `rs-${i}`;
    const p = partitionOf(d, partitions);
    if (counts[p] < perPartition) {
      counts[p]++;
      out.push(d);
    }
  }
  return out;
}

const seqsOf = (records: StreamRecord[], deviceId: string) =>
  records.filter((r) => decodeRecord(r).deviceId === deviceId).flatMap((r) => decodeRecord(r).readings.map((x) => x.seq));

describe('Kinesis records', () => {
  it('packs as the embedded log does and cuts only past the 1 MiB record limit', () => {
    expect(packRecords('b', 'r', ['{"seq":1}', '{"seq":2}'], [1, 2])).toEqual([
      { data: '{"deviceId":"b","residentId":"r","readings":[{"seq":1},{"seq":2}]}', seqs: [1, 2] },
    ]);
    const big = Array.from({ length: 10 }, (_, i) => JSON.stringify({ seq: i, pad: 'é'.repeat(300) }));
    const parts = packRecords('b', 'r', big, [...big.keys()], 256 + 1400);
    expect(parts.length).toBeGreaterThan(1);
    for (const p of parts) expect(Buffer.byteLength(p.data)).toBeLessThanOrEqual(1400);
    expect(parts.flatMap((p) => p.seqs)).toEqual([...big.keys()]);
    expect(() => packRecords('b', 'r', big, [...big.keys()], 256 + 300)).toThrow(RangeError);
  });

  it('gives partition p of n the midpoint of the p-th equal slice of the hash-key space, as CreateStream lays out n shards', () => {
    expect(partitionHashKey(0, 2)).toBe(85070591730234615865843651857942052863n);
    expect(partitionHashKey(1, 2)).toBe(255211775190703847597530955573826158591n);
    expect(partitionHashKey(0, 1)).toBe((2n ** 128n - 1n) / 2n);
    // The last slice takes the remainder of an uneven division, as Kinesis' last shard does.
    const size = 2n ** 128n / 3n;
    expect(partitionHashKey(2, 3)).toBe((2n * size + 2n ** 128n - 1n) / 2n);
  });

  it('names a record of a reshard-made shard by its shard index, after every root record and in shard order', () => {
    const root = '49590338271490256608559692538361571095921575989136588898';
    expect(encodeSequence('shardId-000000000003', true, root)).toBe(root);
    const child = encodeSequence('shardId-000000000004', false, '4959');
    const grandchild = encodeSequence('shardId-000000000012', false, '17');
    expect(child).toBe('5' + '4959'.padStart(129, '0'));
    expect(decodeSequence(root)).toEqual({ shardIndex: null, kinesisSeq: root });
    expect(decodeSequence(child)).toEqual({ shardIndex: 4, kinesisSeq: '4959' });
    expect(decodeSequence(grandchild)).toEqual({ shardIndex: 12, kinesisSeq: '17' });
    expect(decodeSequence(encodeSequence('shardId-000000000007', false, '0'))).toEqual({ shardIndex: 7, kinesisSeq: '0' });
    expect(compareSequences(root, child)).toBeLessThan(0);
    expect(compareSequences('9'.repeat(129), child)).toBeLessThan(0);
    expect(compareSequences(child, encodeSequence('shardId-000000000004', false, '4960'))).toBeLessThan(0);
    expect(compareSequences(encodeSequence('shardId-000000000004', false, '9'.repeat(129)), grandchild)).toBeLessThan(0);
  });
});

describe('Kinesis stream (kinesalite)', () => {
  let name = '';
  const open = (o: Partial<KinesisStreamOptions> = {}) =>
    KinesisStream.open({ streamName: name, region: 'us-east-1', endpoint, credentials, partitions: 4, retentionMs: WEEK_MS, ...o });
  const freshName = () => (name = `vigil-test-${randomBytes(5).toString('hex')}`);

  streamConformance('Kinesis (kinesalite)', {
    async open() {
      freshName();
      return open();
    },
    reopen: () => open(),
    retentionSlackMs: 0,
    // Kinesis keeps records at least 24 hours: the 300 ms retention test cannot run.
    retention: false,
    keepsNewestRecord: false,
    // As an operator would while Vigil runs: split partition 0's shard, merge those of 2 and 3.
    async reshard() {
      const client = new KinesisClient({ region: 'us-east-1', endpoint, credentials, requestHandler: new NodeHttpHandler() });
      try {
        await splitAt(client, name, partitionHashKey(0, 4), 3n * 2n ** 124n);
        await mergeHolding(client, name, partitionHashKey(2, 4), partitionHashKey(3, 4));
      } finally {
        client.destroy();
      }
    },
  });

  describe('on the emulator', () => {
    let streams: KinesisStream[] = [];
    const track = (s: KinesisStream) => (streams.push(s), s);
    afterEach(async () => {
      await Promise.all(streams.map((s) => s.close()));
      streams = [];
    });
    const admin = () =>
      new KinesisClient({ region: 'us-east-1', endpoint, credentials, requestHandler: new NodeHttpHandler() });

    it('creates one shard per partition, tags the count, and lands a device in shard partitionOf(deviceId)', async () => {
      freshName();
      const stream = track(await open());
      const e = entry('layout.band', [0, 1]);
      const [result] = await stream.append([e]);
      const client = admin();
      try {
        const { Shards = [] } = await client.send(new ListShardsCommand({ StreamName: name }));
        expect(Shards).toHaveLength(4);
        const p = partitionOf('layout.band', 4);
        const shard = Shards.find((s) => s.ShardId === `shardId-${String(p).padStart(12, '0')}`)!;
        const key = partitionHashKey(p, 4);
        expect(BigInt(shard.HashKeyRange!.StartingHashKey!) <= key && key <= BigInt(shard.HashKeyRange!.EndingHashKey!)).toBe(true);
        const { ShardIterator } = await client.send(
          new GetShardIteratorCommand({ StreamName: name, ShardId: shard.ShardId, ShardIteratorType: 'TRIM_HORIZON' }),
        );
        const { Records = [] } = await client.send(new GetRecordsCommand({ ShardIterator }));
        expect(Records).toHaveLength(1);
        expect(Records[0].PartitionKey).toBe('layout.band');
        // A root shard's record keeps its Kinesis sequence number.
        expect(Records[0].SequenceNumber).toBe(result.sequence);
        expect(new TextDecoder().decode(Records[0].Data)).toBe(
          `{"deviceId":"layout.band","residentId":"res-layout.band","readings":[${e.readings.join(',')}]}`,
        );
        const { Tags = [] } = await client.send(new ListTagsForStreamCommand({ StreamName: name }));
        expect(Tags).toContainEqual({ Key: PARTITIONS_TAG, Value: '4' });
      } finally {
        client.destroy();
      }
    });

    it('refuses a partition count other than the stream\'s, and an untagged stream it cannot vouch for', async () => {
      freshName();
      track(await open());
      await expect(open({ partitions: 8 })).rejects.toThrow(/holds 4 partitions \(tag vigil\.partitions\)/);
      // Made by hand with 2 shards: untagged, Vigil cannot know what count its data was written with.
      freshName();
      const client = admin();
      try {
        await client.send(new CreateStreamCommand({ StreamName: name, ShardCount: 2 }));
        await waitActive(client, name);
        await expect(open()).rejects.toThrow(/has 2 open shards and no vigil\.partitions tag/);
        // Resharded and untagged: refused even when the open shard count matches.
        freshName();
        await client.send(new CreateStreamCommand({ StreamName: name, ShardCount: 4 }));
        await waitActive(client, name);
        await splitAt(client, name, partitionHashKey(0, 4), partitionHashKey(0, 4) + 1n);
        await mergeHolding(client, name, partitionHashKey(2, 4), partitionHashKey(3, 4));
        await expect(open()).rejects.toThrow(/has 4 open shards after a reshard and no vigil\.partitions tag/);
      } finally {
        client.destroy();
      }
    });

    it('runs 4 partitions on 2 shards of a stream tagged by hand: each reader keeps its own partition\'s records', async () => {
      freshName();
      const client = admin();
      try {
        await client.send(new CreateStreamCommand({ StreamName: name, ShardCount: 2 }));
        await waitActive(client, name);
        await client.send(new AddTagsToStreamCommand({ StreamName: name, Tags: { [PARTITIONS_TAG]: '4' } }));
      } finally {
        client.destroy();
      }
      const stream = track(await open());
      const devices = devicesCovering(4, 3);
      for (let i = 0; i < 5; i++) await stream.append(devices.map((d) => entry(d, [i])));
      for (let p = 0; p < 4; p++) {
        const records = await readAll(stream, p);
        expect(new Set(records.map((r) => partitionOf(decodeRecord(r).deviceId, 4)))).toEqual(new Set([p]));
        for (const d of devices.filter((x) => partitionOf(x, 4) === p)) {
          expect(records.filter((r) => decodeRecord(r).deviceId === d).flatMap((r) => decodeRecord(r).readings.map((x) => x.seq))).toEqual([0, 1, 2, 3, 4]);
        }
        expect(await stream.head(p)).toBe(records[records.length - 1].sequence);
      }
      const again = track(await open());
      const [dup] = await again.append([entry(devices[0], [4, 5])]);
      expect(dup.duplicates).toEqual([0]);
    });

    it('cuts an entry larger than 1 MiB into consecutive records, and dedupes it after a restart', async () => {
      freshName();
      const stream = track(await open());
      const seqs = Array.from({ length: 300 }, (_, i) => i);
      const [result] = await stream.append([entry('big-band', seqs, { pad: 'x'.repeat(8000) })]);
      const part = partitionOf('big-band', 4);
      const records = await readAll(stream, part);
      expect(records.length).toBeGreaterThan(2);
      expect(records.flatMap((r) => decodeRecord(r).readings.map((x) => x.seq))).toEqual(seqs);
      expect(result.sequence).toBe(records[records.length - 1].sequence);
      const again = track(await open());
      const [dup] = await again.append([entry('big-band', [0, 299, 300])]);
      expect(dup.duplicates).toEqual([0, 1]);
    });

    it('reads batch after batch from the kept iterator, and from any position', async () => {
      freshName();
      const stream = track(await open());
      for (let i = 0; i < 10; i++) await stream.append([entry('cursor-band', [i])]);
      const part = partitionOf('cursor-band', 4);
      const first = await stream.read(part, null, 4);
      const next = await stream.read(part, first[3].sequence, 4);
      expect(next.map((r) => decodeRecord(r).readings[0].seq)).toEqual([4, 5, 6, 7]);
      const back = await stream.read(part, first[0].sequence, 2);
      expect(back.map((r) => decodeRecord(r).readings[0].seq)).toEqual([1, 2]);
      expect(await stream.read(part, next[3].sequence, 10)).toHaveLength(2);
      expect(await stream.head(part)).toBe((await readAll(stream, part)).pop()!.sequence);
    });

    it('sees what another process appended once it catches up (head), and dedupes it', async () => {
      freshName();
      const a = track(await open());
      const b = track(await open());
      await b.append([entry('other-band', [0])]);
      const [before] = await a.append([entry('other-band', [1])]);
      expect(before.duplicates).toEqual([]);
      await a.head(partitionOf('other-band', 4));
      const [dup] = await a.append([entry('other-band', [0, 1, 2])]);
      expect(dup.duplicates).toEqual([0, 1]);
    });

    it('reads every record once, each device in order, through splits and merges made while writing and reading', async () => {
      freshName();
      const writer = track(await open());
      // Another process consuming every partition batch after batch, as a group does.
      const reader = track(await open());
      const client = admin();
      const devices = devicesCovering(4, 3);
      let round = 0;
      let stop = false;
      const writing = (async () => {
        while (!stop) {
          await writer.append(devices.map((d) => entry(d, [round * 2, round * 2 + 1])));
          round++;
          await new Promise((r) => setTimeout(r, 5));
        }
      })();
      const consumed: StreamRecord[][] = [[], [], [], []];
      let draining = false;
      const consuming = Promise.all(
        [0, 1, 2, 3].map(async (p) => {
          let position: string | null = null;
          for (let idle = 0; ; ) {
            const batch = await reader.read(p, position, 5);
            consumed[p].push(...batch);
            if (batch.length > 0) {
              position = batch[batch.length - 1].sequence;
              idle = 0;
            } else if (draining && ++idle >= 3) return;
            else await reader.waitForAppend(20);
          }
        }),
      );
      const rounds = async (n: number) => {
        const until = round + n;
        while (round < until) await new Promise((r) => setTimeout(r, 5));
      };
      let before: string[] = [];
      try {
        await rounds(5);
        while (consumed.some((c) => c.length === 0)) await new Promise((r) => setTimeout(r, 5));
        // Positions taken before any reshard, as checkpoints hold them.
        before = consumed.map((c) => c[c.length - 1].sequence);
        const q = (p: number) => partitionHashKey(p, 4);
        // Partition 0's key in the lower child, 1's in the upper one; 2 and 3 merged, split again;
        // 0's children merged back: lineages of two and three generations.
        await splitAt(client, name, q(0), 3n * 2n ** 124n);
        await rounds(3);
        await splitAt(client, name, q(1), 2n ** 126n + 2n ** 124n);
        await rounds(3);
        await mergeHolding(client, name, q(2), q(3));
        await rounds(3);
        await splitAt(client, name, q(2), 3n * 2n ** 126n);
        await rounds(3);
        await mergeHolding(client, name, q(0), 3n * 2n ** 124n);
        await rounds(5);
      } finally {
        stop = true;
        await writing;
        draining = true;
        await consuming;
      }

      const written = round * 2;
      // A process started after the reshards, with nothing cached.
      const fresh = track(await open());
      for (let p = 0; p < 4; p++) {
        const all = await readAll(fresh, p);
        for (let i = 1; i < all.length; i++) expect(compareSequences(all[i - 1].sequence, all[i].sequence)).toBeLessThan(0);
        expect(all.every((r) => partitionOf(decodeRecord(r).deviceId, 4) === p)).toBe(true);
        for (const d of devices.filter((x) => partitionOf(x, 4) === p)) expect(seqsOf(all, d)).toEqual(Array.from({ length: written }, (_, i) => i));
        // The partition went through several shards.
        const shards = [...new Set(all.map((r) => decodeSequence(r.sequence).shardIndex))];
        expect(shards.length).toBeGreaterThanOrEqual(2);
        // The concurrent consumer read the same records, once each, in the same order.
        expect(consumed[p].map((r) => r.sequence)).toEqual(all.map((r) => r.sequence));
        // A position taken before the reshards resumes right after it.
        const k = all.findIndex((r) => r.sequence === before[p]);
        expect(k).toBeGreaterThanOrEqual(0);
        expect((await readAll(fresh, p, before[p])).map((r) => r.sequence)).toEqual(all.slice(k + 1).map((r) => r.sequence));
        // So does the last position of each shard: the next one is the child's first record.
        for (let i = 0; i + 1 < all.length; i++) {
          if (decodeSequence(all[i].sequence).shardIndex === decodeSequence(all[i + 1].sequence).shardIndex) continue;
          const next = await fresh.read(p, all[i].sequence, 3);
          expect(next.length).toBeGreaterThan(0);
          expect(next.map((r) => r.sequence)).toEqual(all.slice(i + 1, i + 1 + next.length).map((r) => r.sequence));
        }
        const last = all[all.length - 1].sequence;
        expect(await fresh.head(p)).toBe(last);
        expect(await writer.head(p)).toBe(last);
        expect(await fresh.resolve(p, { type: 'LATEST' })).toBe(last);
        expect(await fresh.backlog(p, before[p])).toBe(all.length - k - 1);
        expect(await fresh.backlog(p, last)).toBe(0);
        const t = all[all.length >> 1].timestamp;
        const from = await fresh.resolve(p, { type: 'AT_TIMESTAMP', timestamp: t });
        expect((await fresh.read(p, from, 1))[0].sequence).toBe(all.find((r) => r.timestamp >= t)!.sequence);
      }
      // Dedupe went through the reshards too: the new process's seeding scan read the parents.
      const [dup] = await fresh.append([entry(devices[0], [0, written])]);
      expect(dup.duplicates).toEqual([0]);
      expect(decodeSequence(dup.sequence!).shardIndex).not.toBeNull();
      client.destroy();
    });

    it('retries only the throttled records, keeps each device in order, and resolves once all are acknowledged', async () => {
      freshName();
      const proxy = await throttler(['all', 'odd', 'odd']);
      const stream = track(await open({ endpoint: proxy.endpoint, maxAttempts: 1 }));
      const devices = Array.from({ length: 6 }, (_, i) => `throttle-${i}`);
      // Two entries per device: the second waits for the first's acknowledgement.
      const results = await stream.append(devices.flatMap((d) => [entry(d, [0, 1]), entry(d, [2])]));
      expect(results.every((r) => r.sequence !== null && r.duplicates.length === 0)).toBe(true);
      expect(proxy.putCalls()).toBeGreaterThan(4);
      for (const d of devices) {
        const records = (await readAll(stream, partitionOf(d, 4))).filter((r) => decodeRecord(r).deviceId === d);
        expect(records.flatMap((r) => decodeRecord(r).readings.map((x) => x.seq))).toEqual([0, 1, 2]);
      }
      await proxy.close();
    });

    it('gives up on persistent throttling with StreamUnavailableError, keeping what was acknowledged', async () => {
      freshName();
      const proxy = await throttler(['odd', ...Array.from({ length: 1000 }, () => 'all' as const)]);
      const stream = track(await open({ endpoint: proxy.endpoint, maxAttempts: 1, timeoutMs: 800 }));
      const started = Date.now();
      await expect(stream.append([entry('hot-a', [0]), entry('hot-b', [0])])).rejects.toBeInstanceOf(StreamUnavailableError);
      expect(Date.now() - started).toBeLessThan(2000);
      // hot-a went first in each request and was acknowledged: a retry appends only hot-b.
      await proxy.close();
      const direct = track(await open());
      const [a, b] = await direct.append([entry('hot-a', [0]), entry('hot-b', [0])]);
      expect(a.duplicates).toEqual([0]);
      expect(b.duplicates).toEqual([]);
    });

    it('rejects appends with StreamUnavailableError when Kinesis is unreachable', async () => {
      freshName();
      const cut = await relay();
      const stream = track(await open({ endpoint: `http://127.0.0.1:${cut.port}`, timeoutMs: 1000, maxAttempts: 1 }));
      await stream.append([entry('lost-band', [0])]);
      cut.cut();
      const started = Date.now();
      await expect(stream.append([entry('lost-band', [1])])).rejects.toBeInstanceOf(StreamUnavailableError);
      expect(Date.now() - started).toBeLessThan(5000);
    });
  });
});
