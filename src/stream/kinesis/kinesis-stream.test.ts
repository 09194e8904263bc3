import { randomBytes } from 'node:crypto';
import { createServer, connect as tcpConnect, type AddressInfo, type Socket } from 'node:net';
import { createServer as createHttpServer, request as httpRequest, type IncomingHttpHeaders, type Server } from 'node:http';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import kinesalite from 'kinesalite';
import { GetRecordsCommand, GetShardIteratorCommand, KinesisClient, ListShardsCommand } from '@aws-sdk/client-kinesis';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { entry, streamConformance } from '../testing/conformance.js';
import { decodeRecord, StreamUnavailableError, type Stream, type StreamRecord } from '../types.js';
import { partitionOf } from '../partitioner.js';
import { KinesisStream, type KinesisStreamOptions } from './kinesis-stream.js';
import { hashKeyOf, orderShards, packRecords } from './kinesis-records.js';

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

async function readAll(stream: Stream, partition: number): Promise<StreamRecord[]> {
  const out: StreamRecord[] = [];
  for (;;) {
    const batch = await stream.read(partition, out.length ? out[out.length - 1].sequence : null, 50);
    if (batch.length === 0) return out;
    out.push(...batch);
  }
}

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

  it('orders shards by starting hash key as integers and aims at the middle of a range', () => {
    const shards = orderShards([
      { shardId: 'b', startingHashKey: '170141183460469231731687303715884105728', endingHashKey: '340282366920938463463374607431768211455' },
      { shardId: 'a', startingHashKey: '0', endingHashKey: '170141183460469231731687303715884105727' },
    ]);
    expect(shards.map((s) => s.shardId)).toEqual(['a', 'b']);
    expect(hashKeyOf(shards[0])).toBe('85070591730234615865843651857942052863');
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

    it('creates one shard per partition and lands a device in shard partitionOf(deviceId), sorted by hash key', async () => {
      freshName();
      const stream = track(await open());
      const e = entry('layout.band', [0, 1]);
      const [result] = await stream.append([e]);
      const client = admin();
      try {
        const { Shards = [] } = await client.send(new ListShardsCommand({ StreamName: name }));
        expect(Shards).toHaveLength(4);
        const sorted = orderShards(
          Shards.map((s) => ({ shardId: s.ShardId!, startingHashKey: s.HashKeyRange!.StartingHashKey!, endingHashKey: s.HashKeyRange!.EndingHashKey! })),
        );
        const shard = sorted[partitionOf('layout.band', 4)];
        const { ShardIterator } = await client.send(
          new GetShardIteratorCommand({ StreamName: name, ShardId: shard.shardId, ShardIteratorType: 'TRIM_HORIZON' }),
        );
        const { Records = [] } = await client.send(new GetRecordsCommand({ ShardIterator }));
        expect(Records).toHaveLength(1);
        expect(Records[0].PartitionKey).toBe('layout.band');
        expect(Records[0].SequenceNumber).toBe(result.sequence);
        expect(new TextDecoder().decode(Records[0].Data)).toBe(
          `{"deviceId":"layout.band","residentId":"res-layout.band","readings":[${e.readings.join(',')}]}`,
        );
      } finally {
        client.destroy();
      }
    });

    it('refuses a partition count other than the open shard count', async () => {
      freshName();
      track(await open());
      await expect(open({ partitions: 8 })).rejects.toThrow(/has 4 open shards/);
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
