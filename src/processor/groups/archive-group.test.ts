import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { LocalArchive } from '../../archive/local/local-archive.js';
import type { Archive } from '../../archive/types.js';
import { compareSequences, type StreamRecord } from '../../stream/types.js';
import type { FlushContext } from '../types.js';
import { ArchiveGroup } from './archive-group.js';

const P = 2;
/** 40 records 9 s apart from 23:57 UTC: record 20 is the first of the next day's hour 00. */
const T0 = Date.UTC(2024, 2, 10, 23, 57, 0);
const FIRST_SEQ = 95;

/** Sequences step by 3 (streams leave gaps) and cross from 2 to 3 digits. */
function makeStream(n = 40): StreamRecord[] {
  let seq = 0;
  return Array.from({ length: n }, (_, i) => {
    const deviceId = `band-${i % 3}`;
    const timestamp = T0 + i * 9000;
    const readings = Array.from({ length: 1 + (i % 3) }, () => ({ deviceId, seq: seq++, ts: timestamp - 4000, receivedAt: timestamp, hr: 60 + i }));
    return { partition: P, sequence: String(FIRST_SEQ + i * 3), timestamp, data: JSON.stringify({ deviceId, residentId: `res-${i % 3}`, readings }) };
  });
}
const seqOf = (i: number) => String(FIRST_SEQ + i * 3);

const freshArchive = () => new LocalArchive(join(mkdtempSync(join(tmpdir(), 'vigil-archive-')), 'archive'));

class Crash extends Error {}

interface RunOptions {
  max: number;
  /** Records per `handle` call. */
  batch: number;
  /** Flush once at least this many records were handled since the last flush (and at the end). */
  flushEvery: number;
  /** Flush number (1-based) whose commit crashes, after the puts. */
  crashAtCommit?: number;
}

/** Drives a fresh group over `records` the way the runtime does; returns the committed sequences. */
async function run(archive: Archive, records: StreamRecord[], opts: RunOptions): Promise<string[]> {
  const group = new ArchiveGroup(archive, { objectMaxRecords: opts.max, flushEveryMs: 1000 });
  const commits: string[] = [];
  let handled: string | null = null;
  const flush = async () => {
    const sequence = handled!;
    const ctx: FlushContext = {
      checkpoint: { group: 'archive', partition: P, sequence, fence: { owner: 'test', epoch: 1 } },
      async commit(snapshot) {
        if (commits.length + 1 === opts.crashAtCommit) throw new Crash();
        expect(snapshot).toBeNull();
        commits.push(sequence);
      },
    };
    await group.flush(P, ctx);
  };
  await group.open(P, null);
  let sinceFlush = 0;
  for (let i = 0; i < records.length; i += opts.batch) {
    const chunk = records.slice(i, i + opts.batch);
    await group.handle(P, chunk);
    handled = chunk[chunk.length - 1].sequence;
    sinceFlush += chunk.length;
    if (sinceFlush >= opts.flushEvery) {
      await flush();
      sinceFlush = 0;
    }
  }
  if (sinceFlush > 0) await flush();
  await group.close(P);
  return commits;
}

/** Everything in the archive: key → decompressed content. */
async function contents(archive: Archive): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const key of await archive.list('')) out[key] = gunzipSync((await archive.get(key))!).toString('utf8');
  return out;
}

interface Line {
  partition: number;
  sequence: string;
  appendedAt: number;
  residentId: string;
  reading: { deviceId: string; seq: number };
}
const linesOf = (text: string): Line[] => text.trimEnd().split('\n').map((l) => JSON.parse(l) as Line);

function hourPrefix(ts: number): string {
  const iso = new Date(ts).toISOString();
  return `dt=${iso.slice(0, 10)}/hour=${iso.slice(11, 13)}/`;
}

/**
 * Every reading of `records` is archived exactly once, and each object is a run of consecutive
 * records of one hour whose name gives its partition and first sequence.
 */
function expectExactlyOnce(archived: Record<string, string>, records: StreamRecord[]): void {
  const expected = records.flatMap((r) => (JSON.parse(r.data) as { readings: { deviceId: string; seq: number }[] }).readings.map((x) => `${x.deviceId}:${x.seq}`));
  const seen = Object.values(archived).flatMap((text) => linesOf(text).map((l) => `${l.reading.deviceId}:${l.reading.seq}`));
  expect(seen.sort()).toEqual(expected.sort());
  const order = records.map((r) => r.sequence);
  for (const [key, text] of Object.entries(archived)) {
    const lines = linesOf(text);
    expect(key).toBe(`${hourPrefix(lines[0].appendedAt)}part-${P}-${lines[0].sequence}.ndjson.gz`);
    const sequences = [...new Set(lines.map((l) => l.sequence))];
    const start = order.indexOf(sequences[0]);
    expect(sequences).toEqual(order.slice(start, start + sequences.length));
    for (const line of lines) expect(hourPrefix(line.appendedAt)).toBe(hourPrefix(lines[0].appendedAt));
  }
}

