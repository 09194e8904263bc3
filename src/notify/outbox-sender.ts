/**
 * Sends the outbox: claims due rows, hands each to its channel, records the outcome, and
 * schedules retries with exponential backoff (base × 2^(attempt-1), capped at 5 minutes,
 * ±20 % jitter so a recovering receiver is not hit by every retry at once).
 *
 * Escalation: a row whose alert is no longer open is cancelled with the alert's other queued
 * rows; a sent row of a policy's repeating last step queues its next repeat; digest rows due
 * together for one contact and channel go out as one message.
 *
 * Delivery is at-least-once with a stable delivery id: a row is marked `sending` before the
 * request and `sent` after; a crash between the receiver's answer and that mark resends it
 * once, after `stuckAfterMs`, with the same `X-Vigil-Delivery`, which receivers use to
 * deduplicate.
 */
import type { Logger } from 'pino';
import type { Alert, OutboxItem, Store } from '../store/types.js';
import { nextRepeat, type EscalationPayload } from './escalation/escalation-plan.js';
import { PermanentDeliveryError, type Channel } from './types.js';

export interface OutboxSenderOptions {
  store: Store;
  channels: Channel[];
  maxAttempts: number;
  retryBaseMs: number;
  /** A row `sending` for longer than this was abandoned by a dead sender. */
  stuckAfterMs: number;
  log: Logger;
  /** Rows sent concurrently. */
  concurrency?: number;
  /** Poll interval when nothing wakes the sender. */
  pollMs?: number;
  onResult?: (channel: string, ok: boolean) => void;
}

const MAX_BACKOFF_MS = 5 * 60_000;

export class OutboxSender {
  private running = false;
  private loop: Promise<void> | null = null;
  private wakeUp: (() => void) | null = null;
  private readonly channels: Map<string, Channel>;
  private nextStuckCheck = 0;

  constructor(private readonly o: OutboxSenderOptions) {
    this.channels = new Map(o.channels.map((c) => [c.name, c]));
  }

  async start(): Promise<void> {
    this.running = true;
    this.loop = this.run();
  }

  wake(): void {
    this.wakeUp?.();
  }

  async stop(): Promise<void> {
    this.running = false;
    this.wake();
    await this.loop;
  }

  private async run(): Promise<void> {
    while (this.running) {
      let claimed = 0;
      try {
        // Rows another sender claimed and never finished: it died (a live one is done within
        // its timeout). Any worker picks them up, so a killed worker's notifications still go.
        if (Date.now() >= this.nextStuckCheck) {
          await this.o.store.requeueStuckOutbox(Date.now() - this.o.stuckAfterMs, Date.now());
          this.nextStuckCheck = Date.now() + 1000;
        }
        const items = await this.o.store.claimOutbox(Date.now(), this.o.concurrency ?? 16);
        claimed = items.length;
        await Promise.all(bundleDigests(items).map((rows) => this.deliver(rows)));
      } catch (err) {
        this.o.log.error({ err }, 'outbox pass failed');
      }
      if (claimed === 0 && this.running) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, this.o.pollMs ?? 500);
          this.wakeUp = () => {
            clearTimeout(timer);
            resolve();
          };
        });
        this.wakeUp = null;
      }
    }
  }

  /** Sends one row, or one digest of several rows (same contact and channel) as a single message. */
  private async deliver(rows: OutboxItem[]): Promise<void> {
    const { store } = this.o;
    const open: { item: OutboxItem; alert: Alert }[] = [];
    for (const item of rows) {
      const alert = await store.getAlert(item.alertId);
      if (alert?.state === 'open') {
        open.push({ item, alert });
        continue;
      }
      // Escalation stops the moment the alert is acknowledged or resolved: rows not sent yet are cancelled.
      const reason = alert ? `alert ${alert.state}` : 'alert gone';
      await store.completeOutbox(item.id, { ok: false, error: reason, retryAt: Date.now() }, Date.now());
      await store.cancelOutbox(item.alertId, reason, Date.now());
    }
    if (open.length === 0) return;
    const [{ item, alert }] = open;
    const channel = this.channels.get(item.channel);
    try {
      if (!channel) throw new PermanentDeliveryError(`no channel ${item.channel} is configured`);
      const [resident, contact] = await Promise.all([store.getResident(alert.residentId), store.getContact(item.contactId)]);
      const digest = open.length > 1 ? open.map((o) => o.alert) : undefined;
      const { providerId } = await channel.send({ item, alert, resident, contact, digest });
      for (const o of open) {
        await store.completeOutbox(o.item.id, { ok: true, providerId }, Date.now());
        const repeat = nextRepeat(o.item, Date.now());
        if (repeat) await store.enqueueOutbox([repeat]);
      }
      this.o.onResult?.(item.channel, true);
    } catch (err) {
      const error = (err as Error).message;
      const last = err instanceof PermanentDeliveryError || item.attempts >= this.o.maxAttempts;
      const backoff = Math.min(MAX_BACKOFF_MS, this.o.retryBaseMs * 2 ** (item.attempts - 1)) * (0.8 + Math.random() * 0.4);
      for (const o of open) await store.completeOutbox(o.item.id, { ok: false, error, retryAt: last ? null : Math.round(Date.now() + backoff) }, Date.now());
      this.o.onResult?.(item.channel, false);
      this.o.log.warn({ outbox: item.id, rows: open.length, attempt: item.attempts, error, final: last }, 'notification failed');
    }
  }
}

/**
 * Claimed rows as sends: digest rows of one (contact, channel) together, every other row alone.
 * Rows claimed in one pass (up to the sender's concurrency) are bundled; a contact with more
 * notices due at once than that gets more than one digest.
 */
export function bundleDigests(items: OutboxItem[]): OutboxItem[][] {
  const bundles: OutboxItem[][] = [];
  const digests = new Map<string, OutboxItem[]>();
  for (const item of items) {
    if (!(item.payload as EscalationPayload).digest) {
      bundles.push([item]);
      continue;
    }
    const key = `${item.contactId}\n${item.channel}`;
    let bundle = digests.get(key);
    if (!bundle) {
      bundle = [];
      digests.set(key, bundle);
      bundles.push(bundle);
    }
    bundle.push(item);
  }
  return bundles;
}
