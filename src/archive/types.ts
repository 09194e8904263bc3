/**
 * The raw archive (DESIGN §1, §2): a flat key → bytes object store, with the semantics of S3
 * so that the local directory backend and an S3 backend are interchangeable.
 *
 * Lifecycle: construct → `put`/`get`/`list`/`delete`… (concurrently, from any caller) → `close()`.
 *
 * Guarantees every backend keeps (the conformance suite in testing/ checks them):
 * - `put` is atomic and durable: a concurrent or later `get` sees the previous object or the new
 *   one whole, never a torn or partial body, through any crash; once `put` resolves the object
 *   survives a crash. Overwriting a key replaces the whole object (last `put` wins).
 * - `get` of a key that holds no object resolves to null.
 * - `list(prefix)` returns every key that starts with `prefix` as a plain string (not a directory:
 *   `a/b` matches `a/b/c` and `a/bc`), sorted in ascending byte order, as S3 ListObjectsV2 does.
 *   Objects put before the call are listed; a put concurrent with it may or may not be.
 * - `delete` of a missing key succeeds; once it resolves the object is gone durably.
 * - `eraseResident` changes objects only through `put` and `delete`, so it keeps their guarantees.
 * - Operations after `close` reject.
 *
 * Keys are relative paths: segments separated by `/`, each 1–200 characters of `[A-Za-z0-9._=+-]`
 * not starting with `.` (so no `.`/`..` segments, no hidden names a backend could use for
 * temporary files, nothing a file system or S3 would treat specially), at most 1024 characters
 * in all. A key must not also be a "directory" of another key (`a` and `a/b` cannot both hold
 * objects), because a local file system cannot hold both. Invalid keys reject with
 * `InvalidArchiveKeyError` before anything is touched.
 */
export interface Archive {
  put(key: string, body: Buffer): Promise<void>;
  get(key: string): Promise<Buffer | null>;
  /** `prefix` is '' (everything) or a valid key, optionally followed by '/'. */
  list(prefix: string): Promise<string[]>;
  delete(key: string): Promise<void>;
  /**
   * Right to erasure: removes every line of the resident from the archive group's objects
   * (`….ndjson.gz`, see src/processor/groups/archive-group.ts). Each object that exists when
   * the call lists the archive and holds a line whose `residentId` is the id is rewritten under
   * the same key without those lines (every other line kept as it was, in order), by one atomic
   * `put`; an object left with no line is deleted. Objects without such a line are not
   * rewritten. Returns the objects changed (rewritten or deleted) and the lines removed; a second
   * call returns zeros. Rejects, after the objects in flight are done, when an object cannot be
   * read as gzip'd NDJSON (it could hold the resident): the objects already changed stay so, and
   * the call can be repeated.
   *
   * Concurrent archive group: objects it puts after the listing are not touched; a replay's
   * rewrite of an object replaces it whole, so of the two puts the later wins, and a replay may
   * bring the resident's lines back from the object it read or from the stream. Nothing of other
   * residents is ever lost; erase again once replays are over and the stream's retention has
   * passed the resident's records (details in ./erase.ts). Unassign the resident's devices first.
   *
   * Erasure removes the current objects only: an S3 bucket with versioning keeps the previous
   * versions as noncurrent (expire them with a lifecycle rule), and backups keep their copies.
   *
   * `onProgress(done, total)` is called with (0, total) once the objects to examine are listed,
   * then after each one is done.
   */
  eraseResident(residentId: string, onProgress?: EraseProgress): Promise<ArchiveErasure>;
  close(): Promise<void>;
}

/** What `Archive.eraseResident` changed. */
export interface ArchiveErasure {
  /** Objects rewritten or deleted. */
  objects: number;
  /** Lines removed from them. */
  lines: number;
}

/** Objects examined so far, out of those listed. */
export type EraseProgress = (done: number, total: number) => void;

export class InvalidArchiveKeyError extends Error {
  constructor(key: string) {
    super(`invalid archive key: ${JSON.stringify(key)}`);
    this.name = 'InvalidArchiveKeyError';
  }
}

const MAX_KEY_LENGTH = 1024;
const SEGMENT = /^[A-Za-z0-9_=+-][A-Za-z0-9._=+-]{0,199}$/;

function isValidKey(key: string): boolean {
  return key.length > 0 && key.length <= MAX_KEY_LENGTH && key.split('/').every((segment) => SEGMENT.test(segment));
}

export function assertValidKey(key: string): void {
  if (!isValidKey(key)) throw new InvalidArchiveKeyError(key);
}

export function assertValidPrefix(prefix: string): void {
  const body = prefix.endsWith('/') ? prefix.slice(0, -1) : prefix;
  if (prefix !== '' && !isValidKey(body)) throw new InvalidArchiveKeyError(prefix);
}
