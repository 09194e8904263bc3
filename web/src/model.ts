// What every page shows, kept live: the overview's cards and the unresolved alerts, loaded from
// the API and then updated by GET /v1/events (Server-Sent Events). Pages subscribe and re-render.
import { api } from './api';
import { savedKey } from './session';
import type { Alert, Card, LiveVitals, Whoami } from './types';

/** Steps and sleep change slowly: the overview is re-read this often (live vitals and alerts come by SSE). */
const OVERVIEW_REFRESH_MS = 60_000;

export type LiveState = 'connecting' | 'live' | 'reconnecting';

export class Model {
  cards: Card[] = [];
  /** Open and acknowledged alerts by id. */
  alerts = new Map<string, Alert>();
  live: LiveState = 'connecting';
  loaded = false;
  error: string | null = null;
  /** Critical alerts opened since the page was loaded that nobody has looked at yet. */
  unseenCritical: Alert[] = [];
  /** One counter per change, so pages can memoise on it. */
  version = 0;
  private listeners = new Set<() => void>();
  private events: EventSource | null = null;
  private timer: ReturnType<typeof setInterval> | undefined;

  constructor(readonly me: Whoami) {}

  /**
   * The admin key itself: the admin routes (a resident's contacts, escalation policy) take only
   * it, not an API key even of scope `admin` (docs/api.md).
   */
  get isAdminKey(): boolean {
    return this.me.kind === 'admin';
  }

  can(scope: string): boolean {
    return this.me.scopes.includes('admin') || this.me.scopes.includes(scope);
  }

  subscribe(fn: () => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  private changed(): void {
    this.version++;
    for (const fn of this.listeners) fn();
  }

  start(onNewCritical: (alert: Alert) => void): void {
    void this.loadOverview();
    this.timer = setInterval(() => void this.loadOverview(), OVERVIEW_REFRESH_MS);
    this.connect(onNewCritical);
  }

  stop(): void {
    clearInterval(this.timer);
    this.events?.close();
    this.events = null;
  }

  async loadOverview(): Promise<void> {
    try {
      const { residents } = await api<{ residents: Card[] }>('/v1/overview');
      this.cards = residents;
      this.alerts = new Map(residents.flatMap((c) => c.alerts ?? []).map((a) => [a.id, a]));
      this.error = null;
    } catch (err) {
      this.error = (err as Error).message;
    }
    this.loaded = true;
    this.changed();
  }

  /** Applies an alert the user changed here (ack/resolve) without waiting for the event. */
  applyAlert(alert: Alert): void {
    if (alert.state === 'resolved') this.alerts.delete(alert.id);
    else this.alerts.set(alert.id, alert);
    this.unseenCritical = this.unseenCritical.filter((a) => this.alerts.get(a.id)?.state === 'open');
    this.changed();
  }

  markCriticalSeen(): void {
    if (!this.unseenCritical.length) return;
    this.unseenCritical = [];
    this.changed();
  }

  /** The resident's unresolved alerts, most severe first. */
  alertsOf(residentId: string): Alert[] {
    return [...this.alerts.values()].filter((a) => a.residentId === residentId).sort(byUrgency);
  }

  card(residentId: string): Card | undefined {
    return this.cards.find((c) => c.residentId === residentId);
  }

  displayName(residentId: string): string {
    return this.card(residentId)?.name ?? residentId;
  }

  private connect(onNewCritical: (alert: Alert) => void): void {
    // EventSource cannot send headers: the key goes in the query, on this route only (docs/api.md).
    const events = new EventSource(`/v1/events?access_token=${encodeURIComponent(savedKey() ?? '')}`);
    this.events = events;
    events.onopen = () => {
      this.live = 'live';
      this.changed();
    };
    events.onerror = () => {
      // The browser reconnects by itself, sending Last-Event-ID: missed alert changes are replayed.
      this.live = 'reconnecting';
      this.changed();
    };
    const onAlert = (e: MessageEvent) => {
      const { alert } = JSON.parse(e.data as string) as { alert: Alert };
      const isNew = e.type === 'alert.opened' && !this.alerts.has(alert.id);
      this.applyAlert(alert);
      if (isNew && alert.severity === 'critical') {
        this.unseenCritical = [...this.unseenCritical, alert];
        this.changed();
        onNewCritical(alert);
      }
    };
    for (const type of ['alert.opened', 'alert.acknowledged', 'alert.resolved']) events.addEventListener(type, onAlert as EventListener);
    events.addEventListener('vitals', ((e: MessageEvent) => this.applyVitals((JSON.parse(e.data as string) as { vitals: LiveVitals }).vitals)) as EventListener);
    // Too much was missed to replay: read the state again.
    events.addEventListener('reset', () => void this.loadOverview());
  }

  private applyVitals(v: LiveVitals): void {
    const card = this.card(v.residentId);
    if (!card) return;
    const prev = card.lastReading;
    if (prev && Date.parse(prev.ts) > Date.parse(v.ts)) return;
    card.lastReading = {
      deviceId: v.deviceId,
      ts: v.ts,
      receivedAt: v.receivedAt,
      hr: v.hr ?? prev?.hr ?? null,
      spo2: v.spo2 ?? prev?.spo2 ?? null,
      skinTemp: v.skinTemp ?? prev?.skinTemp ?? null,
      battery: v.battery ?? prev?.battery ?? null,
      worn: v.worn ?? prev?.worn ?? null,
      charging: prev?.charging ?? null,
    };
    this.changed();
  }
}

const SEVERITY_RANK: Record<string, number> = { critical: 0, high: 1, medium: 2, low: 3 };

/** Most severe first, then the oldest: what needs a nurse first. */
export function byUrgency(a: Alert, b: Alert): number {
  return (SEVERITY_RANK[a.severity] ?? 9) - (SEVERITY_RANK[b.severity] ?? 9) || Date.parse(a.openedAt) - Date.parse(b.openedAt);
}
