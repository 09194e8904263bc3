/**
 * Read-only views of a running Vigil's data dir (embedded backends), from the benchmark's
 * process: the stream through Vigil's own compiled `EmbeddedStream` (read-only connection; it
 * starts no writer unless something appends), and the consumer groups' checkpoints in
 * `store.db` (`checkpoints (grp, part, sequence, snapshot, updated_at)` and their per-device
 * state `checkpoint_state (grp, part, key, value)`, src/store/sqlite/sqlite-store.ts), read
 * with better-sqlite3. SQLite's WAL lets these readers run beside Vigil's writers.
 */
import { join } from 'node:path';
import Database from 'better-sqlite3';
import type { Stream } from '../../src/stream/types.js';

const { EmbeddedStream } = (await import(new URL('../../dist/stream/embedded/embedded-stream.js', import.meta.url).href)) as typeof import('../../src/stream/embedded/embedded-stream.js');

/** The stream of the data dir, as Vigil's groups see it. `partitions` must match `stream.partitions`. */
export function openStreamReadOnly(dataDir: string, partitions: number): Stream {
  return new EmbeddedStream({ dataDir, partitions, retentionMs: 365 * 86_400_000 });
}

export async function heads(stream: Stream): Promise<(number | null)[]> {
  const out: (number | null)[] = [];
  for (let p = 0; p < stream.partitions; p++) {
    const h = await stream.head(p);
    out.push(h === null ? null : Number(h));
  }
  return out;
}

export interface CheckpointRow {
  part: number;
  sequence: number | null;
}

export class StoreReader {
  private readonly db: Database.Database;
  private readonly byGroup;
  private readonly stateBytesOf;
  private readonly entries;

  constructor(dataDir: string) {
    this.db = new Database(join(dataDir, 'store.db'), { readonly: true, fileMustExist: true });
    this.db.pragma('busy_timeout = 5000');
    this.byGroup = this.db.prepare<[string], { part: number; sequence: string | null }>('SELECT part, sequence FROM checkpoints WHERE grp = ? ORDER BY part');
    // As the JSON of one `{"devices":{"<key>":<value>,…}}` object would weigh (the figure the
    // issue's "state per device" target is about), plus the checkpoints' own snapshots.
    this.stateBytesOf = this.db.prepare<[string, string], { bytes: number | null }>(
      `SELECT (SELECT sum(length(key) + length(value) + 4) FROM checkpoint_state WHERE grp = ?)
            + (SELECT coalesce(sum(length(snapshot)), 0) FROM checkpoints WHERE grp = ?) AS bytes`,
    );
    this.entries = this.db.prepare<[string, number], { key: string; value: string }>('SELECT key, value FROM checkpoint_state WHERE grp = ? AND part = ?');
  }

  checkpoints(group: string): CheckpointRow[] {
    return this.byGroup.all(group).map((r) => ({ part: r.part, sequence: r.sequence === null ? null : Number(r.sequence) }));
  }

  /** JSON bytes of a group's state over every partition (reads every entry: once per measurement, not per poll). */
  stateBytes(group: string): number {
    return this.stateBytesOf.get(group, group)?.bytes ?? 0;
  }

  /** A partition's state entries as one `{"devices":{…}}` JSON text, or null when it has none. */
  stateText(group: string, partition: number): string | null {
    const rows = this.entries.all(group, partition);
    return rows.length === 0 ? null : `{"devices":{${rows.map((r) => `${JSON.stringify(r.key)}:${r.value}`).join(',')}}}`;
  }

  /** Records checkpointed by `group` (sum over partitions of min(checkpoint, head)), and whether it reached every head. */
  progress(group: string, headsNow: (number | null)[]): { records: number; caughtUp: boolean } {
    const cps = new Map(this.checkpoints(group).map((c) => [c.part, c.sequence]));
    let records = 0;
    let caughtUp = true;
    headsNow.forEach((h, p) => {
      if (h === null) return;
      const cp = cps.get(p) ?? null;
      records += Math.min(cp ?? 0, h);
      if (cp === null || cp < h) caughtUp = false;
    });
    return { records, caughtUp };
  }

  close(): void {
    this.db.close();
  }
}

/**
 * Polls every 100 ms until each group of `names` has checkpointed every head of `headsNow`;
 * returns when (performance.now()), or null after `timeoutMs`. `onSample` gets the records
 * checkpointed so far (summed over the groups) at each poll.
 */
export async function waitCheckpointed(
  store: StoreReader,
  names: string[],
  headsNow: (number | null)[],
  timeoutMs: number,
  onSample?: (records: number, at: number) => void,
): Promise<number | null> {
  const deadline = performance.now() + timeoutMs;
  while (performance.now() < deadline) {
    const at = performance.now();
    const ps = names.map((g) => store.progress(g, headsNow));
    onSample?.(
      ps.reduce((a, p) => a + p.records, 0),
      at,
    );
    if (ps.every((p) => p.caughtUp)) return at;
    await new Promise((r) => setTimeout(r, 100));
  }
  return null;
}
