/**
 * The archive conformance suite: the guarantees of `Archive` (see ../types.ts), written against
 * the interface only. Every backend's test file calls `archiveConformance` with a factory.
 */
import { gunzipSync, gzipSync } from 'node:zlib';
import { afterEach, describe, expect, it } from 'vitest';
import { InvalidArchiveKeyError, type Archive } from '../types.js';

/** One archive line as the archive group writes it (src/processor/groups/archive-group.ts). */
export function archiveLine(residentId: string, sequence: number, readingSeq: number, extra: Record<string, unknown> = {}): string {
  const appendedAt = Date.UTC(2024, 4, 1, 7) + sequence * 1000;
  const reading = { deviceId: `band-${residentId}`, seq: readingSeq, ts: appendedAt - 2000, receivedAt: appendedAt, hr: 60 + (readingSeq % 40), ...extra };
  return JSON.stringify({ partition: 0, sequence: String(sequence), appendedAt, residentId, reading });
}

/** An archive object's body: gzip'd NDJSON, one line each, newline-terminated. */
export const archiveObject = (lines: string[]) => gzipSync(`${lines.join('\n')}\n`);

/** The lines of an archive object's body. */
export const linesOfObject = (body: Buffer) => gunzipSync(body).toString('utf8').split('\n').slice(0, -1);

