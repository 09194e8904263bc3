import { randomBytes } from 'node:crypto';
import { createServer, connect as tcpConnect, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { jetstream, jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { serviceUp } from '../../testing/services.js';
import { entry, streamConformance } from '../testing/conformance.js';
import { decodeRecord, StreamUnavailableError, type Stream, type StreamRecord } from '../types.js';
import { partitionOf } from '../partitioner.js';
import { NatsStream, type NatsStreamOptions } from './nats-stream.js';
import { layoutOf } from './nats-layout.js';
import { keyOf } from './nats-seen.js';
import { msgIdOf } from './nats-records.js';

const SERVERS = ['nats://127.0.0.1:4222'];
const WEEK_MS = 7 * 86_400_000;
const up = await serviceUp('nats');

/** Streams made by the running test, deleted (with their buckets) after it. */
const created = new Set<string>();
const freshName = () => {
  const name = `VIGIL_TEST_${randomBytes(5).toString('hex')}`;
  created.add(name);
  return name;
};

async function withAdmin<T>(fn: (jsm: JetStreamManager, nc: NatsConnection) => Promise<T>): Promise<T> {
  const nc = await connect({ servers: SERVERS });
  try {
    return await fn(await jetstreamManager(nc), nc);
  } finally {
    await nc.close();
  }
}

async function readAll(stream: Stream, partition: number): Promise<StreamRecord[]> {
  const out: StreamRecord[] = [];
  for (;;) {
    const batch = await stream.read(partition, out.length ? out[out.length - 1].sequence : null, 50);
    if (batch.length === 0) return out;
    out.push(...batch);
  }
}

/** A TCP relay to the NATS server that a test can cut (close) or black-hole (stop forwarding). */
async function relay(): Promise<{ port: number; cut(): void; blackhole(): void; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  let dropping = false;
  const server: Server = createServer((client) => {
    const upstream = tcpConnect(4222, '127.0.0.1');
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('error', () => s.destroy());
      s.on('close', () => sockets.delete(s));
    }
    client.on('data', (d) => dropping || upstream.write(d));
    upstream.on('data', (d) => dropping || client.write(d));
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  const cut = () => {
    server.close();
    for (const s of sockets) s.destroy();
  };
  return {
    port,
    cut,
    blackhole: () => (dropping = true),
    close: async () => {
      cut();
      await new Promise((r) => setTimeout(r, 10));
    },
  };
}

describe.skipIf(!up)('NATS JetStream stream', () => {
  afterEach(async () => {
    const names = [...created];
    created.clear();
    await withAdmin(async (jsm) => {
      for (const name of names) {
        await jsm.streams.delete(name).catch(() => false);
        await jsm.streams.delete(layoutOf(name).kvStream).catch(() => false);
      }
    });
  });

  let name = '';
  let retentionMs = WEEK_MS;
  const open = (o: Partial<NatsStreamOptions> = {}) =>
    NatsStream.open({ servers: SERVERS, stream: name, partitions: 4, replicas: 1, retentionMs, ...o });

  streamConformance('NATS JetStream', {
    async open(opts = {}) {
      name = freshName();
      retentionMs = opts.retentionMs ?? WEEK_MS;
      return open();
    },
    reopen: () => open(),
    // JetStream expires by its own timer, within milliseconds of max_age.
    retentionSlackMs: 400,
    keepsNewestRecord: false,
  });

  describe('on the server', () => {
    let streams: NatsStream[] = [];
    const track = (s: NatsStream) => (streams.push(s), s);
    afterEach(async () => {
      await Promise.all(streams.map((s) => s.close()));
      streams = [];
    });
    const fresh = async (o: Partial<NatsStreamOptions> = {}) => {
      name = freshName();
      retentionMs = WEEK_MS;
      return track(await open(o));
    };

    it('lays out one subject per partition, a packed record per entry with its Nats-Msg-Id, and the ranges in the KV bucket', async () => {
      const stream = await fresh();
      const e = entry('layout.band', [0, 1]);
      const [result] = await stream.append([e]);
      const l = layoutOf(name);
      await withAdmin(async (jsm) => {
        const info = await jsm.streams.info(name);
        expect(info.config.subjects).toEqual([`${name}.p.*`]);
        expect(info.config.storage).toBe('file');
        expect(info.config.max_age).toBe(WEEK_MS * 1e6);
        const msg = await jsm.streams.getMessage(name, { seq: Number(result.sequence) });
        expect(msg!.subject).toBe(`${name}.p.${partitionOf('layout.band', 4)}`);
        expect(msg!.string()).toBe(`{"deviceId":"layout.band","residentId":"res-layout.band","readings":[${e.readings.join(',')}]}`);
        expect(msg!.header.get('Nats-Msg-Id')).toBe('layout.band:0:2');
        const seen = await jsm.streams.getMessage(l.kvStream, { last_by_subj: `${l.kvPrefix}.${keyOf('layout.band')}` });
        expect(seen!.json()).toEqual([0, 1]);
        expect((await jsm.streams.info(l.kvStream)).config.max_age).toBe(WEEK_MS * 1e6);
      });
    });

    it('counts the records left after a read position in its partition only (the lag), not stream-wide sequences', async () => {
      const stream = await fresh();
      const part = partitionOf('backlog.band', 4);
      const other = ['o1', 'o2', 'o3', 'o4', 'o5', 'o6'].find((d) => partitionOf(d, 4) !== part)!;
      for (let i = 0; i < 10; i++) await stream.append([entry('backlog.band', [i]), entry(other, [i])]);
      const first = await stream.read(part, null, 4);
      expect(first).toHaveLength(4);
      expect(await stream.backlog(part, first[3].sequence)).toBe(6);
      const rest = await stream.read(part, first[3].sequence, 100);
      expect(rest).toHaveLength(6);
      expect(await stream.read(part, rest[5].sequence, 100)).toEqual([]);
      expect(await stream.backlog(part, rest[5].sequence)).toBe(0);
      // Sequences are stream-wide: head − position would have counted the other device's records.
      expect(Number(await stream.head(part)) - Number(first[3].sequence)).toBeGreaterThan(6);
      expect(await stream.backlog(part, '1')).toBeNull(); // not where the reader is
    });

    it('fixes the partition count and updates retention on open', async () => {
      const first = await fresh();
      await first.append([entry('p-band', [0])]);
      await expect(open({ partitions: 8 })).rejects.toThrow(/created with 4/);
      track(await open({ retentionMs: 3_600_000 }));
      await withAdmin(async (jsm) => {
        expect((await jsm.streams.info(name)).config.max_age).toBe(3_600_000 * 1e6);
        expect((await jsm.streams.info(layoutOf(name).kvStream)).config.max_age).toBe(3_600_000 * 1e6);
      });
    });

    it('keeps every seq of a device appended through two processes at once (compare-and-set)', async () => {
      const a = await fresh();
      const b = track(await open());
      const send = async (s: NatsStream, from: number) => {
        for (let seq = from; seq < from + 40; seq += 2) await s.append([entry('cas-band', [seq, seq + 1])]);
      };
      await Promise.all([send(a, 0), send(b, 40)]);
      const [again] = await a.append([entry('cas-band', Array.from({ length: 80 }, (_, i) => i))]);
      expect(again.duplicates).toHaveLength(80);
      const records = await readAll(b, partitionOf('cas-band', 4));
      expect(records.flatMap((r) => decodeRecord(r).readings.map((x) => x.seq)).sort((x, y) => x - y)).toEqual(Array.from({ length: 80 }, (_, i) => i));
    });

    it('lets JetStream absorb a publish retried after the ranges were not written (crash after the ack)', async () => {
      const stream = await fresh();
      const e = entry('retry-band', [5, 6, 7]);
      const nc = await connect({ servers: SERVERS });
      const data = `{"deviceId":"retry-band","residentId":"res-retry-band","readings":[${e.readings.join(',')}]}`;
      const ack = await jetstream(nc).publish(`${name}.p.${partitionOf('retry-band', 4)}`, data, { msgID: msgIdOf('retry-band', [5, 6, 7]) });
      await nc.close();
      const [result] = await stream.append([e]);
      expect(result).toEqual({ partition: partitionOf('retry-band', 4), sequence: String(ack.seq), duplicates: [] });
      expect(await readAll(stream, partitionOf('retry-band', 4))).toHaveLength(1);
      const [dup] = await stream.append([e]);
      expect(dup.duplicates).toEqual([0, 1, 2]);
    });

    it('cuts an entry larger than max_payload into consecutive records', async () => {
      const stream = await fresh();
      const seqs = Array.from({ length: 300 }, (_, i) => i);
      const big = entry('big-band', seqs, { pad: 'x'.repeat(8000) });
      const [result] = await stream.append([big]);
      const records = await readAll(stream, partitionOf('big-band', 4));
      expect(records.length).toBeGreaterThan(2);
      expect(records.flatMap((r) => decodeRecord(r).readings.map((x) => x.seq))).toEqual(seqs);
      expect(result.sequence).toBe(records[records.length - 1].sequence);
      const [dup] = await stream.append([entry('big-band', [0, 299, 300])]);
      expect(dup.duplicates).toEqual([0, 1]);
    });

    it('reads on after the server dropped its consumers, and from any position', async () => {
      const stream = await fresh({ timeoutMs: 1000 });
      for (let i = 0; i < 10; i++) await stream.append([entry('cursor-band', [i])]);
      const part = partitionOf('cursor-band', 4);
      const first = await stream.read(part, null, 4);
      await withAdmin(async (jsm) => {
        for (const c of await jsm.consumers.list(name).next()) await jsm.consumers.delete(name, c.name);
      });
      const next = await stream.read(part, first[3].sequence, 4);
      expect(next.map((r) => decodeRecord(r).readings[0].seq)).toEqual([4, 5, 6, 7]);
      const back = await stream.read(part, first[0].sequence, 2);
      expect(back.map((r) => decodeRecord(r).readings[0].seq)).toEqual([1, 2]);
      expect(await stream.read(part, next[3].sequence, 10)).toHaveLength(2);
    });

    it('rejects appends with StreamUnavailableError when NATS is cut off or stops answering', async () => {
      const cut = await relay();
      name = freshName();
      const viaCut = track(await open({ servers: [`nats://127.0.0.1:${cut.port}`], timeoutMs: 1000 }));
      await viaCut.append([entry('lost-band', [0])]);
      cut.cut();
      await new Promise((r) => setTimeout(r, 100));
      await expect(viaCut.append([entry('lost-band', [1])])).rejects.toBeInstanceOf(StreamUnavailableError);

      const hole = await relay();
      const viaHole = track(await open({ servers: [`nats://127.0.0.1:${hole.port}`], timeoutMs: 1000 }));
      hole.blackhole();
      const started = Date.now();
      await expect(viaHole.append([entry('lost-band', [2])])).rejects.toBeInstanceOf(StreamUnavailableError);
      expect(Date.now() - started).toBeLessThan(5000);
      await hole.close();
      await cut.close();
    });
  });
});
