/**
 * Erasing a resident from the raw archive (`Archive.eraseResident`), written once against the
 * archive's own operations so that every backend erases the same way and keeps its own atomic
 * `put` (temp file + rename locally, one PUT or multipart upload on S3).
 *
 * The objects are the archive group's (src/processor/groups/archive-group.ts):
 * `dt=YYYY-MM-DD/hour=HH/part-<partition>-<firstSeq>.ndjson.gz`, gzip'd NDJSON, one line per
 * reading: {"partition","sequence","appendedAt","residentId","reading"}. Every `.ndjson.gz`
 * object is examined, whatever its folder; other objects are not archive records and are left
 * alone. A line is the resident's when its top-level `residentId` is the id.
 *
 * For each object listed when the erasure starts:
 * - no line of the resident: untouched (not even rewritten);
 * - some lines of the resident: rewritten under the same key with every other line kept byte
 *   for byte and in order, by one `put` (readers see the old object or the new one whole);
 * - only lines of the resident: deleted.
 *
 * With an archive group writing at the same time:
 * - Objects the group puts after the listing are not touched: they are new keys (their lines
 *   come from the stream, so the resident's devices should be unassigned first).
 * - The group rewrites an existing object only on replay, whole and identically (the stored
 *   lines before the replayed record, then the stream's records up to the object's last
 *   sequence). Of the erasure's put and such a rewrite, the last one wins, whole: if the
 *   erasure's does, the object lacks the resident's lines and nothing else; if the group's does
 *   (it read the object before the erasure rewrote it, or replayed the resident's records from
 *   the stream), the resident's lines are back. A deleted object is likewise recreated by a
 *   replay of its records; the group copes with an object deleted under it (it treats it as
 *   absent). Either way no other resident's line is lost, and running the erasure again once
 *   the replay is over (or the stream's retention has passed the resident's records) finishes
 *   the job: it is idempotent.
 * - After an erasure an object's first line may have a later sequence than its name says, and
 *   its last line an earlier one than before; a replay handles both (it matches records by the
 *   sequences the object's lines show).
 */
import { promisify } from 'node:util';
import { gunzip, gzip } from 'node:zlib';
import type { Archive, ArchiveErasure, EraseProgress } from './types.js';

const gzipAsync = promisify(gzip);
const gunzipAsync = promisify(gunzip);

/** Objects read and rewritten at once: enough to hide an object store's latency. */
const CONCURRENCY = 8;

/** The archive group's objects, wherever they sit. */
const ARCHIVE_OBJECT = /\.ndjson\.gz$/;

export async function eraseResidentLines(
  archive: Pick<Archive, 'list' | 'get' | 'put' | 'delete'>,
  residentId: string,
  onProgress?: EraseProgress,
): Promise<ArchiveErasure> {
  if (!(typeof residentId === 'string' && residentId !== '')) {
    throw new TypeError(`residentId must be a non-empty string, got ${JSON.stringify(residentId)}`);
  }
  const keys = (await archive.list('')).filter((key) => ARCHIVE_OBJECT.test(key));
  const total = keys.length;
  const erased: ArchiveErasure = { objects: 0, lines: 0 };
  let done = 0;
  let next = 0;
  const failures: unknown[] = [];
  onProgress?.(0, total);
  const worker = async () => {
    while (failures.length === 0 && next < keys.length) {
      const key = keys[next++];
      try {
        const lines = await eraseFromObject(archive, key, residentId);
        if (lines > 0) {
          erased.objects++;
          erased.lines += lines;
        }
        done++;
        onProgress?.(done, total);
      } catch (err) {
        failures.push(err);
        return;
      }
    }
  };
  // Every worker has stopped when this returns, even on failure: no put lands after the call.
  await Promise.all(Array.from({ length: Math.min(CONCURRENCY, keys.length) }, worker));
  if (failures.length > 0) throw failures[0];
  return erased;
}

/** Removes the resident's lines from one object; returns how many. */
async function eraseFromObject(archive: Pick<Archive, 'get' | 'put' | 'delete'>, key: string, residentId: string): Promise<number> {
  const body = await archive.get(key);
  // Deleted since the listing (a retention rule, a concurrent erasure): nothing left to erase.
  if (body === null) return 0;
  let text: string;
  try {
    text = (await gunzipAsync(body)).toString('utf8');
  } catch (err) {
    throw new Error(`archive object ${key} is not gzip: cannot tell whether it holds resident ${residentId}`, { cause: err });
  }
  // The id as JSON spells it in a line; an object without it holds none of the resident's lines.
  const needle = JSON.stringify(residentId);
  if (!text.includes(needle)) return 0;
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  const kept = lines.filter((line) => !(line.includes(needle) && lineResident(key, line) === residentId));
  const removed = lines.length - kept.length;
  if (removed === 0) return 0;
  if (kept.length === 0) await archive.delete(key);
  else await archive.put(key, await gzipAsync(`${kept.join('\n')}\n`));
  return removed;
}

function lineResident(key: string, line: string): unknown {
  try {
    return (JSON.parse(line) as { residentId?: unknown } | null)?.residentId;
  } catch (err) {
    throw new Error(`archive object ${key} has a line that is not JSON: cannot tell whose it is`, { cause: err });
  }
}
