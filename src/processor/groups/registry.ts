/** Builds a consumer group by name, with its sink and the services it runs beside it. */
import type { Logger } from 'pino';
import type { Config } from '../../core/config.js';
import type { Store } from '../../store/types.js';
import type { ConsumerGroup } from '../types.js';

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
}

export async function buildGroup(name: GroupName, config: Config, store: Store, log: Logger): Promise<BuiltGroup> {
  const counters: GroupCounters = { alertsRaised: 0, notificationsSent: 0, notificationsFailed: 0 };
  switch (name) {
    case 'alerts': {
      const { AlertsGroup } = await import('./alerts-group.js');
      const { OutboxSender } = await import('../../notify/outbox-sender.js');
      const { WebhookChannel } = await import('../../notify/channels/webhook/webhook-channel.js');
      const { notificationsFor } = await import('../../notify/alert-notifications.js');
      const sender = new OutboxSender({
        store,
        channels: [new WebhookChannel(config['notify.webhookTimeoutMs'])],
        maxAttempts: config['notify.maxAttempts'],
        retryBaseMs: config['notify.retryBaseMs'],
        // Twice the request timeout: a live sender has finished (or timed out) by then.
        stuckAfterMs: 2 * config['notify.webhookTimeoutMs'] + 1000,
        log,
        onResult: (_channel, ok) => (ok ? counters.notificationsSent++ : counters.notificationsFailed++),
      });
      const group = new AlertsGroup(store, {
        sustainMs: config['alerts.sustainSeconds'] * 1000,
        outboxFor: notificationsFor(store),
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
      };
      return {
        group: new WarehouseGroup(warehouse),
        query: (method, args) => {
          const fn = queries[method];
          if (!fn) throw new Error(`unknown warehouse query ${method}`);
          return fn(args as never);
        },
        counters,
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
