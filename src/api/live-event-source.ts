/**
 * What `GET /v1/events` (live-events.ts) streams: alert state changes and the latest vitals per
 * resident, with a bounded replay buffer for `Last-Event-ID`.
 *
 * Alerts — derived from the store, so that it works whatever process changed them (the alerts
 * group's worker thread, another `vigil worker` or `vigil api` process, an ack by SMS). While
 * anybody listens (and for `replayMs` after the last one left, so reconnects can resume) the
 * source polls every `pollMs` (1 s): the open and the acknowledged alerts, and the 100 most
 * recently opened of any state (catches an alert opened and resolved between two polls); an
 * alert it knew as unresolved that is in neither list is read by id. Each transition it sees
 * becomes one event, once:
 *   alert.opened       at detectedAt (when Vigil raised it, processing time)
 *   alert.acknowledged at acknowledgedAt
 *   alert.resolved     at resolvedAt
 * with the id `<at epoch ms>-<alertId>-<opened|acknowledged|resolved>`: derived from the alert
 * alone, so every process polling the same store gives the same change the same id, and the
 * time in it lets another process resume by time. The first poll only learns the current state
 * (no events); a transition older than `replayMs` is state, not news, and is never emitted.
 * A request that changes state through this process (an ack over HTTP) pokes an immediate poll.
 *
 * Resuming (`Last-Event-ID`): an id still in the buffer (the last `replayMs`, at most
 * `replayMax` events) replays exactly what followed it. An id this process never emitted (the
 * client was on another process) but whose time is within what the buffer covers replays every
 * buffered event from `RESUME_SLACK_MS` before that time (delivery is at least once: clients
 * dedupe by id). Anything else — an id older than the buffer, a process that started polling
 * after it, an unparsable id — gets a `reset` event: re-read the state (GET /v1/alerts).
 *
 * Vitals — process-local: `tapStream` wraps the stream producer the ingest (HTTP and MQTT) of
 * THIS process appends to, and only while somebody listens does it record, per append entry,
 * a reference to the entry's readings in a map by resident (one Map set, nothing per reading;
 * nothing at all when nobody listens). Every second the residents with new readings whose last vitals event is at least
 * `vitalsEveryMs` (5 s) old get one `vitals` event, parsed then from the newest readings of
 * the batch (fields the batch lacks keep their previous value). Vitals events carry no id:
 * they are not replayed (a reconnect gets the latest values of each resident instead) and do
 * not move a client's Last-Event-ID. Behind a load balancer with several `vigil api`
 * processes, a process only sees the vitals of the devices that reach it.
 */
import type { Logger } from 'pino';
import type { Alert, Store } from '../store/types.js';
import type { AppendEntry, AppendResult, StreamProducer } from '../stream/types.js';
import { alertView } from './alerts-api.js';
import type { VitalsView } from './views.js';

export type AlertEventType = 'alert.opened' | 'alert.acknowledged' | 'alert.resolved';
export type LiveEventType = AlertEventType | 'vitals' | 'reset';

/** Who listens: the scopes of their key and the residents it is limited to (null: all). */
export interface LivePrincipal {
  scopes: readonly string[];
  residentIds: readonly string[] | null;
}

/** The admin key: sees everything. */
export const ADMIN_PRINCIPAL: LivePrincipal = { scopes: ['admin'], residentIds: null };

export interface LiveEvent {
  /** The SSE id (resumable cursor); null for vitals, which are not replayed. */
  id: string | null;
  type: LiveEventType;
  /** The resident the event is about; null for `reset` (sent to everyone). */
  residentId: string | null;
  /** When the change happened, epoch ms. */
  at: number;
  /** The `data:` line: one line of JSON. */
  data: string;
  /**
   * For a principal without `residents:read`: `data` without the free text people type (an
   * alert's acknowledgedBy and ackNote), as the alerts API shows it to such a key.
   */
  pseudonymousData?: string;
}

/**
 * Whether `principal` may receive `event`: alerts need `alerts:read`, vitals `vitals:read`
 * (`admin` has every scope), and a principal limited to residents sees only theirs.
 */
export function canSee(event: Pick<LiveEvent, 'type' | 'residentId'>, principal: LivePrincipal): boolean {
  if (event.type === 'reset') return true;
  const scope = event.type === 'vitals' ? 'vitals:read' : 'alerts:read';
  if (!principal.scopes.includes('admin') && !principal.scopes.includes(scope)) return false;
  return principal.residentIds === null || (event.residentId !== null && principal.residentIds.includes(event.residentId));
}

