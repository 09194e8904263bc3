import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { LocalArchive } from './local-archive.js';
import { archiveConformance } from '../testing/conformance.js';

const tempRoot = () => join(mkdtempSync(join(tmpdir(), 'vigil-archive-')), 'archive');

archiveConformance('local directory', async () => new LocalArchive(tempRoot()));

describe('local archive', () => {
  it('stores each key as a plain file at its relative path, with no temp files left', async () => {
    const root = tempRoot();
    const archive = new LocalArchive(root);
    await archive.put('dt=2024-05-01/hour=07/part-3-42.ndjson.gz', Buffer.from('body'));
    expect(readFileSync(join(root, 'dt=2024-05-01', 'hour=07', 'part-3-42.ndjson.gz'), 'utf8')).toBe('body');
    expect(readdirSync(join(root, 'dt=2024-05-01', 'hour=07'))).toEqual(['part-3-42.ndjson.gz']);
  });

  it('sees the objects of an earlier instance and ignores temp files a crash left behind', async () => {
    const root = tempRoot();
    await new LocalArchive(root).put('a/b', Buffer.from('kept'));
    writeFileSync(join(root, 'a', '.b.0123456789ab.tmp'), 'torn');
    mkdirSync(join(root, 'a', 'empty-dir'));
    const reopened = new LocalArchive(root);
    expect(await reopened.list('')).toEqual(['a/b']);
    expect((await reopened.get('a/b'))?.toString()).toBe('kept');
  });

  it('rejects a key that is also a directory of another key, leaving both sides intact', async () => {
    const root = tempRoot();
    const archive = new LocalArchive(root);
    await archive.put('a/b', Buffer.from('child'));
    await expect(archive.put('a', Buffer.from('parent'))).rejects.toThrow();
    await expect(archive.put('a/b/c', Buffer.from('grandchild'))).rejects.toThrow();
    expect(await archive.list('')).toEqual(['a/b']);
    expect(readdirSync(join(root, 'a'))).toEqual(['b']);
  });

  it('lists nothing before the root exists', async () => {
    const root = tempRoot();
    expect(await new LocalArchive(root).list('')).toEqual([]);
    expect(existsSync(root)).toBe(false);
  });
});
