/**
 * Text compressed as it arrives: a gzip member built from many writes, held as its compressed
 * chunks. The archive group keeps up to an object's worth of readings per partition (2,000
 * records, ~13 s at 1,250 readings/s) until the flush puts it; held as text, that is ~45 MB of
 * strings that live long enough to reach V8's old generation and die there, which made the
 * group's heap reserve swing by a hundred MB (docs/reliability.md, the soak). Compressed as it
 * comes, it is ~10× smaller and outside the heap.
 *
 * zlib's output does not depend on how the input was cut into writes, so the bytes are those of
 * `gzip(allText)`: a replay that rewrites an object writes it byte for byte again.
 */
import { createGzip, type Gzip } from 'node:zlib';

export class GzipText {
  private readonly gzip: Gzip = createGzip();
  private readonly chunks: Buffer[] = [];
  private error: Error | null = null;
  private body: Promise<Buffer> | null = null;

  constructor() {
    this.gzip.on('data', (chunk: Buffer) => this.chunks.push(chunk));
    // Kept for finish(): an 'error' without a listener would crash the thread.
    this.gzip.on('error', (err) => (this.error ??= err));
  }

  /** Appends each line and a newline. One write per call: each write is a job for zlib's thread. */
  writeLines(lines: string[]): void {
    if (this.body) throw new Error('GzipText: write after finish');
    if (lines.length > 0) this.gzip.write(`${lines.join('\n')}\n`);
  }

  /** The whole member; the same promise on every call, so a failed put can be retried with it. */
  finish(): Promise<Buffer> {
    this.body ??= this.error
      ? Promise.reject(this.error)
      : new Promise<Buffer>((resolve, reject) => {
          this.gzip.once('end', () => resolve(Buffer.concat(this.chunks.splice(0))));
          this.gzip.once('error', reject);
          this.gzip.end();
        });
    return this.body;
  }

  /** Frees zlib's native state of a member that will not be finished. */
  discard(): void {
    this.gzip.destroy();
  }
}
