/**
 * Runs one consumer group over the stream's partitions (DESIGN §2 "scale-out of
 * processing", §3.2).
 *
 * - Ownership: a lease per (group, partition) in the store, renewed every third of its
 *   time. A worker takes a fair share (partitions ÷ live owners, rounded up) of free or
 *   expired leases; a partition whose lease cannot be renewed is dropped at once, before
 *   anyone else can take it over, and its unflushed work is thrown away (it will be
 *   re-read from the checkpoint by the new owner).
 * - Progress: each owned partition is read in order from its checkpoint; the group flushes
 *   (sink durable, then fenced checkpoint) when it has gathered enough or waited long
 *   enough. At-least-once: after a crash, records after the checkpoint are handled again.
 * - Balance: workers announce themselves with a membership lease; a worker above its fair
 *   share hands partitions over (flush, checkpoint, release) when another holds fewer than
 *   its share, so a worker that joins takes a fair share within a lease period.
 * - Failure of the sink: the partition is closed and reopened from its checkpoint after an
 *   exponential backoff, so a full disk or a stopped database delays but loses nothing.
 */
import type { Logger } from 'pino';
import { compareSequences, type Position, type Sequence, type StreamReader } from '../stream/types.js';
import { LeaseLostError, type Lease, type Store } from '../store/types.js';
import type { ConsumerGroup } from './types.js';

export interface RuntimeOptions {
  group: ConsumerGroup;
  stream: StreamReader;
  store: Store;
  /** Unique per worker (host, pid, thread, random). */
  owner: string;
  leaseMs: number;
  batchRecords: number;
  log: Logger;
  /** Where a partition without checkpoint starts. */
  initialPosition?: Position;
  /** Called if the loop itself fails (a bug): the worker should exit and be restarted. */
  onCrash?: (err: unknown) => void;
}

export interface PartitionStats {
  partition: number;
  owned: boolean;
  /** Last sequence handled in memory. */
  position: Sequence | null;
  /** Last sequence checkpointed (durable). */
  checkpoint: Sequence | null;
  head: Sequence | null;
  /** Records between the checkpoint and the head. */
  lag: number;
  errors: number;
}

export interface GroupStats {
  group: string;
  owner: string;
  caughtUp: boolean;
  handledRecords: number;
  flushes: number;
  partitions: PartitionStats[];
}

interface Owned {
  lease: Lease;
  position: Sequence | null;
  checkpoint: Sequence | null;
  pending: number;
  firstPendingAt: number;
  caughtUp: boolean;
  errors: number;
  retryAt: number;
  opened: boolean;
}

const MAX_BACKOFF_MS = 30_000;
/** How often a partition's head is read for the lag (a cheap query, but not one per batch). */
const HEAD_REFRESH_MS = 500;

/** A worker's slot in the membership group: a stable 31-bit hash of its owner id. */
function memberSlot(owner: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < owner.length; i++) h = Math.imul(h ^ owner.charCodeAt(i), 0x01000193) >>> 0;
  return h & 0x7fffffff;
}

function distance(head: Sequence | null, from: Sequence | null): number {
  if (head === null) return 0;
  try {
    return Number(BigInt(head) - BigInt(from ?? '0'));
  } catch {
    return 0;
  }
}

export class GroupRuntime {
  private readonly owned = new Map<number, Owned>();
  private readonly heads: (Sequence | null)[];
  private readonly headsReadAt: number[];
  /** Records after each partition's position, from backends that count them (see StreamReader.backlog). */
  private readonly backlogs: (number | null)[];
  private running = false;
  private loop: Promise<void> | null = null;
  private nextLeaseCheck = 0;
  private commands: (() => Promise<void>)[] = [];
  private handledRecords = 0;
  private flushes = 0;
  private wake: (() => void) | null = null;

  constructor(private readonly o: RuntimeOptions) {
    this.heads = new Array(o.stream.partitions).fill(null);
    this.headsReadAt = new Array(o.stream.partitions).fill(0);
    this.backlogs = new Array(o.stream.partitions).fill(null);
  }

  start(): void {
    this.running = true;
    this.loop = this.run().catch((err) => {
      this.o.log.fatal({ err, group: this.o.group.name }, 'group runtime crashed');
      this.o.onCrash?.(err);
    });
  }

  /** Flushes and checkpoints every owned partition, releases the leases, shuts the sink. */
  async stop(): Promise<void> {
    this.running = false;
    this.wake?.();
    await this.loop?.catch(() => undefined);
    for (const [partition, st] of [...this.owned]) {
      try {
        await this.release(partition, st);
      } catch (err) {
        this.o.log.warn({ err, partition }, 'could not checkpoint partition at shutdown');
      }
    }
    this.owned.clear();
    await this.o.group.shutdown();
  }

