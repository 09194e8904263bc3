/**
 * The raw archive on a local directory: each key is a file at that relative path under the root,
 * so the archive can be browsed, copied with rsync, and scanned in place by Hive-style readers.
 *
 * Invariants on disk:
 * - A file at a key's path is always a complete object: `put` writes `.<name>.<random>.tmp` in the
 *   same directory, fsyncs it, renames it over the key (atomic on POSIX) and fsyncs the directory.
 *   A crash leaves the old object or the new one, and at worst a stray temp file.
 * - Keys never start a segment with '.', so temp files never collide with objects and `list`
 *   skips them.
 * - Directories are created on demand (their entries fsync'd into their parents) and never
 *   removed: an empty directory holds no object, and removing it could race a concurrent `put`.
 */
import { randomBytes } from 'node:crypto';
import type { Dirent } from 'node:fs';
import { mkdir, open, readFile, readdir, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { eraseResidentLines } from '../erase.js';
import { assertValidKey, assertValidPrefix, type Archive, type ArchiveErasure, type EraseProgress } from '../types.js';

export class LocalArchive implements Archive {
  private readonly root: string;
  private closed = false;

  constructor(root: string) {
    this.root = resolve(root);
  }

  async put(key: string, body: Buffer): Promise<void> {
    const path = this.pathOf(key);
    const dir = dirname(path);
    await makeDirDurably(dir);
    const tmp = join(dir, `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
    try {
      await writeDurably(tmp, body);
      await rename(tmp, path);
    } catch (err) {
      // Best effort: a leftover temp file is invisible to readers, the original error matters.
      await unlink(tmp).catch(() => undefined);
      throw err;
    }
    await syncDir(dir);
  }

  async get(key: string): Promise<Buffer | null> {
    try {
      return await readFile(this.pathOf(key));
    } catch (err) {
      if (isMissing(err)) return null;
      throw err;
    }
  }

  async list(prefix: string): Promise<string[]> {
    this.assertOpen();
    assertValidPrefix(prefix);
    // Only the last, partial segment of the prefix needs filtering; the rest is a directory path.
    const cut = prefix.lastIndexOf('/') + 1;
    const keys: string[] = [];
    await walk(join(this.root, prefix.slice(0, cut)), prefix.slice(0, cut), prefix.slice(cut), keys);
    return keys.sort();
  }

  async delete(key: string): Promise<void> {
    const path = this.pathOf(key);
    try {
      await unlink(path);
    } catch (err) {
      if (isMissing(err)) return;
      throw err;
    }
    await syncDir(dirname(path));
  }

  /** Rewrites through `put` (atomic, as above) and `delete`: see ../erase.ts. */
  eraseResident(residentId: string, onProgress?: EraseProgress): Promise<ArchiveErasure> {
    return eraseResidentLines(this, residentId, onProgress);
  }

  async close(): Promise<void> {
    this.closed = true;
  }

  private pathOf(key: string): string {
    this.assertOpen();
    assertValidKey(key);
    return join(this.root, key);
  }

  private assertOpen(): void {
    if (this.closed) throw new Error('archive is closed');
  }
}

async function walk(dir: string, keyBase: string, namePrefix: string, out: string[]): Promise<void> {
  let entries: Dirent[];
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch (err) {
    if (isMissing(err)) return;
    throw err;
  }
  for (const entry of entries) {
    if (entry.name.startsWith('.') || !entry.name.startsWith(namePrefix)) continue;
    const key = keyBase + entry.name;
    if (entry.isDirectory()) await walk(join(dir, entry.name), `${key}/`, '', out);
    else if (entry.isFile()) out.push(key);
  }
}

async function writeDurably(path: string, body: Buffer): Promise<void> {
  const file = await open(path, 'wx');
  try {
    await file.writeFile(body);
    await file.sync();
  } finally {
    await file.close();
  }
}

/** A new directory's entry lives in its parent: each new level's parent is fsync'd so the path survives a crash. */
async function makeDirDurably(dir: string): Promise<void> {
  const firstCreated = await mkdir(dir, { recursive: true });
  if (firstCreated === undefined) return;
  for (let level = dir; ; level = dirname(level)) {
    await syncDir(dirname(level));
    if (level === firstCreated || level === dirname(level)) return;
  }
}

async function syncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** The key holds no object: nothing there, a file where a directory was expected, or a directory. */
function isMissing(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException).code;
  return code === 'ENOENT' || code === 'ENOTDIR' || code === 'EISDIR';
}
