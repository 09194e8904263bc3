/**
 * Puts a device's readings back in `seq` order before the windowed detectors see them
 * (DESIGN §3.3). A phone that was out of range sends its buffer later, in any order and
 * interleaved with live readings: a reading that opens a gap waits here until the missing
 * ones arrive, or until the buffer gives up on them.
 *
 * The buffer gives up on a gap after `holdMs` of *receive* time (the server's `receivedAt`,
 * carried in the data, so a replay decides exactly as the live run did) or when it holds
 * `maxPending` readings; the missing readings, if they come after that, are "late": the
 * caller processes them on their own (device events, steps) but they no longer move the
 * windows. Duplicates of a (deviceId, seq) already admitted are dropped here, so no count is
 * ever taken twice (the stream dedupes too; this covers replays and forgotten ranges).
 *
 * State is plain JSON, snapshotted with the checkpoint.
 */
import type { Reading } from '../core/reading.js';
import { SeqRanges } from '../core/seq-ranges.js';

export interface ReorderState {
  /** Highest seq released in order; -1 before the first. */
  lastSeq: number;
  /** Every seq admitted (released or late), as SeqRanges' flat list. */
  seen: number[];
  /** Readings waiting for a gap below them to fill, ascending seq. */
  pending: Reading[];
}

export const newReorderState = (): ReorderState => ({ lastSeq: -1, seen: [], pending: [] });

/**
 * Long enough for a phone's burst of buffered requests to arrive (they are sent back to back),
 * short enough that a reading lost for good delays the windows by half a minute at most.
 */
export const REORDER_HOLD_MS = 30_000;
/** Two hours of 5-s readings (a phone back in range sends its buffer in requests of up to 500): bounds the memory a gap can hold. */
export const REORDER_MAX_PENDING = 1440;

export type Admission = 'duplicate' | 'late' | 'held' | 'released';

/**
 * Admits one reading; readings that may now go on in order are appended to `inOrder`.
 * Returns what became of this reading.
 */
export function admit(st: ReorderState, reading: Reading, inOrder: Reading[], holdMs = REORDER_HOLD_MS, maxPending = REORDER_MAX_PENDING): Admission {
  const seen = new SeqRanges(st.seen);
  if (seen.has(reading.seq)) return 'duplicate';
  let admission: Admission;
  if (st.lastSeq < 0 || reading.seq === st.lastSeq + 1) {
    release(st, seen, reading, inOrder);
    drain(st, seen, inOrder);
    admission = 'released';
  } else if (reading.seq < st.lastSeq) {
    seen.add(reading.seq);
    return 'late';
  } else {
    if (st.pending.some((p) => p.seq === reading.seq)) return 'duplicate';
    let i = st.pending.length;
    while (i > 0 && st.pending[i - 1].seq > reading.seq) i--;
    st.pending.splice(i, 0, reading);
    admission = 'held';
  }
  giveUp(st, seen, inOrder, (p) => st.pending.length > maxPending || reading.receivedAt - p.receivedAt >= holdMs);
  return admission === 'held' && !st.pending.includes(reading) ? 'released' : admission;
}

/** On processing time (the group caught up, nothing more arriving): stops waiting for gaps older than holdMs. */
export function expire(st: ReorderState, now: number, inOrder: Reading[], holdMs = REORDER_HOLD_MS): void {
  if (st.pending.length === 0) return;
  giveUp(st, new SeqRanges(st.seen), inOrder, (p) => now - p.receivedAt >= holdMs);
}

function release(st: ReorderState, seen: SeqRanges, reading: Reading, inOrder: Reading[]): void {
  seen.add(reading.seq);
  st.lastSeq = reading.seq;
  inOrder.push(reading);
}

function drain(st: ReorderState, seen: SeqRanges, inOrder: Reading[]): void {
  while (st.pending.length > 0 && st.pending[0].seq === st.lastSeq + 1) release(st, seen, st.pending.shift()!, inOrder);
}

function giveUp(st: ReorderState, seen: SeqRanges, inOrder: Reading[], overdue: (oldest: Reading) => boolean): void {
  while (st.pending.length > 0 && overdue(st.pending[0])) {
    release(st, seen, st.pending.shift()!, inOrder);
    drain(st, seen, inOrder);
  }
}
