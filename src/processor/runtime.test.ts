/**
 * The group runtime on the real embedded stream and SQLite store: fair sharing of partitions
 * through leases, takeover when a worker leaves, fencing, retry after a sink failure, rewind.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createLogger } from '../core/logger.js';
import { EmbeddedStream } from '../stream/embedded/embedded-stream.js';
import { entry } from '../stream/testing/conformance.js';
import { decodeRecord, type StreamRecord } from '../stream/types.js';
import { SqliteStore } from '../store/sqlite/sqlite-store.js';
import type { Store } from '../store/types.js';
import { GroupRuntime } from './runtime.js';
import type { ConsumerGroup, FlushContext } from './types.js';

const log = createLogger('silent');
const PARTITIONS = 4;

/** A group whose "sink" is an array: it records what each flush made durable. */
class RecordingGroup implements ConsumerGroup {
  readonly name = 'test';
  readonly flushEveryRecords = 1;
  readonly flushEveryMs = 0;
  readonly durable: { owner: string; partition: number; key: string }[] = [];
  readonly pending = new Map<number, string[]>();
  failFlushes = 0;
  constructor(readonly owner: string) {}
  async open(partition: number) {
    this.pending.set(partition, []);
  }
  async handle(partition: number, records: StreamRecord[]) {
    for (const r of records) for (const x of decodeRecord(r).readings) this.pending.get(partition)!.push(`${x.deviceId}:${x.seq}`);
  }
  async flush(partition: number, ctx: FlushContext) {
    if (this.failFlushes > 0) {
      this.failFlushes--;
      throw new Error('sink down');
    }
    for (const key of this.pending.get(partition)!) this.durable.push({ owner: this.owner, partition, key });
    this.pending.set(partition, []);
    await ctx.commit({ at: ctx.checkpoint.sequence });
  }
  async close(partition: number) {
    this.pending.delete(partition);
  }
  async shutdown() {}
}

