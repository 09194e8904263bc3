/**
 * What the dashboard (and any app showing a whole home at a glance) reads in one request:
 *
 * - `GET /v1/whoami` (any valid key): the caller's kind, scopes and residents, so a client
 *   shows only what the key may do (the dashboard hides "Resolve" without `admin`).
 * - `GET /v1/overview` (any valid key): one card per resident the key may see — the newest
 *   reading (heart rate, SpO2, skin temperature, battery, worn, charging, when), today's
 *   steps, last night's sleep and the unresolved alerts. Each part is there only with the
 *   scope that guards it elsewhere in the API, else null: name (`residents:read`), vitals
 *   (`vitals:read`), band state and alerts (`alerts:read`), steps (`activity:read`), sleep
 *   (`sleep:read`). Cards come sorted as a nurse reads them: unresolved alerts first (most
 *   severe, then oldest), then by name (or id).
 *
 * Live values then come over `GET /v1/events`; the overview is re-read now and then for steps
 * and sleep, which change slowly.
 */
import type { FastifyInstance } from 'fastify';
import { clockFor, isoDay, knownTimeZone } from '../core/local-time.js';
import type { Alert, Resident, Severity, Store } from '../store/types.js';
import type { ReadingRow } from '../warehouse/types.js';
import { alertSchema, alertView } from './alerts-api.js';
import { hasScope, type ApiAccess, type Principal, type Scope } from './principal.js';
import { latestReading } from './third-party-api.js';
import type { OverviewCard } from './views.js';
import type { WarehouseQueries } from './warehouse-api.js';

/** The most residents one overview covers: a care home, not a city. */
export const OVERVIEW_MAX_RESIDENTS = 2_000;
/** Where the newest reading is looked for first; older ones take the slow path (latestReading). */
const RECENT_MS = 10 * 60_000;
/** Warehouse queries in flight at once for one overview. */
const CONCURRENCY = 8;
const SEVERITY_RANK: Record<Severity, number> = { critical: 0, high: 1, medium: 2, low: 3 };

const nullable = (type: string) => ({ type: [type, 'null'] });

const cardSchema = {
  type: 'object',
  properties: {
    residentId: { type: 'string' },
    name: { ...nullable('string'), description: 'Only with residents:read.' },
    timezone: { type: 'string' },
    lastReading: {
      type: ['object', 'null'],
      description: 'The newest reading in the warehouse (last 30 days). Vitals only with vitals:read, band state only with alerts:read.',
      properties: {
        deviceId: { type: 'string' },
        ts: { type: 'string' },
        receivedAt: { type: 'string' },
        hr: nullable('number'),
        spo2: nullable('number'),
        skinTemp: nullable('number'),
        battery: nullable('number'),
        worn: nullable('boolean'),
        charging: nullable('boolean'),
      },
    },
    stepsToday: { ...nullable('integer'), description: "Steps on the resident's local day so far; only with activity:read." },
    lastNight: {
      type: ['object', 'null'],
      description: 'The newest sleep session of the last two nights; only with sleep:read.',
      properties: {
        night: { type: 'string' },
        start: { type: 'string' },
        end: { type: 'string' },
        totalSleepMin: { type: 'number' },
        efficiency: { type: 'number' },
        awakenings: { type: 'integer' },
      },
    },
    alerts: {
      type: ['array', 'null'],
      description: 'Open and acknowledged alerts, most severe first; only with alerts:read.',
      items: alertSchema,
    },
  },
} as const;

/** Runs `fn` over `items` with at most `limit` in flight, results in order. */
async function mapLimited<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

async function visibleResidents(store: Store, principal: Principal): Promise<Resident[]> {
  if (principal.residentIds !== null) {
    const found = await Promise.all(principal.residentIds.slice(0, OVERVIEW_MAX_RESIDENTS).map((id) => store.getResident(id)));
    return found.filter((r): r is Resident => r !== null);
  }
  const all: Resident[] = [];
  let after: string | undefined;
  while (all.length < OVERVIEW_MAX_RESIDENTS) {
    const page = await store.listResidents({ limit: 500, after });
    all.push(...page);
    if (page.length < 500) break;
    after = page[page.length - 1].id;
  }
  return all.slice(0, OVERVIEW_MAX_RESIDENTS);
}

/** The newest reading: the last ten minutes first (one small query for a band that is on), else the slow path. */
async function newestReading(queries: WarehouseQueries, residentId: string, now: number): Promise<ReadingRow | null> {
  // Readings may be stamped a little ahead of the server's clock; one page of the last ten minutes holds them all.
  const recent = await queries.readings({ residentId, from: now - RECENT_MS, to: now + 60 * 60_000, limit: 10_000 });
  return recent.length ? recent[recent.length - 1] : latestReading(queries, residentId, now);
}

/** Most severe first, then the oldest: what needs a nurse first. */
const byUrgency = (a: Alert, b: Alert) => SEVERITY_RANK[a.severity] - SEVERITY_RANK[b.severity] || a.openedAt - b.openedAt;