describe('archive group', () => {
  const stream = makeStream();

  it('writes gzip NDJSON, one line per reading, under dt=/hour= of the append time, named by partition and first sequence', async () => {
    const archive = freshArchive();
    const commits = await run(archive, stream, { max: 1000, batch: 40, flushEvery: 40 });
    expect(commits).toEqual([seqOf(39)]);
    const archived = await contents(archive);
    expect(Object.keys(archived)).toEqual([`dt=2024-03-10/hour=23/part-2-95.ndjson.gz`, `dt=2024-03-11/hour=00/part-2-${seqOf(20)}.ndjson.gz`]);
    const first = archived['dt=2024-03-10/hour=23/part-2-95.ndjson.gz'];
    const reading = { deviceId: 'band-0', seq: 0, ts: T0 - 4000, receivedAt: T0, hr: 60 };
    expect(first.split('\n')[0]).toBe(JSON.stringify({ partition: 2, sequence: '95', appendedAt: T0, residentId: 'res-0', reading }));
    expect(first.endsWith('}\n')).toBe(true);
    expect(linesOf(first).slice(0, 7).map((l) => l.sequence)).toEqual(['95', '98', '98', '101', '101', '101', '104']);
    expectExactlyOnce(archived, stream);
  });

  it('starts a new object when the hour changes, even within one batch', async () => {
    const archive = freshArchive();
    await run(archive, stream.slice(18, 23), { max: 1000, batch: 5, flushEvery: 5 });
    expect(await archive.list('')).toEqual([`dt=2024-03-10/hour=23/part-2-${seqOf(18)}.ndjson.gz`, `dt=2024-03-11/hour=00/part-2-${seqOf(20)}.ndjson.gz`]);
  });

  it('starts a new object after objectMaxRecords stream records', async () => {
    const archive = freshArchive();
    await run(archive, stream, { max: 6, batch: 40, flushEvery: 40 });
    const firsts = [0, 6, 12, 18, 20, 26, 32, 38].map(seqOf);
    const firstsStored = (await archive.list('')).map((k) => /part-2-(\d+)\./.exec(k)![1]);
    expect(firstsStored.sort(compareSequences)).toEqual(firsts);
    expectExactlyOnce(await contents(archive), stream);
  });

  it('closes objects at each flush and commits only once they are stored', async () => {
    const archive = freshArchive();
    const group = new ArchiveGroup(archive, { objectMaxRecords: 1000, flushEveryMs: 1000 });
    expect(group.flushEveryRecords).toBe(1000);
    await group.open(P, null);
    for (const [from, to] of [[0, 4], [4, 5], [5, 12]]) {
      await group.handle(P, stream.slice(from, to));
      let committed = false;
      const sequence = seqOf(to - 1);
      await group.flush(P, {
        checkpoint: { group: 'archive', partition: P, sequence, fence: { owner: 'test', epoch: 1 } },
        async commit() {
          const stored = Object.values(await contents(archive)).flatMap((t) => linesOf(t).map((l) => l.sequence));
          expect(stored).toContain(sequence);
          committed = true;
        },
      });
      expect(committed).toBe(true);
    }
    expect(await archive.list('')).toEqual([0, 4, 5].map((i) => `dt=2024-03-10/hour=23/part-2-${seqOf(i)}.ndjson.gz`).sort());
  });

  it('keeps a closed object whose put failed and puts the same bytes at the next flush', async () => {
    const archive = freshArchive();
    const puts: { key: string; body: Buffer }[] = [];
    let failNext = true;
    const flaky: Archive = Object.assign(Object.create(archive) as Archive, {
      async put(key: string, body: Buffer) {
        puts.push({ key, body });
        if (failNext) {
          failNext = false;
          throw new Error('archive unavailable');
        }
        await archive.put(key, body);
      },
    });
    const group = new ArchiveGroup(flaky, { objectMaxRecords: 1000, flushEveryMs: 1000 });
    await group.open(P, null);
    const flushAt = (to: number) =>
      group.flush(P, { checkpoint: { group: 'archive', partition: P, sequence: seqOf(to - 1), fence: { owner: 'test', epoch: 1 } }, async commit() {} });
    await group.handle(P, stream.slice(0, 10));
    await expect(flushAt(10)).rejects.toThrow(/unavailable/);
    await group.handle(P, stream.slice(10, 15));
    await flushAt(15);
    expect(puts.map((p) => p.key)).toEqual([0, 0, 10].map((i) => `dt=2024-03-10/hour=23/part-2-${seqOf(i)}.ndjson.gz`));
    expect(puts[1].body.equals(puts[0].body)).toBe(true);
    expectExactlyOnce(await contents(archive), stream.slice(0, 15));
  });

  it('drops unflushed objects on close', async () => {
    const archive = freshArchive();
    const group = new ArchiveGroup(archive, { objectMaxRecords: 2, flushEveryMs: 1000 });
    await group.open(P, null);
    await group.handle(P, stream.slice(0, 7));
    await group.close(P);
    expect(await archive.list('')).toEqual([]);
    await expect(group.handle(P, stream.slice(7, 8))).rejects.toThrow(/not open/);
  });

  it('skips records without readings', async () => {
    const archive = freshArchive();
    const empty: StreamRecord = { partition: P, sequence: seqOf(0), timestamp: T0, data: JSON.stringify({ deviceId: 'band-0', residentId: 'res-0', readings: [] }) };
    await run(archive, [empty, ...stream.slice(1, 3)], { max: 1000, batch: 3, flushEvery: 3 });
    expect(await archive.list('')).toEqual([`dt=2024-03-10/hour=23/part-2-${seqOf(1)}.ndjson.gz`]);
  });

  it('leaves exactly the same objects when any suffix of the stream is replayed, whatever the flush timing or max', async () => {
    const archive = freshArchive();
    await run(archive, stream, { max: 4, batch: 5, flushEvery: 7 });
    const original = await contents(archive);
    expectExactlyOnce(original, stream);
    for (let from = 0; from < stream.length; from++) {
      await run(archive, stream.slice(from), { max: 3 + (from % 4), batch: 1 + (from % 3), flushEvery: 2 + (from % 5) });
      expect(await contents(archive), `replay from record ${from}`).toEqual(original);
    }
  });

  it('resumes after a crash between the puts and the commit without duplicating or losing a reading', async () => {
    const archive = freshArchive();
    const commits = await run(archive, stream, { max: 5, batch: 3, flushEvery: 4, crashAtCommit: 4 }).catch((err: unknown) => {
      expect(err).toBeInstanceOf(Crash);
      return null;
    });
    expect(commits).toBeNull();
    const afterCrash = await contents(archive);
    // Three flushes committed, each after 4 records (batches of 3: at 6, 12, 18 records); the fourth stored 24 records' worth.
    const resumeAt = 18;
    expectExactlyOnce(afterCrash, stream.slice(0, 24));
    await run(archive, stream.slice(resumeAt), { max: 7, batch: 4, flushEvery: 9 });
    const resumed = await contents(archive);
    expectExactlyOnce(resumed, stream);
    for (const [key, text] of Object.entries(afterCrash)) expect(resumed[key], key).toBe(text);
    await run(archive, stream, { max: 2, batch: 7, flushEvery: 3 });
    expect(await contents(archive)).toEqual(resumed);
  });

  it('resumes after a crash between two puts of one flush', async () => {
    const disk = freshArchive();
    let puts = 0;
    const failing: Archive = {
      put: async (key, body) => {
        if (++puts === 2) throw new Crash();
        await disk.put(key, body);
      },
      get: (key) => disk.get(key),
      list: (prefix) => disk.list(prefix),
      delete: (key) => disk.delete(key),
      eraseResident: (id, onProgress) => disk.eraseResident(id, onProgress),
      close: () => disk.close(),
    };
    await expect(run(failing, stream, { max: 6, batch: 40, flushEvery: 40 })).rejects.toBeInstanceOf(Crash);
    expect(await disk.list('')).toEqual([`dt=2024-03-10/hour=23/part-2-95.ndjson.gz`]);
    await run(disk, stream, { max: 4, batch: 2, flushEvery: 5 });
    expectExactlyOnce(await contents(disk), stream);
    const firstObject = linesOf((await contents(disk))['dt=2024-03-10/hour=23/part-2-95.ndjson.gz']);
    expect(new Set(firstObject.map((l) => l.sequence)).size).toBe(6);
  });

  it('follows old objects on a later run that extends past their end, then archives the new records once', async () => {
    const archive = freshArchive();
    await run(archive, stream.slice(0, 17), { max: 5, batch: 4, flushEvery: 6 });
    const old = await contents(archive);
    await run(archive, stream.slice(10), { max: 100, batch: 3, flushEvery: 11 });
    const extended = await contents(archive);
    for (const [key, text] of Object.entries(old)) expect(extended[key], key).toBe(text);
    expectExactlyOnce(extended, stream);
    await run(archive, stream.slice(3), { max: 1, batch: 5, flushEvery: 5 });
    expect(await contents(archive)).toEqual(extended);
  });

  it('stops a new object before an object an earlier run stored further on', async () => {
    const archive = freshArchive();
    // As if the group had once started at LATEST: records 25.. archived, 20..24 not.
    await run(archive, stream.slice(25, 30), { max: 100, batch: 5, flushEvery: 5 });
    const later = await contents(archive);
    await run(archive, stream, { max: 100, batch: 40, flushEvery: 40 });
    const all = await contents(archive);
    expectExactlyOnce(all, stream);
    for (const [key, text] of Object.entries(later)) expect(all[key], key).toBe(text);
    expect(Object.keys(all)).toEqual([0, 20, 25, 30].map((i) => `${hourPrefix(stream[i].timestamp)}part-2-${seqOf(i)}.ndjson.gz`).sort());
  });
});