/** Whether the principal may receive anything at all: alerts or vitals. */
export const mayListen = (principal: LivePrincipal): boolean =>
  ['admin', 'alerts:read', 'vitals:read'].some((scope) => principal.scopes.includes(scope));

/** The data line of `event` for `principal`: personal free text only with `residents:read` (or `admin`). */
export function eventData(event: LiveEvent, principal: LivePrincipal): string {
  if (event.pseudonymousData === undefined || principal.scopes.includes('admin') || principal.scopes.includes('residents:read')) return event.data;
  return event.pseudonymousData;
}

export interface LiveEventSourceOptions {
  log: Logger;
  /** Store poll period while active. Default 1000. */
  pollMs?: number;
  /** How long events stay replayable, and how long polling goes on after the last subscriber left. Default 10 min. */
  replayMs?: number;
  /** At most this many events are kept for replay. Default 10 000. */
  replayMax?: number;
  /** At most one vitals event per resident per this period. Default 5000. */
  vitalsEveryMs?: number;
  /** Latest vitals older than this are forgotten (not sent to new subscribers). Default 10 min. */
  vitalsTtlMs?: number;
  now?: () => number;
}

export interface LiveSubscriber {
  principal: LivePrincipal;
  send(event: LiveEvent): void;
}

/** A time-based resume replays from this long before the id's time: stores commit a change a little after its timestamp. */
export const RESUME_SLACK_MS = 10_000;
/** Page size of the open / acknowledged lists (the stores' maximum). */
const LIST_LIMIT = 1000;
/** The most recently opened alerts of any state, read every poll. */
const RECENT_LIMIT = 100;
/** Alerts that vanished from the open/acknowledged lists read by id per poll, at most. */
const VANISHED_PER_POLL = 100;

type AlertStore = Pick<Store, 'listAlerts' | 'getAlert'>;

interface Tracked {
  acknowledged: boolean;
  resolved: boolean;
  openedAt: number;
  /** When it was resolved (pruning), null while unresolved. */
  resolvedAt: number | null;
}

interface PendingVitals {
  deviceId: string;
  /** The append entry's readings (JSON), parsed only when an event is due. */
  readings: string[];
}

const STATE_RANK: Record<Alert['state'], number> = { open: 0, acknowledged: 1, resolved: 2 };
const iso = (ms: number) => new Date(ms).toISOString();

/** The epoch ms a `Last-Event-ID` starts with, or null. */
export function eventIdTime(id: string): number | null {
  const m = /^(\d{1,15})-/.exec(id);
  return m ? Number(m[1]) : null;
}

export class LiveEventSource {
  private readonly log: Logger;
  private readonly pollMs: number;
  private readonly replayMs: number;
  private readonly replayMax: number;
  private readonly vitalsEveryMs: number;
  private readonly vitalsTtlMs: number;
  private readonly now: () => number;

  private readonly subscribers = new Set<LiveSubscriber>();
  /** Alerts by id: what the last polls saw of them. */
  private readonly known = new Map<string, Tracked>();
  /** Replayable events in emission order; `ids` maps an id to its absolute position (`base` is buffer[0]'s). */
  private buffer: LiveEvent[] = [];
  private readonly ids = new Map<string, number>();
  private base = 0;
  /** Resume by time is sound from this epoch ms on (null: not polling, nothing is covered). */
  private coversSince: number | null = null;

  /** Polling: started (the first poll's promise), the next poll's timer, the poll running. */
  private baseline: Promise<void> | null = null;
  private pollTimer: NodeJS.Timeout | null = null;
  private running = false;
  private polling: Promise<void> | null = null;
  /** A poke came during a poll: poll again at once after it. */
  private pollAgain = false;
  private idleSince: number | null = null;
  private pollFailures = 0;

  private readonly pendingVitals = new Map<string, PendingVitals>();
  private readonly vitals = new Map<string, { view: VitalsView; tsMs: number; sentAt: number }>();
  private vitalsTimer: NodeJS.Timeout | null = null;
  private closed = false;

  constructor(
    private readonly store: AlertStore,
    opts: LiveEventSourceOptions,
  ) {
    this.log = opts.log;
    this.pollMs = opts.pollMs ?? 1000;
    this.replayMs = opts.replayMs ?? 600_000;
    this.replayMax = opts.replayMax ?? 10_000;
    this.vitalsEveryMs = opts.vitalsEveryMs ?? 5000;
    this.vitalsTtlMs = opts.vitalsTtlMs ?? 600_000;
    this.now = opts.now ?? Date.now;
  }