  /** Moves every owned partition to `position` (replay); applied between batches. */
  rewind(position: Position): Promise<void> {
    return new Promise((resolve, reject) => {
      this.commands.push(async () => {
        try {
          for (const [partition, st] of this.owned) {
            const sequence = await this.o.stream.resolve(partition, position);
            await this.o.store.writeCheckpoint(this.o.group.name, partition, sequence, null, st.lease, { clear: true, put: [] });
            await this.o.group.close(partition);
            await this.o.group.open(partition, undefined, new Map());
            Object.assign(st, { position: sequence, checkpoint: sequence, pending: 0, caughtUp: false, opened: true });
          }
          resolve();
        } catch (err) {
          reject(err as Error);
        }
      });
      this.wake?.();
    });
  }

  stats(): GroupStats {
    const partitions: PartitionStats[] = [];
    for (let p = 0; p < this.o.stream.partitions; p++) {
      const st = this.owned.get(p);
      partitions.push({
        partition: p,
        owned: Boolean(st),
        position: st?.position ?? null,
        checkpoint: st?.checkpoint ?? null,
        head: this.heads[p],
        lag: st ? this.lagOf(p, st) : 0,
        errors: st?.errors ?? 0,
      });
    }
    return {
      group: this.o.group.name,
      owner: this.o.owner,
      caughtUp: [...this.owned.values()].every((s) => s.caughtUp && s.pending === 0),
      handledRecords: this.handledRecords,
      flushes: this.flushes,
      partitions,
    };
  }

  /** Records between the checkpoint and the head: counted by the backend when it can, else by sequence. */
  private lagOf(partition: number, st: Owned): number {
    const backlog = this.backlogs[partition];
    if (backlog !== null) return backlog + st.pending;
    return Math.max(0, distance(this.heads[partition], st.checkpoint));
  }

  private async run(): Promise<void> {
    while (this.running) {
      const now = Date.now();
      while (this.commands.length) await this.commands.shift()!();
      if (now >= this.nextLeaseCheck) {
        try {
          await this.maintainLeases(now);
          this.nextLeaseCheck = now + this.o.leaseMs / 3;
        } catch (err) {
          // A busy or unreachable store: keep what we hold (the checkpoint fence protects it) and retry soon.
          this.o.log.error({ err, group: this.o.group.name }, 'lease maintenance failed');
          this.nextLeaseCheck = now + 1000;
        }
      }
      let progressed = false;
      let nextDeadline = now + 100;
      for (const [partition, st] of this.owned) {
        if (!this.running) break;
        if (now < st.retryAt) continue;
        try {
          progressed = (await this.step(partition, st, now)) || progressed;
          if (st.pending > 0) nextDeadline = Math.min(nextDeadline, st.firstPendingAt + this.o.group.flushEveryMs);
        } catch (err) {
          await this.fail(partition, st, err);
        }
      }
      if (this.o.group.tick) {
        try {
          await this.o.group.tick(Date.now(), this.stats().caughtUp);
        } catch (err) {
          this.o.log.error({ err, group: this.o.group.name }, 'group tick failed');
        }
      }
      if (progressed) {
        // Let timers and I/O of this thread run (the outbox sender's requests) between passes.
        await new Promise<void>((resolve) => setImmediate(resolve));
      } else if (this.running && this.commands.length === 0) {
        await Promise.race([
          this.o.stream.waitForAppend(Math.max(1, nextDeadline - Date.now())),
          new Promise<void>((resolve) => (this.wake = resolve)),
        ]);
        this.wake = null;
      }
    }
  }

  /** Reads one batch of a partition and flushes when due; returns whether records came. */
  private async step(partition: number, st: Owned, now: number): Promise<boolean> {
    if (!st.opened) {
      const cp = await this.o.store.getCheckpoint(this.o.group.name, partition);
      const start = cp ? cp.sequence : await this.o.stream.resolve(partition, this.o.initialPosition ?? { type: 'TRIM_HORIZON' });
      const state = cp ? await this.o.store.getCheckpointState(this.o.group.name, partition) : new Map<string, unknown>();
      await this.o.group.open(partition, cp?.snapshot ?? undefined, state);
      Object.assign(st, { position: start, checkpoint: cp?.sequence ?? null, pending: 0, opened: true });
    }
    const records = await this.o.stream.read(partition, st.position, this.o.batchRecords);
    if (records.length > 0) {
      await this.o.group.handle(partition, records);
      st.position = records[records.length - 1].sequence;
      if (st.pending === 0) st.firstPendingAt = now;
      st.pending += records.length;
      this.handledRecords += records.length;
    }
    if (now - this.headsReadAt[partition] >= HEAD_REFRESH_MS) {
      this.heads[partition] = await this.o.stream.head(partition);
      if (this.o.stream.backlog) this.backlogs[partition] = await this.o.stream.backlog(partition, st.position);
      this.headsReadAt[partition] = now;
    }
    const head = this.heads[partition];
    if (st.position !== null && (head === null || compareSequences(st.position, head) > 0)) this.heads[partition] = st.position;
    st.caughtUp = records.length < this.o.batchRecords;
    // Urgent work is flushed even without new records: a timer (a silent band) raised an alert.
    const urgent = this.o.group.urgent?.(partition) === true && st.position !== null;
    const due = st.pending >= this.o.group.flushEveryRecords || urgent || (st.pending > 0 && now - st.firstPendingAt >= this.o.group.flushEveryMs);
    if (due) await this.flush(partition, st);
    st.errors = 0;
    return records.length > 0;
  }

