/**
 * The `archive` consumer group: every reading received, as gzip'd NDJSON objects in Hive-style
 * partitions of the raw archive (DESIGN §1, §3.2).
 *
 * Object layout (a contract: external readers and replay rely on it):
 *   dt=YYYY-MM-DD/hour=HH/part-<partition>-<firstSeq>.ndjson.gz
 * dt/hour are the UTC hour of the stream records' append time (not event time, so a replay puts
 * a record in the same place), <firstSeq> the sequence of the object's first stream record. One
 * line per reading: {"partition","sequence","appendedAt","residentId","reading"}.
 *
 * Invariants that make replay exactly-once (objects are rewritten whole, never appended to):
 * - An object holds consecutive stream records of one partition and one UTC hour, in order, at
 *   most `objectMaxRecords` of them. It is closed when the hour changes, at the max, or at a flush;
 *   the flush puts every closed object, in stream order, before it commits the checkpoint. So the
 *   records put so far form a prefix of the partition, and everything up to the checkpoint is in
 *   the archive.
 * - Objects never overlap. Before starting an object at sequence S the group lists the hour's
 *   objects of the partition. If one covers S (first ≤ S ≤ last), this is a replay: the new object
 *   takes that object's name, its lines before S, and the records up to its last sequence, so the
 *   put rewrites it identically whatever the flush timing or `objectMaxRecords` of this run. Such
 *   a rewrite is not cut at a flush: the stored object already holds those records, so the
 *   checkpoint may pass them while it stays open. Otherwise the object is new and stops before the
 *   next stored object of the hour, so it never swallows records archived by an earlier run.
 */
import { promisify } from 'node:util';
import { gunzip } from 'node:zlib';
import type { Archive } from '../../archive/types.js';
import { recordReadingTexts } from '../../stream/record-text.js';
import { compareSequences, type Sequence, type StreamRecord } from '../../stream/types.js';
import type { ConsumerGroup, FlushContext } from '../types.js';
import { GzipText } from './gzip-text.js';

const gunzipAsync = promisify(gunzip);

export interface ArchiveGroupOptions {
  /** Stream records (request batches) per object at most. */
  objectMaxRecords: number;
  flushEveryMs: number;
}

/** An object being built, not yet put. */
interface PendingObject {
  key: string;
  /** `dt=…/hour=…/`: every record of the object was appended in this hour. */
  hour: string;
  /** The object's content so far, compressed as it comes (gzip-text.ts). */
  body: GzipText;
  /** Lines of the `handle` call in progress, written to `body` at its end (one zlib job per call). */
  unwritten: string[];
  records: number;
  lastSeq: Sequence;
  /** Rewriting a stored object: its last sequence, where this one must end too. */
  end: Sequence | null;
  /** A new object: the first sequence of the next stored object of the hour, which it must stop before. */
  before: Sequence | null;
}

interface StoredObject {
  key: string;
  firstSeq: Sequence;
  /** Learned by reading the object, when a record may fall into it. */
  lastSeq: Sequence | null;
}

interface PartitionState {
  current: PendingObject | null;
  /** Closed since the last flush, in stream order. */
  closed: PendingObject[];
  /**
   * The stored objects of the partition in the hour last looked at, sorted by first sequence.
   * Records move forward, so one hour is all that is useful; objects this worker put there since
   * are missing, but they all precede the records still to come.
   */
  listing: { hour: string; objects: StoredObject[] } | null;
}