  /** Polling alerts: from the first subscriber until `replayMs` after the last one left. */
  get active(): boolean {
    return this.baseline !== null;
  }

  get subscriberCount(): number {
    return this.subscribers.size;
  }

  /**
   * Adds a subscriber: first what it missed since `lastEventId` (or a `reset`), then the latest
   * vitals it may see, then live events. Rejects when the store cannot be read to start polling.
   */
  async subscribe(sub: LiveSubscriber, lastEventId: string | null): Promise<() => void> {
    if (this.closed) throw new Error('live events are closed');
    this.idleSince = null;
    await this.start();
    // From here on synchronous: nothing is emitted between the replay and the registration.
    const missed = lastEventId ? this.replayAfter(lastEventId) : [];
    for (const event of missed) if (canSee(event, sub.principal)) sub.send(event);
    for (const { view, tsMs } of this.vitals.values()) {
      const event = vitalsEvent(view, tsMs);
      if (canSee(event, sub.principal)) sub.send(event);
    }
    this.subscribers.add(sub);
    this.startVitalsTimer();
    return () => {
      if (this.subscribers.delete(sub) && this.subscribers.size === 0) this.idleSince = this.now();
    };
  }

  /** Events after `lastEventId`, or a single `reset` when they cannot be known. */
  replayAfter(lastEventId: string): LiveEvent[] {
    const position = this.ids.get(lastEventId);
    if (position !== undefined) return this.buffer.slice(position - this.base + 1);
    const t = eventIdTime(lastEventId);
    if (t !== null && this.coversSince !== null && t >= this.coversSince) {
      return this.buffer.filter((e) => e.at >= t - RESUME_SLACK_MS && e.id !== lastEventId);
    }
    const now = this.now();
    const reason = t === null ? 'not an event id of this API' : 'the events after this id are not kept';
    return [
      {
        id: `${now}-reset`,
        type: 'reset',
        residentId: null,
        at: now,
        data: JSON.stringify({ event: 'reset', at: iso(now), reason, lastEventId }),
      },
    ];
  }

  /** Polls the store soon (a request of this process may have changed an alert). */
  poke(): void {
    if (!this.baseline || this.closed) return;
    if (this.running) this.pollAgain = true;
    else this.schedule(0);
  }

  /** The producer the ingest appends through: records the latest readings per resident while somebody listens. */
  tapStream(producer: StreamProducer): StreamProducer {
    return {
      append: async (entries) => {
        const results = await producer.append(entries);
        if (this.subscribers.size > 0) this.recordReadings(entries, results);
        return results;
      },
    };
  }

