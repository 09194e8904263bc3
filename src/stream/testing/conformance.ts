/**
 * The stream conformance suite: the guarantees of `Stream` (see ../types.ts), written against
 * the interface only. Every backend's test file calls `streamConformance` with a factory.
 */
import { describe, expect, it, afterEach } from 'vitest';
import { compareSequences, decodeRecord, type AppendEntry, type Stream, type StreamRecord } from '../types.js';
import { partitionOf } from '../partitioner.js';

export interface StreamHarness {
  /** A stream on fresh, empty storage. `retentionMs` short for the retention test. */
  open(opts?: { retentionMs?: number }): Promise<Stream>;
  /** The same storage opened again (after `close`), as after a restart. */
  reopen(): Promise<Stream>;
  /** How long after records expire the backend is allowed to take to drop them. */
  retentionSlackMs: number;
  /**
   * Whether retention keeps each partition's newest record however old (default true). The
   * embedded log does, so that its next sequence is always MAX+1; JetStream's max_age expires
   * it too, and its sequences are never reused anyway.
   */
  keepsNewestRecord?: boolean;
  /**
   * Whether the backend can keep records for as little as the retention test's 300 ms (default
   * true). Kinesis' minimum retention is 24 hours: its harness sets false to skip that test.
   */
  retention?: boolean;
  /**
   * Changes the backend's physical layout under `stream` while it is in use, as an operator may
   * (Kinesis: split a shard, merge two). Absent where the backend has no such operation: the
   * resharding test is skipped. Readers must then still see every record once, each device in
   * order, and resume from positions taken before the change.
   */
  reshard?(stream: Stream): Promise<void>;
}

export function entry(deviceId: string, seqs: number[], extra: Record<string, unknown> = {}): AppendEntry {
  return {
    deviceId,
    residentId: `res-${deviceId}`,
    seqs,
    readings: seqs.map((seq) => JSON.stringify({ deviceId, seq, ts: 1_700_000_000_000 + seq * 5000, receivedAt: 0, ...extra })),
  };
}

async function readAll(stream: Stream, partition: number, after: string | null = null): Promise<StreamRecord[]> {
  const out: StreamRecord[] = [];
  for (;;) {
    const batch = await stream.read(partition, out.length ? out[out.length - 1].sequence : after, 7);
    if (batch.length === 0) return out;
    out.push(...batch);
  }
}

const seqsOf = (records: StreamRecord[]) => records.flatMap((r) => decodeRecord(r).readings.map((x) => x.seq));

