/**
 * A reader's place in one partition: an ephemeral pull consumer filtered on the partition's
 * subject (no acks, state in memory, deleted by the server once unused for INACTIVE_MS),
 * pulled with `no_wait` so that a read returns what is there now instead of waiting for more.
 *
 * Why a consumer rather than direct gets: a `next_by_subj` direct get returns one message per
 * round trip, and each request needs the previous answer's sequence, so a batch of 500 costs
 * 500 sequential round trips. One pull streams the whole batch, and the consumer keeps its
 * place in the subject between batches, which is how every group reads (each batch starts
 * where the last ended). Batched direct gets would be stateless, but need server 2.11.
 *
 * The pull request is the raw JetStream protocol (`CONSUMER.MSG.NEXT` with `no_wait`): the
 * client library's `fetch` always waits at least its `expires` for a full batch.
 */
import { createInbox, nanos, type Msg, type NatsConnection } from '@nats-io/transport-node';
import { AckPolicy, DeliverPolicy, JetStreamApiCodes, JetStreamApiError, type ConsumerConfig, type JetStreamManager } from '@nats-io/jetstream';

/** Long enough for any pause between reads of a live group; short enough to clean up after a crash. */
const INACTIVE_MS = 60_000;
/** A cursor unused this long is replaced rather than trusted: the server may be removing it. */
export const STALE_MS = INACTIVE_MS / 2;

export interface Delivered {
  /** Stream sequence. */
  seq: number;
  /** JetStream's store time, epoch ms. */
  timestamp: number;
  data: Uint8Array;
}

/** The consumer is gone (deleted, expired, server restarted) or a delivery went missing: make a new one. */
export class CursorLostError extends Error {}

class PullTimeoutError extends Error {}

export type CursorStart = { after: number | null } | { time: number };

/**
 * `$JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<ts ns>.<pending>` (servers before
 * 2.10), or with `<domain>.<account hash>` after ACK and a trailing token (later servers).
 */
function parseAckSubject(reply: string): { seq: number; delivery: number; timestamp: number; pending: number } | null {
  const t = reply.split('.');
  if (t.length === 9) t.splice(2, 0, '_', '');
  if (t.length < 11 || t[0] !== '$JS' || t[1] !== 'ACK') return null;
  const ns = t[9];
  return { seq: Number(t[7]), delivery: Number(t[8]), timestamp: ns.length > 6 ? Number(ns.slice(0, -6)) : 0, pending: Number(t[10]) };
}

export class PartitionCursor {
  /** Consumer sequence of the next delivery: a jump means a message was lost on the way. */
  private nextDelivery = 1;
  lastUsed = Date.now();
  /** Messages on the subject after `after`, as the last pull reported them (null: not known yet). */
  pending: number | null = null;

  private constructor(
    private readonly nc: NatsConnection,
    private readonly stream: string,
    readonly name: string,
    /** The stream sequence the next pull continues after (null: from the oldest kept). */
    public after: number | null,
  ) {}

  static async open(nc: NatsConnection, jsm: JetStreamManager, stream: string, subject: string, start: CursorStart): Promise<PartitionCursor> {
    const from: Partial<ConsumerConfig> =
      'time' in start
        ? { deliver_policy: DeliverPolicy.StartTime, opt_start_time: new Date(start.time).toISOString() }
        : start.after === null
          ? { deliver_policy: DeliverPolicy.All }
          : { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: start.after + 1 };
    const info = await jsm.consumers.add(stream, {
      ...from,
      ack_policy: AckPolicy.None,
      filter_subject: subject,
      mem_storage: true,
      num_replicas: 1,
      inactive_threshold: nanos(INACTIVE_MS),
    });
    return new PartitionCursor(nc, stream, info.name, 'time' in start ? null : start.after);
  }

  /**
   * Up to `limit` messages after `this.after`, in order; fewer (or none) when no more are
   * stored yet. Rejects with CursorLostError when the consumer cannot be trusted any more.
   */
  async pull(jsm: JetStreamManager, limit: number, timeoutMs: number): Promise<Delivered[]> {
    this.lastUsed = Date.now();
    try {
      return await this.pullOnce(limit, timeoutMs);
    } catch (err) {
      if (!(err instanceof PullTimeoutError)) throw err;
      // JetStream answers a pull on a consumer it removed with silence, not an error.
      const gone = await jsm.consumers.info(this.stream, this.name).then(
        () => false,
        (e: unknown) => e instanceof JetStreamApiError && e.code === JetStreamApiCodes.ConsumerNotFound,
      );
      throw gone ? new CursorLostError(`consumer ${this.name} is gone`) : err;
    }
  }

  private pullOnce(limit: number, timeoutMs: number): Promise<Delivered[]> {
    return new Promise((resolve, reject) => {
      const out: Delivered[] = [];
      const inbox = createInbox();
      let done = false;
      const finish = (err?: Error) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        sub.unsubscribe();
        if (err) return reject(err);
        if (out.length) this.after = out[out.length - 1].seq;
        resolve(out);
      };
      const onMessage = (err: Error | null, msg: Msg) => {
        if (err) return finish(err);
        const code = msg.headers?.code ?? 0;
        if (code === 404 || code === 408) {
          this.pending = 0;
          return finish(); // no_wait: nothing (more) stored now
        }
        if (code === 100) return; // heartbeat / flow control, not requested but harmless
        if (code !== 0) return finish(new CursorLostError(`pull answered ${code} ${msg.headers?.description ?? ''}`));
        const info = msg.reply ? parseAckSubject(msg.reply) : null;
        if (!info) return finish(new CursorLostError(`unexpected message on ${msg.subject}`));
        if (info.delivery !== this.nextDelivery) return finish(new CursorLostError('a delivery went missing'));
        this.nextDelivery++;
        this.pending = Number.isFinite(info.pending) ? info.pending : null;
        out.push({ seq: info.seq, timestamp: info.timestamp, data: msg.data });
        if (out.length >= limit) finish();
      };
      const sub = this.nc.subscribe(inbox, { callback: onMessage });
      const timer = setTimeout(() => finish(new PullTimeoutError(`no answer from JetStream within ${timeoutMs} ms`)), timeoutMs);
      this.nc.publish(`$JS.API.CONSUMER.MSG.NEXT.${this.stream}.${this.name}`, JSON.stringify({ batch: limit, no_wait: true }), {
        reply: inbox,
      });
    });
  }

  /** Best effort: the server removes an unused consumer after INACTIVE_MS anyway. */
  async close(jsm: JetStreamManager): Promise<void> {
    await jsm.consumers.delete(this.stream, this.name).catch(() => false);
  }
}