  /** One Map set per entry (not per reading); entries whose readings were all duplicates are skipped. */
  recordReadings(entries: AppendEntry[], results?: AppendResult[]): void {
    for (let i = 0; i < entries.length; i++) {
      const entry = entries[i];
      if (results?.[i] && results[i].duplicates.length === entry.readings.length) continue;
      this.pendingVitals.set(entry.residentId, { deviceId: entry.deviceId, readings: entry.readings });
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    this.stop();
    this.subscribers.clear();
    await this.polling;
  }

  // --- alerts --------------------------------------------------------------------------------

  private start(): Promise<void> {
    if (!this.baseline) {
      this.running = true;
      const baseline = this.pollNow(true).then(
        () => {
          this.running = false;
          this.schedule();
        },
        (err: unknown) => {
          this.running = false;
          if (this.baseline === baseline) this.baseline = null;
          throw err;
        },
      );
      this.baseline = baseline;
    }
    return this.baseline;
  }

  /** Stops polling and recording; the buffer is dropped (a later start cannot vouch for the gap). */
  private stop(): void {
    if (this.pollTimer) clearTimeout(this.pollTimer);
    if (this.vitalsTimer) clearInterval(this.vitalsTimer);
    this.pollTimer = null;
    this.vitalsTimer = null;
    this.baseline = null;
    this.coversSince = null;
    this.known.clear();
    this.buffer = [];
    this.ids.clear();
    this.pendingVitals.clear();
    this.vitals.clear();
  }

  /** The next poll in `pollMs`; after failures, backing off up to 30 s (a store that is down is not hammered). */
  private schedule(delay = this.pollFailures === 0 ? this.pollMs : Math.min(30_000, this.pollMs * 2 ** this.pollFailures)): void {
    if (this.pollTimer) clearTimeout(this.pollTimer);
    this.pollTimer = null;
    if (this.closed || !this.baseline) return;
    this.pollTimer = setTimeout(() => this.tick(), delay);
    this.pollTimer.unref();
  }

  /** One poll, then the next one scheduled; at most one runs at a time (`running`). */
  private tick(): void {
    this.pollTimer = null;
    if (this.closed || !this.baseline || this.running) return;
    if (this.subscribers.size === 0 && this.idleSince !== null && this.now() - this.idleSince >= this.replayMs) {
      this.stop();
      return;
    }
    this.running = true;
    this.pollAgain = false;
    this.polling = this.pollNow(false).then(
      () => {
        this.pollFailures = 0;
      },
      (err: unknown) => {
        this.pollFailures++;
        this.log.warn({ err }, 'live events: cannot read alerts from the store; retrying');
      },
    );
    void this.polling.then(() => {
      this.running = false;
      this.polling = null;
      this.schedule(this.pollAgain && this.pollFailures === 0 ? 0 : undefined);
    });
  }

  private async pollNow(first: boolean): Promise<void> {
    const startedAt = this.now();
    const [open, acknowledged, recent] = await Promise.all([
      this.store.listAlerts({ state: 'open', limit: LIST_LIMIT }),
      this.store.listAlerts({ state: 'acknowledged', limit: LIST_LIMIT }),
      this.store.listAlerts({ limit: RECENT_LIMIT }),
    ]);
    if (this.closed || (!first && !this.baseline)) return;
    // The three reads are not one snapshot: of two versions of an alert, the later state wins (states only advance).
    const seen = new Map<string, Alert>();
    for (const list of [recent, open, acknowledged]) {
      for (const a of list) {
        const had = seen.get(a.id);
        if (!had || STATE_RANK[a.state] > STATE_RANK[had.state]) seen.set(a.id, a);
      }
    }
    // Known unresolved alerts in neither list were resolved (or erased): read them by id. A full
    // page hides the alerts opened before its last row, so only those after it can have vanished.
    const floor = Math.max(pageFloor(open), pageFloor(acknowledged));
    const vanished: string[] = [];
    for (const [id, t] of this.known) {
      if (!t.resolved && !seen.has(id) && t.openedAt >= floor && vanished.length < VANISHED_PER_POLL) vanished.push(id);
    }
    const reread = await Promise.all(vanished.map((id) => this.store.getAlert(id)));
    vanished.forEach((id, i) => {
      const a = reread[i];
      if (a) seen.set(id, a);
      else this.known.delete(id);
    });

    const now = this.now();
    const oldest = now - this.replayMs;
    const fresh: { at: number; kind: 'opened' | 'acknowledged' | 'resolved'; alert: Alert }[] = [];
    for (const a of seen.values()) {
      const was = this.known.get(a.id);
      this.known.set(a.id, { acknowledged: a.acknowledgedAt !== null, resolved: a.state === 'resolved', openedAt: a.openedAt, resolvedAt: a.resolvedAt });
      if (first) continue;
      if (!was) fresh.push({ at: a.detectedAt, kind: 'opened', alert: a });
      if (a.acknowledgedAt !== null && !was?.acknowledged) fresh.push({ at: a.acknowledgedAt, kind: 'acknowledged', alert: a });
      if (a.state === 'resolved' && !was?.resolved) fresh.push({ at: a.resolvedAt ?? now, kind: 'resolved', alert: a });
    }
    // Resolved alerts are forgotten once out of the recent page and of the replay window: then
    // none of their transitions would be emitted again anyway.
    const inRecent = new Set(recent.map((a) => a.id));
    for (const [id, t] of this.known) {
      if (t.resolved && !inRecent.has(id) && (t.resolvedAt ?? 0) < oldest) this.known.delete(id);
    }
    if (first) {
      this.coversSince = startedAt;
      return;
    }
    fresh.sort((x, y) => x.at - y.at || (x.alert.id < y.alert.id ? -1 : x.alert.id > y.alert.id ? 1 : 0));
    for (const f of fresh) {
      if (f.at < oldest) continue; // state, not news
      const type: AlertEventType = `alert.${f.kind}`;
      const view = alertView(f.alert);
      this.emit({
        id: `${f.at}-${f.alert.id}-${f.kind}`,
        type,
        residentId: f.alert.residentId,
        at: f.at,
        data: JSON.stringify({ event: type, alert: view }),
        pseudonymousData: JSON.stringify({ event: type, alert: { ...view, acknowledgedBy: null, ackNote: null } }),
      });
    }
    this.evict(oldest);
  }

  private emit(event: LiveEvent): void {
    if (event.id !== null) {
      if (this.ids.has(event.id)) return;
      this.ids.set(event.id, this.base + this.buffer.length);
      this.buffer.push(event);
    }
    for (const sub of this.subscribers) {
      if (!canSee(event, sub.principal)) continue;
      try {
        sub.send(event);
      } catch (err) {
        this.log.warn({ err }, 'live events: a subscriber failed');
      }
    }
  }

  /** Drops events older than the window or beyond the maximum; resume by time is sound only after them. */
  private evict(oldest: number): void {
    let n = 0;
    while (n < this.buffer.length && (this.buffer.length - n > this.replayMax || this.buffer[n].at < oldest)) n++;
    if (n === 0) return;
    for (const e of this.buffer.slice(0, n)) {
      this.ids.delete(e.id!);
      this.coversSince = Math.max(this.coversSince ?? 0, e.at + 1);
    }
    this.buffer = this.buffer.slice(n);
    this.base += n;
  }

  // --- vitals --------------------------------------------------------------------------------

  private startVitalsTimer(): void {
    if (this.vitalsTimer) return;
    this.vitalsTimer = setInterval(() => this.flushVitals(), Math.min(1000, this.vitalsEveryMs));
    this.vitalsTimer.unref();
  }

  /** One event per resident with new readings whose last vitals event is old enough. */
  flushVitals(): void {
    const now = this.now();
    for (const [residentId, pending] of this.pendingVitals) {
      const last = this.vitals.get(residentId);
      if (last && now - last.sentAt < this.vitalsEveryMs) continue;
      this.pendingVitals.delete(residentId);
      const merged = mergeVitals(residentId, pending, last?.view ?? null, last?.tsMs ?? -Infinity);
      if (!merged) continue;
      this.vitals.set(residentId, { view: merged.view, tsMs: merged.tsMs, sentAt: now });
      if (this.subscribers.size > 0) this.emit(vitalsEvent(merged.view, merged.tsMs));
    }
    for (const [residentId, v] of this.vitals) if (now - v.sentAt > this.vitalsTtlMs) this.vitals.delete(residentId);
  }
}

function pageFloor(page: Alert[]): number {
  return page.length >= LIST_LIMIT ? page[page.length - 1].openedAt : -Infinity;
}

function vitalsEvent(view: VitalsView, tsMs: number): LiveEvent {
  return { id: null, type: 'vitals', residentId: view.residentId, at: tsMs, data: JSON.stringify({ event: 'vitals', vitals: view }) };
}

type VitalsField = 'hr' | 'spo2' | 'skinTemp' | 'battery' | 'worn';
const VITALS_FIELDS: readonly VitalsField[] = ['hr', 'spo2', 'skinTemp', 'battery', 'worn'];

/**
 * The batch's newest values over the previous ones: readings are read from the last (a batch is
 * in the band's order) until every field has a value; an older batch than the last one sent
 * (late data) changes nothing.
 */
function mergeVitals(residentId: string, pending: PendingVitals, previous: VitalsView | null, previousTs: number): { view: VitalsView; tsMs: number } | null {
  let newest: { ts: number; receivedAt: number } | null = null;
  const values: Partial<Record<VitalsField, number | boolean>> = {};
  let missing = VITALS_FIELDS.length;
  for (let i = pending.readings.length - 1; i >= 0 && missing > 0; i--) {
    let r: Record<string, unknown>;
    try {
      r = JSON.parse(pending.readings[i]) as Record<string, unknown>;
    } catch {
      continue;
    }
    if (typeof r.ts !== 'number') continue;
    if (!newest) newest = { ts: r.ts, receivedAt: typeof r.receivedAt === 'number' ? r.receivedAt : r.ts };
    for (const f of VITALS_FIELDS) {
      if (values[f] === undefined && (typeof r[f] === 'number' || typeof r[f] === 'boolean')) {
        values[f] = r[f] as number | boolean;
        missing--;
      }
    }
  }
  if (!newest || newest.ts < previousTs) return null;
  const keep = previous?.deviceId === pending.deviceId ? previous : null;
  const pick = <F extends VitalsField>(f: F) => (values[f] ?? keep?.[f] ?? null) as VitalsView[F];
  return {
    tsMs: newest.ts,
    view: {
      residentId,
      deviceId: pending.deviceId,
      ts: iso(newest.ts),
      receivedAt: iso(newest.receivedAt),
      hr: pick('hr'),
      spo2: pick('spo2'),
      skinTemp: pick('skinTemp'),
      battery: pick('battery'),
      worn: pick('worn'),
    },
  };
}
