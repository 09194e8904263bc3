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
  close(): Promise<void>;
}

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
