/**
 * The embedded stream's on-disk log: one SQLite file (`stream.db`) in WAL mode.
 *
 * On-disk invariants (everything else in this folder relies on them):
 * 1. `records(part, seq)` is the log. Within a partition `seq` starts at 1 and strictly
 *    increases in commit order; a sequence is never reused, because retention never deletes
 *    the newest record of a partition (the next sequence is always MAX(seq)+1).
 * 2. `records.ts` is the append time in epoch ms and never decreases within a partition
 *    (a clock step backwards is clamped to the partition's last ts), so AT_TIMESTAMP and
 *    retention can both look for "the first record with ts ≥ t".
 * 3. A record and the dedupe ranges (`seen`) of the readings it carries are written in the
 *    same transaction, committed with `synchronous=FULL`: once `appendBatch` returns, the
 *    records survive power loss, and a crash before that leaves neither.
 * 4. `meta.partitions` is fixed when the file is created; opening with another count fails.
 * 5. Only one connection writes (the log writer thread); readers use their own connections
 *    and see only committed transactions.
 */
import Database from 'better-sqlite3';
import type { AppendEntry, AppendResult, Position, Sequence, StreamRecord } from '../types.js';
import { partitionOf } from '../partitioner.js';
import { packRecord } from '../record-packing.js';
import { SeqRanges } from '../../core/seq-ranges.js';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS records (
  part INTEGER NOT NULL,
  seq  INTEGER NOT NULL,
  ts   INTEGER NOT NULL,
  data TEXT NOT NULL,
  PRIMARY KEY (part, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS seen (
  device  TEXT PRIMARY KEY,
  ranges  TEXT NOT NULL,
  updated INTEGER NOT NULL
) WITHOUT ROWID;
`;

/**
 * The writer waits at most a second for a lock: a phone is better served by a quick 503 and
 * its retry than by a request hanging behind a stuck lock.
 */
const WRITER_BUSY_MS = 1000;
const READER_BUSY_MS = 5000;

function openDatabase(path: string, readonly: boolean, busyMs = READER_BUSY_MS): Database.Database {
  const db = new Database(path, { readonly, fileMustExist: readonly });
  db.pragma(`busy_timeout = ${busyMs}`);
  if (!readonly) {
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = FULL');
  }
  return db;
}

function checkPartitions(db: Database.Database, partitions: number): void {
  const row = db.prepare("SELECT value FROM meta WHERE key = 'partitions'").get() as { value: string } | undefined;
  if (!row) {
    db.prepare("INSERT INTO meta (key, value) VALUES ('partitions', ?)").run(String(partitions));
  } else if (Number(row.value) !== partitions) {
    throw new Error(
      `stream.partitions is ${partitions} but the stream in ${db.name} was created with ${row.value}; ` +
        `the count is fixed once data exists`,
    );
  }
}

/** The single writer: group commit of many requests in one fsync'd transaction. */
export class EmbeddedLogWriter {
  private readonly db: Database.Database;
  private readonly nextSeq: number[];
  private readonly lastTs: number[];
  private readonly ranges = new Map<string, SeqRanges>();
  private readonly insertRecord;
  private readonly getRanges;
  private readonly putRanges;

  constructor(
    path: string,
    readonly partitions: number,
  ) {
    this.db = openDatabase(path, false, WRITER_BUSY_MS);
    this.db.exec(SCHEMA);
    checkPartitions(this.db, partitions);
    this.insertRecord = this.db.prepare('INSERT INTO records (part, seq, ts, data) VALUES (?, ?, ?, ?)');
    this.getRanges = this.db.prepare('SELECT ranges FROM seen WHERE device = ?').pluck();
    this.putRanges = this.db.prepare(
      'INSERT INTO seen (device, ranges, updated) VALUES (?, ?, ?) ON CONFLICT(device) DO UPDATE SET ranges = excluded.ranges, updated = excluded.updated',
    );
    const heads = this.db.prepare('SELECT MAX(seq) AS seq, MAX(ts) AS ts FROM records WHERE part = ?');
    this.nextSeq = [];
    this.lastTs = [];
    for (let p = 0; p < partitions; p++) {
      const h = heads.get(p) as { seq: number | null; ts: number | null };
      this.nextSeq.push((h.seq ?? 0) + 1);
      this.lastTs.push(h.ts ?? 0);
    }
  }

  private rangesOf(deviceId: string): SeqRanges {
    let r = this.ranges.get(deviceId);
    if (!r) {
      const json = this.getRanges.get(deviceId) as string | undefined;
      r = json ? SeqRanges.parse(json) : new SeqRanges();
      this.ranges.set(deviceId, r);
    }
    return r;
  }

  /**
   * Appends every entry in one transaction and returns once it is fsync'd. Throws (having
   * written nothing) when SQLite cannot commit; in-memory state is then reloaded from disk.
   */
  appendBatch(entries: AppendEntry[], now: number): AppendResult[] {
    const touched = new Map<string, SeqRanges>();
    const nextSeq = this.nextSeq.slice();
    const lastTs = this.lastTs.slice();
    try {
      const results = this.db.transaction(() => {
        const out: AppendResult[] = [];
        for (const entry of entries) {
          // Work on a copy so a failed transaction leaves the cached ranges untouched.
          let ranges = touched.get(entry.deviceId);
          if (!ranges) {
            ranges = new SeqRanges(this.rangesOf(entry.deviceId).toJSON().slice());
            touched.set(entry.deviceId, ranges);
          }
          const duplicates: number[] = [];
          const kept: string[] = [];
          for (let i = 0; i < entry.seqs.length; i++) {
            if (ranges.add(entry.seqs[i])) kept.push(entry.readings[i]);
            else duplicates.push(i);
          }
          if (kept.length === 0) {
            out.push({ partition: null, sequence: null, duplicates });
            continue;
          }
          const part = partitionOf(entry.deviceId, this.partitions);
          const seq = nextSeq[part]++;
          const ts = Math.max(now, lastTs[part]);
          lastTs[part] = ts;
          this.insertRecord.run(part, seq, ts, packRecord(entry.deviceId, entry.residentId, kept));
          out.push({ partition: part, sequence: String(seq), duplicates });
        }
        for (const [device, r] of touched) this.putRanges.run(device, JSON.stringify(r), now);
        return out;
      })();
      for (const [device, r] of touched) this.ranges.set(device, r);
      for (let p = 0; p < this.partitions; p++) {
        this.nextSeq[p] = nextSeq[p];
        this.lastTs[p] = lastTs[p];
      }
      return results;
    } catch (err) {
      this.ranges.clear();
      throw err;
    }
  }

  /**
   * Deletes records appended before `now - retentionMs`, keeping each partition's newest
   * record (invariant 1), and forgets dedupe ranges of devices silent that long.
   * Deletes in chunks so the writer thread is never blocked for long. Returns records deleted.
   */
  enforceRetention(now: number, retentionMs: number, chunk = 5000): number {
    const cutoff = now - retentionMs;
    let deleted = 0;
    const del = this.db.prepare(
      `DELETE FROM records WHERE part = ? AND seq IN (
         SELECT seq FROM records WHERE part = ? AND ts < ? AND seq < (SELECT MAX(seq) FROM records WHERE part = ?)
         ORDER BY seq LIMIT ?)`,
    );
    for (let p = 0; p < this.partitions; p++) {
      for (;;) {
        const n = del.run(p, p, cutoff, p, chunk).changes;
        deleted += n;
        if (n < chunk) break;
      }
    }
    const stale = this.db.prepare('SELECT device FROM seen WHERE updated < ?').pluck().all(cutoff) as string[];
    const forget = this.db.prepare('DELETE FROM seen WHERE device = ?');
    for (const device of stale) {
      forget.run(device);
      this.ranges.delete(device);
    }
    return deleted;
  }

  close(): void {
    this.db.close();
  }
}

interface RecordRow {
  seq: number;
  ts: number;
  data: string;
}

/** A read-only view of the log, for consumers in any thread or process. */
export class EmbeddedLogReader {
  private readonly db: Database.Database;
  private readonly readAfter;
  private readonly readFirst;
  private readonly headOf;
  private readonly firstAtOrAfter;

  constructor(
    path: string,
    readonly partitions: number,
  ) {
    // Create the file (and check the partition count) if no writer has yet.
    const init = openDatabase(path, false);
    init.exec(SCHEMA);
    checkPartitions(init, partitions);
    init.close();
    this.db = openDatabase(path, true);
    this.readAfter = this.db.prepare('SELECT seq, ts, data FROM records WHERE part = ? AND seq > ? ORDER BY seq LIMIT ?');
    this.readFirst = this.db.prepare('SELECT seq, ts, data FROM records WHERE part = ? ORDER BY seq LIMIT ?');
    this.headOf = this.db.prepare('SELECT MAX(seq) FROM records WHERE part = ?').pluck();
    this.firstAtOrAfter = this.db.prepare('SELECT seq FROM records WHERE part = ? AND ts >= ? ORDER BY seq LIMIT 1').pluck();
  }

  read(partition: number, after: Sequence | null, limit: number): StreamRecord[] {
    const rows = (
      after === null ? this.readFirst.all(partition, limit) : this.readAfter.all(partition, Number(after), limit)
    ) as RecordRow[];
    return rows.map((r) => ({ partition, sequence: String(r.seq), timestamp: r.ts, data: r.data }));
  }

  head(partition: number): Sequence | null {
    const seq = this.headOf.get(partition) as number | null;
    return seq === null ? null : String(seq);
  }

  resolve(partition: number, position: Position): Sequence | null {
    switch (position.type) {
      case 'TRIM_HORIZON':
        return null;
      case 'LATEST':
        return this.head(partition);
      case 'AFTER_SEQUENCE':
        return position.sequence;
      case 'AT_TIMESTAMP': {
        const first = this.firstAtOrAfter.get(partition, position.timestamp) as number | undefined;
        if (first === undefined) return this.head(partition);
        return first > 1 ? String(first - 1) : null;
      }
    }
  }

  close(): void {
    this.db.close();
  }
}