export function streamConformance(name: string, harness: StreamHarness): void {
  describe(`stream conformance: ${name}`, () => {
    let stream: Stream | null = null;
    afterEach(async () => {
      await stream?.close();
      stream = null;
    });

    it('places a device on its stable partition and keeps its records in order', async () => {
      stream = await harness.open();
      const devices = ['band-a', 'band-b', 'band-c', 'band-d'];
      for (let i = 0; i < 20; i++) {
        const results = await stream.append(devices.map((d) => entry(d, [i * 2, i * 2 + 1])));
        results.forEach((r, k) => expect(r.partition).toBe(partitionOf(devices[k], stream!.partitions)));
      }
      for (const d of devices) {
        const records = (await readAll(stream, partitionOf(d, stream.partitions))).filter((r) => decodeRecord(r).deviceId === d);
        expect(seqsOf(records)).toEqual(Array.from({ length: 40 }, (_, i) => i));
      }
      for (let p = 0; p < stream.partitions; p++) {
        const records = await readAll(stream, p);
        for (let i = 1; i < records.length; i++) expect(compareSequences(records[i - 1].sequence, records[i].sequence)).toBeLessThan(0);
        if (records.length) expect(await stream.head(p)).toBe(records[records.length - 1].sequence);
      }
    });

    it('reports duplicates on (deviceId, seq) and appends only new readings', async () => {
      stream = await harness.open();
      const [first] = await stream.append([entry('dup-band', [1, 2, 3])]);
      expect(first.duplicates).toEqual([]);
      const [again] = await stream.append([entry('dup-band', [3, 2, 1])]);
      expect(again).toEqual({ partition: null, sequence: null, duplicates: [0, 1, 2] });
      const [mixed] = await stream.append([entry('dup-band', [2, 4, 4, 0])]);
      expect(mixed.duplicates).toEqual([0, 2]);
      const part = partitionOf('dup-band', stream.partitions);
      expect(seqsOf(await readAll(stream, part))).toEqual([1, 2, 3, 4, 0]);
    });

    it('resolves TRIM_HORIZON, LATEST, AT_TIMESTAMP and AFTER_SEQUENCE', async () => {
      stream = await harness.open();
      const part = partitionOf('pos-band', stream.partitions);
      expect(await stream.resolve(part, { type: 'LATEST' })).toBeNull();
      await stream.append([entry('pos-band', [0])]);
      await stream.append([entry('pos-band', [1])]);
      await new Promise((r) => setTimeout(r, 30));
      const midway = Date.now();
      await new Promise((r) => setTimeout(r, 30));
      await stream.append([entry('pos-band', [2])]);
      await stream.append([entry('pos-band', [3])]);
      const all = await readAll(stream, part);
      expect(seqsOf(all)).toEqual([0, 1, 2, 3]);

      expect(seqsOf(await readAll(stream, part, await stream.resolve(part, { type: 'TRIM_HORIZON' })))).toEqual([0, 1, 2, 3]);
      expect(await readAll(stream, part, await stream.resolve(part, { type: 'LATEST' }))).toEqual([]);
      expect(seqsOf(await readAll(stream, part, await stream.resolve(part, { type: 'AT_TIMESTAMP', timestamp: midway })))).toEqual([2, 3]);
      expect(await readAll(stream, part, await stream.resolve(part, { type: 'AT_TIMESTAMP', timestamp: Date.now() + 60_000 }))).toEqual([]);
      const afterSecond = await stream.resolve(part, { type: 'AFTER_SEQUENCE', sequence: all[1].sequence });
      expect(seqsOf(await readAll(stream, part, afterSecond))).toEqual([2, 3]);
      await stream.append([entry('pos-band', [4])]);
      expect(seqsOf(await readAll(stream, part, all[3].sequence))).toEqual([4]);
    });

    it('wakes a waiting reader when records are appended', async () => {
      stream = await harness.open();
      const started = Date.now();
      const waiting = stream.waitForAppend(5000);
      await stream.append([entry('wake-band', [0])]);
      await waiting;
      expect(Date.now() - started).toBeLessThan(4000);
    });

    it('keeps every acknowledged record across close and reopen, and never reuses a sequence', async () => {
      stream = await harness.open();
      const part = partitionOf('durable-band', stream.partitions);
      await stream.append([entry('durable-band', [0, 1])]);
      const [second] = await stream.append([entry('durable-band', [2])]);
      await stream.close();
      stream = await harness.reopen();
      expect(seqsOf(await readAll(stream, part))).toEqual([0, 1, 2]);
      const [dup] = await stream.append([entry('durable-band', [2])]);
      expect(dup.duplicates).toEqual([0]);
      const [third] = await stream.append([entry('durable-band', [3])]);
      expect(compareSequences(third.sequence!, second.sequence!)).toBeGreaterThan(0);
    });

    it('survives concurrent appends: each reading exactly once, sequences unique', async () => {
      stream = await harness.open();
      const calls = Array.from({ length: 200 }, (_, i) => stream!.append([entry(`conc-${i % 10}`, [Math.floor(i / 10)]), entry(`conc-${i % 10}`, [Math.floor(i / 10)])]));
      const results = (await Promise.all(calls)).flat();
      expect(results.filter((r) => r.sequence !== null)).toHaveLength(200);
      expect(results.filter((r) => r.duplicates.length === 1)).toHaveLength(200);
      const seen = new Set<string>();
      let readings = 0;
      for (let p = 0; p < stream.partitions; p++) {
        for (const r of await readAll(stream, p)) {
          expect(seen.has(`${p}:${r.sequence}`)).toBe(false);
          seen.add(`${p}:${r.sequence}`);
          readings += decodeRecord(r).readings.length;
        }
      }
      expect(readings).toBe(200);
    });

    it.skipIf(!harness.reshard)('keeps every record once and each device in order through a reshard made while appending, and resumes from earlier positions', async () => {
      stream = await harness.open();
      const devices = Array.from({ length: 12 }, (_, i) => `reshard-${i}`);
      const appendRounds = async (from: number, to: number) => {
        for (let i = from; i < to; i++) await stream!.append(devices.map((d) => entry(d, [i])));
      };
      await appendRounds(0, 5);
      const partitions = stream.partitions;
      const before = await Promise.all(Array.from({ length: partitions }, async (_, p) => (await readAll(stream!, p)).pop()?.sequence ?? null));
      await Promise.all([harness.reshard!(stream), appendRounds(5, 15)]);
      await appendRounds(15, 20);
      const check = async (s: Stream) => {
        for (let p = 0; p < partitions; p++) {
          const all = await readAll(s, p);
          for (let i = 1; i < all.length; i++) expect(compareSequences(all[i - 1].sequence, all[i].sequence)).toBeLessThan(0);
          for (const d of devices.filter((x) => partitionOf(x, partitions) === p)) {
            expect(seqsOf(all.filter((r) => decodeRecord(r).deviceId === d))).toEqual(Array.from({ length: 20 }, (_, i) => i));
          }
          expect(all.every((r) => partitionOf(decodeRecord(r).deviceId, partitions) === p)).toBe(true);
          const k = before[p] === null ? -1 : all.findIndex((r) => r.sequence === before[p]);
          if (before[p] !== null) expect(k).toBeGreaterThanOrEqual(0);
          expect((await readAll(s, p, before[p])).map((r) => r.sequence)).toEqual(all.slice(k + 1).map((r) => r.sequence));
          if (all.length) expect(await s.head(p)).toBe(all[all.length - 1].sequence);
        }
      };
      await check(stream);
      // As after a restart: nothing cached, same records, and every reading still known.
      await stream.close();
      stream = await harness.reopen();
      await check(stream);
      const [dup] = await stream.append([entry(devices[0], [19, 20])]);
      expect(dup.duplicates).toEqual([0]);
    });

    it.skipIf(harness.retention === false)('drops records older than the retention period (but the newest, where kept) and never reuses a sequence', async () => {
      const keepsNewest = harness.keepsNewestRecord ?? true;
      stream = await harness.open({ retentionMs: 300 });
      const part = partitionOf('old-band', stream.partitions);
      await stream.append([entry('old-band', [0])]);
      const [second] = await stream.append([entry('old-band', [1])]);
      await new Promise((r) => setTimeout(r, 300 + harness.retentionSlackMs));
      const left = await readAll(stream, part);
      expect(seqsOf(left)).toEqual(keepsNewest ? [1] : []);
      if (keepsNewest) expect(left[0].sequence).toBe(second.sequence);
      else expect(await stream.head(part)).toBeNull();
      const [next] = await stream.append([entry('old-band', [2])]);
      expect(compareSequences(next.sequence!, second.sequence!)).toBeGreaterThan(0);
    });
  });
}