  private async flush(partition: number, st: Owned): Promise<void> {
    const sequence = st.position!;
    await this.o.group.flush(partition, {
      checkpoint: { group: this.o.group.name, partition, sequence, fence: st.lease },
      commit: (snapshot, state) => this.o.store.writeCheckpoint(this.o.group.name, partition, sequence, snapshot, st.lease, state),
    });
    st.checkpoint = sequence;
    st.pending = 0;
    this.flushes++;
  }

  private async fail(partition: number, st: Owned, err: unknown): Promise<void> {
    if (err instanceof LeaseLostError) {
      this.o.log.warn({ group: this.o.group.name, partition }, 'lease lost; dropping partition');
      await this.drop(partition);
      return;
    }
    st.errors++;
    const backoff = Math.min(MAX_BACKOFF_MS, 250 * 2 ** Math.min(st.errors, 10));
    this.o.log.error({ err, group: this.o.group.name, partition, retryInMs: backoff }, 'partition failed; will resume from its checkpoint');
    st.retryAt = Date.now() + backoff;
    st.opened = false;
    await this.o.group.close(partition).catch(() => undefined);
  }

  private async drop(partition: number): Promise<void> {
    this.owned.delete(partition);
    await this.o.group.close(partition).catch(() => undefined);
  }

  /** Hands a partition over: its work made durable, then the lease given up for another worker. */
  private async release(partition: number, st: Owned): Promise<void> {
    if (st.opened && st.pending > 0) await this.flush(partition, st);
    this.owned.delete(partition);
    await this.o.group.close(partition);
    await this.o.store.releaseLease(st.lease);
  }

  /**
   * Renews what we hold, announces this worker, gives up partitions above our fair share when
   * another member has fewer than its share (so a worker that joins gets partitions without
   * waiting for a crash), and takes free ones up to our share.
   */
  private async maintainLeases(now: number): Promise<void> {
    const { store, group, leaseMs, owner } = this.o;
    const partitions = this.o.stream.partitions;
    for (const [partition, st] of this.owned) {
      const renewed = await store.renewLease(st.lease, leaseMs, now);
      if (renewed) st.lease = renewed;
      else await this.drop(partition);
    }
    // Membership rides on the lease table: one lease per worker in a companion group, keyed
    // by a hash of the owner, so a worker that holds no partition yet is still counted.
    const membersGroup = `${group.name}#members`;
    await store.acquireLease(membersGroup, memberSlot(owner), owner, leaseMs, now);
    const live = (await store.listLeases(group.name)).filter((l) => l.expiresAt > now);
    const members = new Set((await store.listLeases(membersGroup)).filter((l) => l.expiresAt > now).map((l) => l.owner));
    for (const l of live) members.add(l.owner);
    members.add(owner);
    const fairShare = Math.ceil(partitions / members.size);
    const minShare = Math.floor(partitions / members.size);
    const held = new Map<string, number>();
    for (const l of live) held.set(l.owner, (held.get(l.owner) ?? 0) + 1);
    const someoneShort = [...members].some((m) => m !== owner && (held.get(m) ?? 0) < minShare);
    if (someoneShort && this.owned.size > fairShare) {
      const excess = [...this.owned.keys()].sort((a, b) => b - a).slice(0, this.owned.size - fairShare);
      for (const partition of excess) {
        try {
          await this.release(partition, this.owned.get(partition)!);
        } catch (err) {
          this.o.log.warn({ err, group: group.name, partition }, 'could not hand the partition over; keeping it');
        }
      }
    }
    for (let p = 0; p < partitions && this.owned.size < fairShare; p++) {
      if (this.owned.has(p)) continue;
      const lease = await store.acquireLease(group.name, p, owner, leaseMs, now);
      if (lease) {
        this.owned.set(p, {
          lease,
          position: null,
          checkpoint: null,
          pending: 0,
          firstPendingAt: 0,
          caughtUp: false,
          errors: 0,
          retryAt: 0,
          opened: false,
        });
      }
    }
  }
}
