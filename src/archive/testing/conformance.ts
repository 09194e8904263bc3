/**
 * The archive conformance suite: the guarantees of `Archive` (see ../types.ts), written against
 * the interface only. Every backend's test file calls `archiveConformance` with a factory.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { InvalidArchiveKeyError, type Archive } from '../types.js';

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

    it('rejects operations after close', async () => {
      const a = await fresh();
      await a.close();
      await expect(a.get('k')).rejects.toThrow();
      await expect(a.put('k', Buffer.from('x'))).rejects.toThrow();
      await expect(a.list('')).rejects.toThrow();
    });
  });
}