const LINE_SEQUENCE = /^\{"partition":\d+,"sequence":"(\d+)"/;

export class ArchiveGroup implements ConsumerGroup {
  readonly name = 'archive';
  /** Gathering more than an object's worth between flushes only holds more in memory. */
  readonly flushEveryRecords: number;
  readonly flushEveryMs: number;
  private readonly objectMaxRecords: number;
  private readonly partitions = new Map<number, PartitionState>();

  constructor(
    private readonly archive: Archive,
    opts: ArchiveGroupOptions,
  ) {
    this.objectMaxRecords = opts.objectMaxRecords;
    this.flushEveryRecords = opts.objectMaxRecords;
    this.flushEveryMs = opts.flushEveryMs;
  }

  /** The snapshot is unused: the stored objects themselves tell a replay where it stands. */
  async open(partition: number, _snapshot: unknown): Promise<void> {
    this.partitions.set(partition, { current: null, closed: [], listing: null });
  }

  async handle(partition: number, records: StreamRecord[]): Promise<void> {
    const state = this.stateOf(partition);
    for (const record of records) {
      // The readings' stored text goes into the lines as is: parsing and re-serializing each
      // (bursts included) was most of this thread's work, for the same bytes.
      const batch = recordReadingTexts(record.data);
      // A record without readings leaves no line to tell an object's last sequence by: skip it
      // so that every object ends on a sequence its content shows.
      if (batch.readings.length === 0) continue;
      const hour = hourOf(record.timestamp);
      if (state.current && !this.accepts(state.current, record.sequence, hour)) closeCurrent(state);
      state.current ??= await this.startObject(state, partition, record.sequence, hour);
      const object = state.current;
      // Byte for byte what JSON.stringify({partition, sequence, appendedAt, residentId, reading}) gives.
      const prefix = `{"partition":${partition},"sequence":${JSON.stringify(record.sequence)},"appendedAt":${record.timestamp},"residentId":${JSON.stringify(batch.residentId)},"reading":`;
      for (const reading of batch.readings) object.unwritten.push(`${prefix}${reading}}`);
      object.records++;
      object.lastSeq = record.sequence;
    }
    if (state.current) writeUnwritten(state.current);
  }

  async flush(partition: number, ctx: FlushContext): Promise<void> {
    const state = this.stateOf(partition);
    if (state.current && (state.current.end === null || state.current.lastSeq === state.current.end)) closeCurrent(state);
    // In order, one at a time: a crash then leaves a prefix of the objects stored, never a gap.
    while (state.closed.length > 0) {
      const object = state.closed[0];
      await this.archive.put(object.key, await object.body.finish());
      state.closed.shift();
    }
    await ctx.commit(null);
  }

  async close(partition: number): Promise<void> {
    const state = this.partitions.get(partition);
    if (state) for (const object of state.current ? [...state.closed, state.current] : state.closed) object.body.discard();
    this.partitions.delete(partition);
  }

  async shutdown(): Promise<void> {
    await this.archive.close();
  }

  private accepts(object: PendingObject, sequence: Sequence, hour: string): boolean {
    if (object.hour !== hour) return false;
    if (object.end !== null) return compareSequences(sequence, object.end) <= 0;
    return object.records < this.objectMaxRecords && (object.before === null || compareSequences(sequence, object.before) < 0);
  }

  private async startObject(state: PartitionState, partition: number, sequence: Sequence, hour: string): Promise<PendingObject> {
    const objects = await this.storedObjects(state, partition, hour);
    const nextIndex = objects.findIndex((o) => compareSequences(o.firstSeq, sequence) > 0);
    const next: StoredObject | undefined = objects[nextIndex];
    const candidate: StoredObject | undefined = objects[(nextIndex === -1 ? objects.length : nextIndex) - 1];
    if (candidate && (candidate.lastSeq === null || compareSequences(sequence, candidate.lastSeq) <= 0)) {
      const body = await this.archive.get(candidate.key);
      // Deleted since the listing (say, by an archive retention rule): nothing left to match.
      if (body === null) objects.splice(objects.indexOf(candidate), 1);
      else {
        const rewrite = await rewriteOf(candidate, body, sequence, hour);
        if (rewrite) return rewrite;
      }
    }
    return {
      key: `${hour}part-${partition}-${sequence}.ndjson.gz`,
      hour,
      body: new GzipText(),
      unwritten: [],
      records: 0,
      lastSeq: sequence,
      end: null,
      before: next?.firstSeq ?? null,
    };
  }

  private async storedObjects(state: PartitionState, partition: number, hour: string): Promise<StoredObject[]> {
    if (state.listing?.hour === hour) return state.listing.objects;
    const prefix = `${hour}part-${partition}-`;
    const objects: StoredObject[] = [];
    for (const key of await this.archive.list(prefix)) {
      const firstSeq = /^(\d+)\.ndjson\.gz$/.exec(key.slice(prefix.length))?.[1];
      if (firstSeq !== undefined) objects.push({ key, firstSeq, lastSeq: null });
    }
    objects.sort((a, b) => compareSequences(a.firstSeq, b.firstSeq));
    state.listing = { hour, objects };
    return objects;
  }

  private stateOf(partition: number): PartitionState {
    const state = this.partitions.get(partition);
    if (!state) throw new Error(`archive group: partition ${partition} is not open`);
    return state;
  }
}

/** The object that rewrites `stored` from `sequence` on, or null when `stored` does not hold `sequence`. */
async function rewriteOf(stored: StoredObject, body: Buffer, sequence: Sequence, hour: string): Promise<PendingObject | null> {
  const lines = (await gunzipAsync(body)).toString('utf8').split('\n');
  if (lines.pop() !== '' || lines.length === 0) throw new Error(`archive object ${stored.key} is not complete NDJSON`);
  const sequences = lines.map((line) => lineSequence(stored.key, line));
  stored.lastSeq = sequences[sequences.length - 1];
  if (compareSequences(sequence, stored.lastSeq) > 0) return null;
  const kept = sequences.findIndex((s) => compareSequences(s, sequence) >= 0);
  const rewritten = new GzipText();
  rewritten.writeLines(lines.slice(0, kept));
  return { key: stored.key, hour, body: rewritten, unwritten: [], records: 0, lastSeq: sequence, end: stored.lastSeq, before: null };
}

function writeUnwritten(object: PendingObject): void {
  object.body.writeLines(object.unwritten);
  object.unwritten = [];
}

function closeCurrent(state: PartitionState): void {
  if (state.current) {
    writeUnwritten(state.current);
    state.closed.push(state.current);
  }
  state.current = null;
}

function hourOf(timestamp: number): string {
  const iso = new Date(timestamp).toISOString();
  return `dt=${iso.slice(0, 10)}/hour=${iso.slice(11, 13)}/`;
}

function lineSequence(key: string, line: string): Sequence {
  const match = LINE_SEQUENCE.exec(line);
  if (!match) throw new Error(`archive object ${key} has a line that is not an archive record`);
  return match[1];
}
