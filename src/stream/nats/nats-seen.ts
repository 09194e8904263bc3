/**
 * The dedupe state on the server: per device, the seqs it has sent, as `SeqRanges` JSON under
 * its key in the KV bucket `<stream>_seen` (one revision per key, TTL = retention; every write
 * refreshes the TTL, so a device's ranges live at least as long as its newest reading).
 *
 * Invariants:
 * - A seq is recorded only after JetStream acknowledged the record carrying it. Never before:
 *   a crash in between would then lose the reading, where this order can at worst append it
 *   twice, which consumers absorb (DESIGN §3.2).
 * - Writes are compare-and-set on the key's revision (`Nats-Expected-Last-Subject-Sequence`),
 *   so processes appending for the same device never erase each other's seqs: a conflict
 *   re-reads the key and merges.
 */
import { JetStreamApiCodes, JetStreamApiError, type JetStreamClient, type JetStreamManager } from '@nats-io/jetstream';
import { SeqRanges } from '../../core/seq-ranges.js';
import type { NatsLayout } from './nats-layout.js';

export interface Seen {
  ranges: SeqRanges;
  /** The key's revision (its stream sequence), 0 when the device has none. */
  revision: number;
}

/** Conflicts come only from other processes appending for the same device at the same moment. */
const MAX_CAS_ATTEMPTS = 10;

/**
 * A KV key is subject tokens of `[-/_=.A-Za-z0-9]`; a deviceId may hold dots (token separators,
 * invalid at either end or doubled), so anything but `[A-Za-z0-9_-]` becomes `=<hex byte>`.
 */
export function keyOf(deviceId: string): string {
  if (/^[A-Za-z0-9_-]+$/.test(deviceId)) return deviceId;
  let key = '';
  for (const byte of Buffer.from(deviceId, 'utf8')) {
    const c = String.fromCharCode(byte);
    key += /[A-Za-z0-9_-]/.test(c) ? c : `=${byte.toString(16).padStart(2, '0')}`;
  }
  return key;
}

export class SeenStore {
  constructor(
    private readonly js: JetStreamClient,
    private readonly jsm: JetStreamManager,
    private readonly layout: NatsLayout,
    private readonly timeoutMs: number,
  ) {}

  private subjectOf(deviceId: string): string {
    return `${this.layout.kvPrefix}.${keyOf(deviceId)}`;
  }

  /** Reads through the stream leader: a direct get may be answered by a lagging replica. */
  async load(deviceId: string): Promise<Seen> {
    const msg = await this.jsm.streams.getMessage(this.layout.kvStream, { last_by_subj: this.subjectOf(deviceId) });
    if (!msg) return { ranges: new SeqRanges(), revision: 0 };
    return { ranges: SeqRanges.parse(msg.string()), revision: msg.seq };
  }

  /** Adds `seqs` to the device's ranges as read in `base`, merging with concurrent writers. */
  async record(deviceId: string, seqs: number[], base: Seen): Promise<void> {
    const subject = this.subjectOf(deviceId);
    let current = base;
    for (let attempt = 1; ; attempt++) {
      const next = new SeqRanges(current.ranges.toJSON().slice());
      let changed = false;
      for (const seq of seqs) changed = next.add(seq) || changed;
      if (!changed) return;
      try {
        await this.js.publish(subject, JSON.stringify(next), {
          expect: { lastSubjectSequence: current.revision },
          timeout: this.timeoutMs,
        });
        return;
      } catch (err) {
        const conflict = err instanceof JetStreamApiError && err.code === JetStreamApiCodes.StreamWrongLastSequence;
        if (!conflict || attempt >= MAX_CAS_ATTEMPTS) throw err;
        current = await this.load(deviceId);
      }
    }
  }
}
