import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { ArchiveGroup } from '../../processor/groups/archive-group.js';
import type { FlushContext } from '../../processor/types.js';
import type { StreamRecord } from '../../stream/types.js';
import { LocalArchive } from './local-archive.js';
import { archiveConformance, archiveLine, archiveObject, linesOfObject } from '../testing/conformance.js';

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

/** Every file under `dir`, hidden ones (temp files) included, with its bytes gunzip'd when they are gzip. */
function everyFile(dir: string, out: Map<string, string> = new Map()): Map<string, string> {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) everyFile(path, out);
    else {
      const bytes = readFileSync(path);
      out.set(path, (bytes[0] === 0x1f && bytes[1] === 0x8b ? gunzipSync(bytes) : bytes).toString('utf8'));
    }
  }
  return out;
}

describe('local archive: eraseResident', () => {
  it('leaves no file on disk that holds the resident, temp files included', async () => {
    const root = tempRoot();
    const archive = new LocalArchive(root);
    let seq = 1;
    const line = (residentId: string) => archiveLine(residentId, seq, seq++);
    for (let hour = 0; hour < 24; hour++) {
      const dir = `dt=2024-05-01/hour=${String(hour).padStart(2, '0')}/`;
      await archive.put(`${dir}part-0-${seq}.ndjson.gz`, archiveObject([line('res-x'), line('res-y'), line('res-x')]));
      await archive.put(`${dir}part-1-${seq}.ndjson.gz`, archiveObject([line('res-x')]));
      await archive.put(`${dir}part-2-${seq}.ndjson.gz`, archiveObject([line('res-y')]));
    }
    expect([...everyFile(root).values()].filter((text) => text.includes('res-x'))).toHaveLength(48);
    expect(await archive.eraseResident('res-x')).toEqual({ objects: 48, lines: 72 });
    const files = everyFile(root);
    expect(files.size).toBe(48);
    for (const [path, text] of files) {
      expect(path).not.toMatch(/\/\./);
      expect(text, path).not.toContain('res-x');
      expect(text, path).toContain('"residentId":"res-y"');
    }
  });

  it('keeps the archive group exact: a replay after an erasure duplicates nothing and archives what it replays', async () => {
    // Records of three residents in turn, 9 s apart across an hour boundary; 1 to 3 readings each.
    const T0 = Date.UTC(2024, 2, 10, 23, 57, 0);
    const P = 2;
    let readingSeq = 0;
    const stream: StreamRecord[] = Array.from({ length: 40 }, (_, i) => {
      const timestamp = T0 + i * 9000;
      const readings = Array.from({ length: 1 + (i % 3) }, () => ({ deviceId: `band-${i % 3}`, seq: readingSeq++, ts: timestamp - 4000, receivedAt: timestamp }));
      return { partition: P, sequence: String(95 + i * 3), timestamp, data: JSON.stringify({ deviceId: `band-${i % 3}`, residentId: `res-${i % 3}`, readings }) };
    });
    const readingsOf = (records: StreamRecord[], keep: (residentId: string) => boolean) =>
      records.flatMap((r) => {
        const batch = JSON.parse(r.data) as { residentId: string; readings: { deviceId: string; seq: number }[] };
        return keep(batch.residentId) ? batch.readings.map((x) => `${x.deviceId}:${x.seq}`) : [];
      });
    const run = async (archive: LocalArchive, records: StreamRecord[], max: number) => {
      const group = new ArchiveGroup(archive, { objectMaxRecords: max, flushEveryMs: 1000 });
      await group.open(P, null);
      for (let i = 0; i < records.length; i += 4) {
        const chunk = records.slice(i, i + 4);
        await group.handle(P, chunk);
        const ctx: FlushContext = {
          checkpoint: { group: 'archive', partition: P, sequence: chunk[chunk.length - 1].sequence, fence: { owner: 'test', epoch: 1 } },
          commit: async () => undefined,
        };
        await group.flush(P, ctx);
      }
      await group.close(P);
    };
    const archived = async (archive: LocalArchive) => {
      const out: { residentId: string; id: string }[] = [];
      for (const key of await archive.list('')) {
        for (const l of linesOfObject((await archive.get(key))!)) {
          const { residentId, reading } = JSON.parse(l) as { residentId: string; reading: { deviceId: string; seq: number } };
          out.push({ residentId, id: `${reading.deviceId}:${reading.seq}` });
        }
      }
      return out;
    };

    for (const from of [0, 1, 3, 10, 17, 19, 20, 21, 33]) {
      const archive = new LocalArchive(tempRoot());
      // Objects of one record (a third of them only res-0's, deleted) or of five.
      await run(archive, stream, from % 2 === 0 ? 5 : 1);
      const erased = await archive.eraseResident('res-0');
      expect(erased.lines).toBe(readingsOf(stream, (r) => r === 'res-0').length);
      const others = readingsOf(stream, (r) => r !== 'res-0');
      expect((await archived(archive)).map((l) => l.id).sort()).toEqual([...others].sort());

      // A replay from record `from` (a crash, a rebalance) archives its records again, the erased resident's too.
      await run(archive, stream.slice(from), 1 + (from % 6));
      const after = (await archived(archive)).map((l) => l.id);
      expect(new Set(after).size, `replay from ${from}: no duplicate`).toBe(after.length);
      const expected = new Set([...others, ...readingsOf(stream.slice(from), (r) => r === 'res-0')]);
      expect([...after].sort(), `replay from ${from}`).toEqual([...expected].sort());

      // And erasing again removes what the replay brought back.
      await archive.eraseResident('res-0');
      expect((await archived(archive)).map((l) => l.id).sort()).toEqual([...others].sort());
    }
  });
});