function compareCards(a: { card: OverviewCard; top: Alert | undefined }, b: { card: OverviewCard; top: Alert | undefined }): number {
  if (a.top && b.top) return byUrgency(a.top, b.top);
  if (a.top || b.top) return a.top ? -1 : 1;
  return (a.card.name ?? a.card.residentId).localeCompare(b.card.name ?? b.card.residentId);
}

export interface OverviewDeps {
  store: Store;
  /** Null when no warehouse is readable from this process: cards then carry no reading, steps or sleep. */
  queries: WarehouseQueries | null;
  access: ApiAccess;
}

async function buildOverview(deps: Pick<OverviewDeps, 'store' | 'queries'>, principal: Principal, now = Date.now()): Promise<OverviewCard[]> {
  const { store, queries } = deps;
  const may = (scope: Scope) => hasScope(principal, scope);
  const residents = await visibleResidents(store, principal);
  const unresolved = new Map<string, Alert[]>();
  if (may('alerts:read')) {
    const [open, acknowledged] = await Promise.all([store.listAlerts({ state: 'open', limit: 10_000 }), store.listAlerts({ state: 'acknowledged', limit: 10_000 })]);
    for (const a of [...open, ...acknowledged]) {
      const list = unresolved.get(a.residentId);
      if (list) list.push(a);
      else unresolved.set(a.residentId, [a]);
    }
  }
  const wantsReading = may('vitals:read') || may('alerts:read');
  const cards = await mapLimited(residents, CONCURRENCY, async (r) => {
    const clock = clockFor(knownTimeZone(r.timezone));
    const today = clock.at(now).day;
    const [last, activity, sleep] = await Promise.all([
      queries && wantsReading ? newestReading(queries, r.id, now) : null,
      queries && may('activity:read') ? queries.dailyActivity({ residentId: r.id, from: isoDay(today), to: isoDay(today) }) : null,
      queries && may('sleep:read') ? queries.sleepSessions({ residentId: r.id, from: isoDay(today - 2), to: isoDay(today) }) : null,
    ]);
    const alerts = (unresolved.get(r.id) ?? []).sort(byUrgency);
    const vitals = may('vitals:read');
    const band = may('alerts:read');
    const night = sleep?.[sleep.length - 1];
    const card: OverviewCard = {
      residentId: r.id,
      name: may('residents:read') ? r.name : null,
      timezone: r.timezone,
      lastReading: last && {
        deviceId: last.deviceId,
        ts: last.ts,
        receivedAt: last.receivedAt,
        hr: vitals ? last.hr : null,
        spo2: vitals ? last.spo2 : null,
        skinTemp: vitals ? last.skinTemp : null,
        battery: band ? last.battery : null,
        worn: band ? last.worn : null,
        charging: band ? last.charging : null,
      },
      stepsToday: activity ? activity.reduce((sum, d) => sum + d.steps, 0) : null,
      lastNight: night
        ? { night: night.night, start: night.start, end: night.end, totalSleepMin: night.totalSleepMin, efficiency: night.efficiency, awakenings: night.awakenings }
        : null,
      alerts: may('alerts:read')
        ? alerts.map((a) => (may('residents:read') ? alertView(a) : { ...alertView(a), acknowledgedBy: null, ackNote: null }))
        : null,
    };
    return { card, top: alerts[0] };
  });
  return cards.sort(compareCards).map((c) => c.card);
}

export function registerOverviewApi(app: FastifyInstance, deps: OverviewDeps): void {
  const { access } = deps;
  app.get('/v1/whoami', {
    config: { scope: 'any' },
    schema: {
      tags: ['Residents'],
      summary: 'Who this key is',
      description: 'The key kind (`admin` or `apiKey`), its id, its scopes and the residents it is limited to (null: all).',
      response: {
        200: {
          description: 'The caller',
          type: 'object',
          properties: {
            kind: { type: 'string', enum: ['admin', 'apiKey'] },
            id: { type: 'string' },
            scopes: { type: 'array', items: { type: 'string' } },
            residentIds: { type: ['array', 'null'], items: { type: 'string' } },
          },
        },
      },
    },
  }, async (req) => {
    const { kind, id, scopes, residentIds } = access.principal(req);
    return { kind, id, scopes, residentIds };
  });

  app.get('/v1/overview', {
    config: { scope: 'any' },
    schema: {
      tags: ['Residents'],
      summary: 'Every resident at a glance',
      description:
        'One card per resident the key may see (at most ' + OVERVIEW_MAX_RESIDENTS + "): the newest reading, today's steps, last night's sleep and the unresolved alerts, " +
        'each part only with the scope that guards it (else null). Sorted: residents with unresolved alerts first (most severe, then oldest), then by name.',
      response: {
        200: {
          description: 'The overview',
          type: 'object',
          properties: { generatedAt: { type: 'string' }, residents: { type: 'array', items: cardSchema } },
        },
      },
    },
  }, async (req) => {
    const now = Date.now();
    return { generatedAt: new Date(now).toISOString(), residents: await buildOverview(deps, access.principal(req), now) };
  });
}