describe('group runtime', () => {
  const cleanup: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const c of cleanup.splice(0).reverse()) await c();
  });

  async function setup() {
    const dir = mkdtempSync(join(tmpdir(), 'vigil-runtime-'));
    const stream = new EmbeddedStream({ dataDir: dir, partitions: PARTITIONS, retentionMs: 86_400_000 });
    const store = SqliteStore.open(dir);
    cleanup.push(async () => {
      await stream.close();
      await store.close();
    });
    return { dir, stream, store };
  }

  function runtime(stream: EmbeddedStream, store: Store, owner: string, leaseMs = 600) {
    const group = new RecordingGroup(owner);
    const rt = new GroupRuntime({ group, stream, store, owner, leaseMs, batchRecords: 10, log });
    return { group, rt };
  }

  const waitUntil = async (cond: () => boolean, ms = 10_000) => {
    const end = Date.now() + ms;
    while (!cond()) {
      if (Date.now() > end) throw new Error('condition not met in time');
      await new Promise((r) => setTimeout(r, 20));
    }
  };

  async function appendMany(stream: EmbeddedStream, from: number, to: number) {
    for (let i = from; i < to; i++) await stream.append([entry(`dev-${i % 12}`, [i])]);
  }

  it('hands a fair share to a worker that joins, all to the one left when the other stops, each record once', async () => {
    const { stream, store } = await setup();
    await appendMany(stream, 0, 60);
    const a = runtime(stream, store, 'A');
    const b = runtime(stream, store, 'B');
    a.rt.start();
    await waitUntil(() => a.rt.stats().partitions.filter((p) => p.owned).length === PARTITIONS);
    b.rt.start();
    // B joins: A hands half of its partitions over.
    await waitUntil(() => a.rt.stats().partitions.filter((p) => p.owned).length === PARTITIONS / 2 && b.rt.stats().partitions.filter((p) => p.owned).length === PARTITIONS / 2);
    await waitUntil(() => a.group.durable.length + b.group.durable.length >= 60);
    await a.rt.stop();
    await appendMany(stream, 60, 120);
    await waitUntil(() => b.rt.stats().partitions.filter((p) => p.owned).length === PARTITIONS);
    await waitUntil(() => a.group.durable.length + b.group.durable.length >= 120);
    await b.rt.stop();
    const keys = [...a.group.durable, ...b.group.durable].map((d) => d.key);
    expect(new Set(keys).size).toBe(120);
    expect(keys.length).toBe(120); // clean handovers: nothing handled twice
    expect(b.group.durable.length).toBeGreaterThanOrEqual(60);
  });

  it('never lets two workers own a partition, and takes over an expired lease', async () => {
    const { stream, store } = await setup();
    const a = runtime(stream, store, 'A');
    const b = runtime(stream, store, 'B');
    a.rt.start();
    b.rt.start();
    await waitUntil(() => {
      const owned = [a, b].map((x) => x.rt.stats().partitions.filter((p) => p.owned).length);
      return owned[0] + owned[1] === PARTITIONS;
    });
    const ownedA = a.rt.stats().partitions.filter((p) => p.owned).map((p) => p.partition);
    const ownedB = b.rt.stats().partitions.filter((p) => p.owned).map((p) => p.partition);
    expect(ownedA.filter((p) => ownedB.includes(p))).toEqual([]);
    // "Kill" B: its leases are never renewed nor released; A takes them over after expiry.
    (b.rt as unknown as { running: boolean }).running = false;
    await waitUntil(() => a.rt.stats().partitions.every((p) => p.owned), 5000);
    await appendMany(stream, 0, 20);
    await waitUntil(() => a.group.durable.length === 20);
    await a.rt.stop();
    await b.rt.stop(); // ends B's loop; its stale leases are not released over A's
    expect((await store.listLeases('test')).every((l) => l.owner === 'A')).toBe(true);
  });

  it('fences a worker whose lease was taken: its checkpoint write fails and it drops the partition', async () => {
    const { stream, store } = await setup();
    const a = runtime(stream, store, 'A', 60_000);
    a.rt.start();
    await waitUntil(() => a.rt.stats().partitions.every((p) => p.owned));
    // Another worker steals partition of dev-0 (as if A had stalled past its lease).
    const stolen = (await store.listLeases('test')).find((l) => l.owner === 'A')!;
    await store.releaseLease(stolen);
    const thief = await store.acquireLease('test', stolen.partition, 'C', 60_000, Date.now());
    expect(thief?.epoch).toBeGreaterThan(stolen.epoch);
    await appendMany(stream, 0, 24);
    await waitUntil(() => !a.rt.stats().partitions[stolen.partition].owned);
    const cp = await store.getCheckpoint('test', stolen.partition);
    expect(cp?.sequence ?? null).toBeNull();
    await a.rt.stop();
  });

  it('retries a partition from its checkpoint after a sink failure (at-least-once, nothing lost)', async () => {
    const { stream, store } = await setup();
    const a = runtime(stream, store, 'A');
    a.group.failFlushes = 2;
    a.rt.start();
    await appendMany(stream, 0, 30);
    await waitUntil(() => new Set(a.group.durable.map((d) => d.key)).size === 30, 15_000);
    expect(a.rt.stats().partitions.some((p) => p.errors >= 0)).toBe(true);
    await a.rt.stop();
  });

  it('rewinds every partition to TRIM_HORIZON and handles the stream again', async () => {
    const { stream, store } = await setup();
    const a = runtime(stream, store, 'A');
    a.rt.start();
    await appendMany(stream, 0, 16);
    await waitUntil(() => a.group.durable.length === 16);
    await a.rt.rewind({ type: 'TRIM_HORIZON' });
    await waitUntil(() => a.group.durable.length === 32);
    const lags = a.rt.stats().partitions.map((p) => p.lag);
    expect(lags.every((l) => l === 0)).toBe(true);
    await a.rt.stop();
    for (let p = 0; p < PARTITIONS; p++) {
      const cp = await store.getCheckpoint('test', p);
      expect(cp?.sequence).toBe(await stream.head(p));
    }
  });
});
