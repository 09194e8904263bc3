/** Builds a consumer group by name, with its sink and the services it runs beside it. */
import type { Logger } from 'pino';
import type { Config } from '../../core/config.js';
import { knownTimeZone } from '../../core/local-time.js';
import type { Store } from '../../store/types.js';
import type { ConsumerGroup } from '../types.js';
import { DEFAULT_DETECTION_SETTINGS, type DetectionSettings } from '../../detectors/detection-settings.js';

export const GROUP_NAMES = ['alerts', 'warehouse', 'archive'] as const;
export type GroupName = (typeof GROUP_NAMES)[number];

export interface GroupCounters {
  alertsRaised: number;
  notificationsSent: number;
  notificationsFailed: number;
}

export interface BuiltGroup {
  group: ConsumerGroup;
  /** Read queries served by the thread that owns the sink (DuckDB allows one owner). */
  query?: (method: string, args: unknown) => Promise<unknown>;
  /** Started after the group, stopped before it. */
  services?: { start(): Promise<void>; stop(): Promise<void> }[];
  counters: GroupCounters;
  /** Memory the group's sink engine holds in this thread by its own count, when it keeps one (embedded DuckDB). */
  sinkMemoryBytes?: () => Promise<number>;
}

export async function buildGroup(name: GroupName, config: Config, store: Store, log: Logger): Promise<BuiltGroup> {
  const counters: GroupCounters = { alertsRaised: 0, notificationsSent: 0, notificationsFailed: 0 };
  switch (name) {
    case 'alerts': {
      const { AlertsGroup } = await import('./alerts-group.js');
      const { OutboxSender } = await import('../../notify/outbox-sender.js');
      const { openChannels } = await import('../../notify/channels/registry.js');
      const { notificationsFor } = await import('../../notify/alert-notifications.js');
      const channels = await openChannels(config, store);
      const sender = new OutboxSender({
        store,
        channels,
        maxAttempts: config['notify.maxAttempts'],
        retryBaseMs: config['notify.retryBaseMs'],
        // Twice the request timeout: a live sender has finished (or timed out) by then.
        stuckAfterMs: 2 * config['notify.webhookTimeoutMs'] + 1000,
        log,
        onResult: (_channel, ok) => (ok ? counters.notificationsSent++ : counters.notificationsFailed++),
      });
      const group = new AlertsGroup(store, {
        settings: siteDetectionSettings(config),
        outboxFor: notificationsFor(store, { channels: new Set(channels.map((c) => c.name)), pageWithinMs: config['alerts.pageWithinHours'] * 3_600_000 }),
        onRaised: (alerts) => {
          counters.alertsRaised += alerts.length;
          sender.wake();
        },
      });
      return { group, services: [sender], counters };
    }
    case 'warehouse': {
      const { openWarehouse } = await import('../../warehouse/registry.js');
      const { WarehouseGroup } = await import('./warehouse-group.js');
      const warehouse = await openWarehouse(config);
      const queries: Record<string, (args: never) => Promise<unknown>> = {
        readings: (q) => warehouse.readings(q),
        vitals: (q) => warehouse.vitals(q),
        sleepSessions: (q) => warehouse.sleepSessions(q),
        dailyActivity: (q) => warehouse.dailyActivity(q),
        eraseResident: (residentId) => warehouse.eraseResident(residentId),
      };
      return {
        group: new WarehouseGroup(warehouse, { timezoneOf: residentTimezones(store) }),
        query: (method, args) => {
          const fn = queries[method];
          if (!fn) throw new Error(`unknown warehouse query ${method}`);
          return fn(args as never);
        },
        counters,
        sinkMemoryBytes: warehouse.memoryBytes?.bind(warehouse),
      };
    }
    case 'archive': {
      const { openArchive } = await import('../../archive/registry.js');
      const { ArchiveGroup } = await import('./archive-group.js');
      const archive = await openArchive(config);
      return {
        group: new ArchiveGroup(archive, {
          objectMaxRecords: config['archive.objectMaxRecords'],
          flushEveryMs: config['archive.flushIntervalMs'],
        }),
        counters,
      };
    }
  }
}

/** The detection defaults with the site's config applied; residents' overrides go on top. */
export function siteDetectionSettings(config: Config): DetectionSettings {
  return {
    ...DEFAULT_DETECTION_SETTINGS,
    vitalsSustainMs: config['alerts.sustainSeconds'] * 1000,
    imOkWindowMs: config['alerts.imOkWindowSeconds'] * 1000,
    inactivityMs: config['alerts.inactivityMinutes'] * 60_000,
    offlineMs: config['alerts.offlineMinutes'] * 60_000,
  };
}

/** Residents' time zones, re-read every minute (a changed zone applies within it). */
function residentTimezones(store: Store): (residentId: string) => Promise<string> {
  const cache = new Map<string, { timezone: string; at: number }>();
  return async (residentId) => {
    const hit = cache.get(residentId);
    if (hit && Date.now() - hit.at < 60_000) return hit.timezone;
    const timezone = knownTimeZone((await store.getResident(residentId))?.timezone ?? 'UTC');
    cache.set(residentId, { timezone, at: Date.now() });
    return timezone;
  };
}