/** `open` returns an archive on fresh, empty storage. */
export function archiveConformance(name: string, open: () => Promise<Archive>): void {
  describe(`archive conformance: ${name}`, () => {
    let archive: Archive | null = null;
    afterEach(async () => {
      await archive?.close();
      archive = null;
    });
    const fresh = async () => (archive = await open());

    it('returns what was put, byte for byte, and null for a missing key', async () => {
      const a = await fresh();
      const binary = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
      await a.put('dt=2024-01-01/hour=00/part-0-1.ndjson.gz', binary);
      await a.put('empty', Buffer.alloc(0));
      expect(await a.get('dt=2024-01-01/hour=00/part-0-1.ndjson.gz')).toEqual(binary);
      expect(await a.get('empty')).toEqual(Buffer.alloc(0));
      expect(await a.get('dt=2024-01-01/hour=00/part-0-2.ndjson.gz')).toBeNull();
      expect(await a.get('dt=2024-01-01')).toBeNull();
      expect(await a.get('empty/child')).toBeNull();
    });

    it('replaces the whole object on overwrite', async () => {
      const a = await fresh();
      await a.put('k', Buffer.from('a much longer first version'));
      await a.put('k', Buffer.from('short'));
      expect((await a.get('k'))?.toString()).toBe('short');
      expect(await a.list('')).toEqual(['k']);
    });

    it('lists keys by string prefix, sorted', async () => {
      const a = await fresh();
      const keys = ['b/c/d', 'a/b', 'a/bc/x', 'a/b-c', 'a/c', 'z', 'a/bb/y/z'];
      for (const key of keys) await a.put(key, Buffer.from(key));
      expect(await a.list('')).toEqual([...keys].sort());
      expect(await a.list('a/b')).toEqual(['a/b', 'a/b-c', 'a/bb/y/z', 'a/bc/x']);
      expect(await a.list('a/bb/')).toEqual(['a/bb/y/z']);
      expect(await a.list('a/')).toEqual(['a/b', 'a/b-c', 'a/bb/y/z', 'a/bc/x', 'a/c']);
      expect(await a.list('nothing/')).toEqual([]);
      expect(await a.list('a/q')).toEqual([]);
    });

    it('deletes, and deleting a missing key succeeds', async () => {
      const a = await fresh();
      await a.put('x/1', Buffer.from('1'));
      await a.put('x/2', Buffer.from('2'));
      await a.delete('x/1');
      await a.delete('x/1');
      await a.delete('never/was');
      expect(await a.get('x/1')).toBeNull();
      expect(await a.list('x/')).toEqual(['x/2']);
    });

    it('never shows a torn object to a reader during overwrites', async () => {
      const a = await fresh();
      const versions = [Buffer.alloc(512 << 10, 'a'), Buffer.alloc(768 << 10, 'b'), Buffer.alloc(256 << 10, 'c')];
      await a.put('big', versions[0]);
      let writing = true;
      const writer = (async () => {
        for (let i = 1; i <= 12; i++) await a.put('big', versions[i % 3]);
        writing = false;
      })();
      let reads = 0;
      while (writing) {
        const got = await a.get('big');
        expect(versions.some((v) => got !== null && v.equals(got))).toBe(true);
        reads++;
      }
      await writer;
      expect(reads).toBeGreaterThan(0);
      expect(await a.get('big')).toEqual(versions[0]);
    });

    it('keeps exactly one whole version when puts to one key race', async () => {
      const a = await fresh();
      const versions = Array.from({ length: 8 }, (_, i) => Buffer.alloc(256 << 10, String(i)));
      await Promise.all(versions.map((v) => a.put('raced', v)));
      const got = await a.get('raced');
      expect(versions.some((v) => got !== null && v.equals(got))).toBe(true);
      expect(await a.list('')).toEqual(['raced']);
    });

    it('rejects keys that are not relative paths of plain names', async () => {
      const a = await fresh();
      const bad = ['', '/abs', '../up', 'a/../b', 'a/./b', 'a//b', 'a/', '.hidden', 'a/.tmp', 'a\\b', 'nul\0', 'sp ace', 'x'.repeat(201)];
      for (const key of bad) {
        await expect(a.put(key, Buffer.from('x')), key).rejects.toBeInstanceOf(InvalidArchiveKeyError);
        await expect(a.get(key), key).rejects.toBeInstanceOf(InvalidArchiveKeyError);
        await expect(a.delete(key), key).rejects.toBeInstanceOf(InvalidArchiveKeyError);
      }
      for (const prefix of ['/', '../', 'a/../', '.', 'a//']) {
        await expect(a.list(prefix), prefix).rejects.toBeInstanceOf(InvalidArchiveKeyError);
      }
      expect(await a.list('')).toEqual([]);
    });

    describe('eraseResident', () => {
      const X = 'res-x';
      /** key → lines: res-x mixed with others, alone, absent, and lookalikes that are not res-x's. */
      function layout(): Map<string, string[]> {
        const objects = new Map<string, string[]>();
        let seq = 100;
        let readingSeq = 0;
        const line = (residentId: string, extra?: Record<string, unknown>) => archiveLine(residentId, seq++, readingSeq++, extra);
        for (let hour = 0; hour < 12; hour++) {
          const dir = `dt=2024-05-01/hour=${String(hour).padStart(2, '0')}/`;
          // Mixed, with res-x first, in the middle and last (a stream record's readings share a sequence).
          objects.set(`${dir}part-0-${seq}.ndjson.gz`, [line(X), line('res-y'), line(X), line('res-x2'), line('res-y'), line(X)]);
          if (hour % 3 === 0) objects.set(`${dir}part-1-${seq}.ndjson.gz`, [line(X), line(X), line(X)]);
          objects.set(`${dir}part-2-${seq}.ndjson.gz`, [line('res-y'), line('res-x2')]);
        }
        // A line of another resident that names res-x as a whole JSON string elsewhere is theirs.
        objects.set(`dt=2024-05-02/hour=00/part-0-${seq}.ndjson.gz`, [line('res-y', { flags: [X] }), line(X)]);
        // A resident id that JSON must escape.
        objects.set(`dt=2024-05-02/hour=01/part-0-${seq}.ndjson.gz`, [line('res "q"\\x'), line(X)]);
        return objects;
      }

      async function store(a: Archive, objects: Map<string, string[]>): Promise<Map<string, Buffer>> {
        const bodies = new Map<string, Buffer>();
        for (const [key, lines] of objects) {
          const body = archiveObject(lines);
          bodies.set(key, body);
          await a.put(key, body);
        }
        return bodies;
      }

      const residentOf = (line: string) => (JSON.parse(line) as { residentId: string }).residentId;

      /** Lists and reads every archive object back: none holds a line of `residentId`. */
      async function expectNoLineOf(a: Archive, residentId: string): Promise<void> {
        for (const key of (await a.list('')).filter((k) => k.endsWith('.ndjson.gz'))) {
          const body = await a.get(key);
          expect(body, key).not.toBeNull();
          expect(gunzipSync(body!).toString('utf8'), key).not.toContain(`"residentId":${JSON.stringify(residentId)}`);
          for (const line of linesOfObject(body!)) expect(residentOf(line), key).not.toBe(residentId);
        }
      }

      it('removes every line of the resident, keeps every other line as it was, deletes emptied objects', async () => {
        const a = await fresh();
        const objects = layout();
        const bodies = await store(a, objects);
        // Not an archive group object: never read as one, whatever it says.
        await a.put('notes/erasure.txt', Buffer.from(`"residentId":"${X}"`));
        const expectedLines = [...objects.values()].flat().filter((l) => residentOf(l) === X).length;
        const touched = [...objects].filter(([, lines]) => lines.some((l) => residentOf(l) === X));
        const emptied = touched.filter(([, lines]) => lines.every((l) => residentOf(l) === X)).map(([key]) => key);
        expect(emptied).toHaveLength(4);

        const progress: [number, number][] = [];
        const erased = await a.eraseResident(X, (done, total) => progress.push([done, total]));
        expect(erased).toEqual({ objects: touched.length, lines: expectedLines });

        await expectNoLineOf(a, X);
        expect(await a.list('')).toEqual([...[...objects.keys()].filter((k) => !emptied.includes(k)), 'notes/erasure.txt'].sort());
        for (const key of emptied) expect(await a.get(key), key).toBeNull();
        for (const [key, lines] of objects) {
          if (emptied.includes(key)) continue;
          const body = (await a.get(key))!;
          // Untouched objects are not even rewritten; the others keep the other lines byte for byte, in order.
          if (!touched.some(([k]) => k === key)) expect(body.equals(bodies.get(key)!), key).toBe(true);
          expect(linesOfObject(body), key).toEqual(lines.filter((l) => residentOf(l) !== X));
        }
        expect((await a.get('notes/erasure.txt'))?.toString()).toBe(`"residentId":"${X}"`);

        // Progress: (0, total) once listed, then one call per archive object, ending at (total, total).
        const total = objects.size;
        expect(progress[0]).toEqual([0, total]);
        expect(progress).toHaveLength(total + 1);
        expect(progress.map(([done]) => done)).toEqual(Array.from({ length: total + 1 }, (_, i) => i));
        expect(progress.every(([, t]) => t === total)).toBe(true);
      });

      it('erases again to zeros, changing nothing, and erases a resident with a JSON-escaped id', async () => {
        const a = await fresh();
        await store(a, layout());
        await a.eraseResident(X);
        const after = new Map<string, Buffer | null>();
        for (const key of await a.list('')) after.set(key, await a.get(key));
        expect(await a.eraseResident(X)).toEqual({ objects: 0, lines: 0 });
        expect(await a.eraseResident('nobody')).toEqual({ objects: 0, lines: 0 });
        expect(await a.list('')).toEqual([...after.keys()]);
        for (const [key, body] of after) expect((await a.get(key))?.equals(body!), key).toBe(true);

        const odd = 'res "q"\\x';
        expect(await a.eraseResident(odd)).toEqual({ objects: 1, lines: 1 });
        await expectNoLineOf(a, odd);
        expect(await a.list('dt=2024-05-02/hour=01/')).toEqual([]);
      });

      it('works on an empty archive, and rejects an empty id', async () => {
        const a = await fresh();
        const progress: [number, number][] = [];
        expect(await a.eraseResident(X, (done, total) => progress.push([done, total]))).toEqual({ objects: 0, lines: 0 });
        expect(progress).toEqual([[0, 0]]);
        await expect(a.eraseResident('')).rejects.toThrow(TypeError);
      });

      it('touches only the objects listed when it started: objects put meanwhile stay whole', async () => {
        const a = await fresh();
        const objects = layout();
        await store(a, objects);
        const late = archiveObject([archiveLine(X, 9000, 9000), archiveLine('res-y', 9001, 9001)]);
        let put: Promise<void> | null = null;
        const erased = await a.eraseResident(X, (done) => {
          // As an archive group would, while the erasure works through the listed objects.
          if (done === 0) put = a.put('dt=2024-05-03/hour=00/part-0-9000.ndjson.gz', late);
        });
        await put;
        expect(erased.objects).toBe([...objects.values()].filter((lines) => lines.some((l) => residentOf(l) === X)).length);
        expect((await a.get('dt=2024-05-03/hour=00/part-0-9000.ndjson.gz'))?.equals(late)).toBe(true);
        // Erasing again picks it up.
        expect(await a.eraseResident(X)).toEqual({ objects: 1, lines: 1 });
        await expectNoLineOf(a, X);
      });

      it('rejects, naming the object, when an archive object cannot be read, and completes once it is gone', async () => {
        const a = await fresh();
        await store(a, layout());
        await a.put('dt=2024-05-01/hour=05/part-9-1.ndjson.gz', Buffer.from('not gzip'));
        await expect(a.eraseResident(X)).rejects.toThrow(/part-9-1\.ndjson\.gz/);
        await a.put('dt=2024-05-01/hour=05/part-9-1.ndjson.gz', archiveObject([archiveLine(X, 1, 1), 'not JSON "res-x"']));
        await expect(a.eraseResident(X)).rejects.toThrow(/part-9-1\.ndjson\.gz/);
        await a.delete('dt=2024-05-01/hour=05/part-9-1.ndjson.gz');
        const erased = await a.eraseResident(X);
        expect(erased.lines).toBeGreaterThanOrEqual(0);
        await expectNoLineOf(a, X);
      });
    });

    it('rejects operations after close', async () => {
      const a = await fresh();
      await a.close();
      await expect(a.get('k')).rejects.toThrow();
      await expect(a.put('k', Buffer.from('x'))).rejects.toThrow();
      await expect(a.list('')).rejects.toThrow();
      await expect(a.eraseResident('res-x')).rejects.toThrow();
    });
  });
}
