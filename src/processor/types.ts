/**
 * A consumer group's processing logic, driven by the runtime (runtime.ts), the way Flink
 * drives a SinkWriter: the runtime owns leases, positions, checkpoints and pacing; the group
 * owns its sink.
 *
 * Lifecycle per partition the worker holds a lease on:
 *   open(partition, snapshot, state) → (handle(partition, records) … flush(partition, commit))* → close(partition)
 * - `handle` receives the partition's records in order, each exactly after the previous one
 *   (after a restart or rewind, from the checkpoint onwards: records may be seen again, so
 *   every effect must be idempotent on (deviceId, seq) — DESIGN §3.2).
 * - `flush` makes every effect of the records handled so far durable, then calls
 *   `commit(snapshot, state)` exactly once, which writes the checkpoint (fenced by the lease)
 *   with what to restore on `open`: a small `snapshot`, and per-device `state` entries of
 *   which only the changed ones are written (the store keeps the rest), so a flush costs what
 *   changed, not the partition's fleet. A group whose sink is the store may instead commit
 *   inside its own transaction through `checkpoint` (the alerts group does).
 * - `close` drops the partition's in-memory state without flushing (lease lost, or after a
 *   final flush at shutdown).
 * - `tick(now, caughtUp)` runs on processing time for timers (e.g. silent devices) and
 *   background work such as sending the outbox.
 */
import type { StreamRecord } from '../stream/types.js';
import type { Fence, StateChanges } from '../store/types.js';

export interface PendingCheckpoint {
  group: string;
  partition: number;
  /** The last sequence handled: the checkpoint moves here. */
  sequence: string;
  fence: Fence;
}

export interface FlushContext {
  checkpoint: PendingCheckpoint;
  /** Writes the checkpoint with this snapshot and these state changes (after the sink is durable). */
  commit(snapshot: unknown, state?: StateChanges): Promise<void>;
}

export interface ConsumerGroup {
  readonly name: string;
  /**
   * Records to gather, or milliseconds to wait, before the runtime calls `flush`: a
   * warehouse loads better in big batches, an alert must not wait.
   */
  readonly flushEveryRecords: number;
  readonly flushEveryMs: number;
  /** True when what was handled must be made durable now, whatever the pacing (a new alert). */
  urgent?(partition: number): boolean;
  /** `state`: every entry the checkpoints wrote (empty on a first start or after a rewind). */
  open(partition: number, snapshot: unknown, state: Map<string, unknown>): Promise<void>;
  handle(partition: number, records: StreamRecord[]): Promise<void>;
  flush(partition: number, ctx: FlushContext): Promise<void>;
  close(partition: number): Promise<void>;
  tick?(now: number, caughtUp: boolean): Promise<void>;
  /** Releases the sink at shutdown (after every partition was flushed and closed). */
  shutdown(): Promise<void>;
}
