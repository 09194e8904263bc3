/** Prometheus metrics of the process (`GET /metrics`), one registry per Vigil instance. */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { ThreadMemory } from '../processor/group-protocol.js';

export function createMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'vigil_' });
  const m = {
    registry,
    readingsAccepted: new Counter({ name: 'vigil_readings_accepted_total', help: 'Readings made durable in the stream', registers: [registry] }),
    readingsDuplicate: new Counter({ name: 'vigil_readings_duplicate_total', help: 'Readings seen before (deviceId, seq), not appended again', registers: [registry] }),
    readingsRejected: new Counter({
      name: 'vigil_readings_rejected_total',
      help: 'Readings rejected, by reason',
      labelNames: ['reason'] as const,
      registers: [registry],
    }),
    readingsSanitized: new Counter({
      name: 'vigil_readings_sanitized_total',
      help: 'Values dropped or replaced by sanitizing, by flag',
      labelNames: ['flag'] as const,
      registers: [registry],
    }),
    ingestRequests: new Counter({
      name: 'vigil_ingest_requests_total',
      help: 'POST /v1/readings requests by status',
      labelNames: ['status'] as const,
      registers: [registry],
    }),
    mqttMessages: new Counter({
      name: 'vigil_mqtt_messages_total',
      help: 'MQTT messages taken from the broker, by result (accepted, duplicate, rejected, wrong_device, unknown_device, too_large, unavailable, error)',
      labelNames: ['result'] as const,
      registers: [registry],
    }),
    apiForbidden: new Counter({
      name: 'vigil_api_forbidden_total',
      help: 'API requests refused with 403 (audited in the log), by the scope the route needs and reason (scope, resident)',
      labelNames: ['scope', 'reason'] as const,
      registers: [registry],
    }),
    commitRequests: new Histogram({
      name: 'vigil_stream_commit_requests',
      help: 'Requests grouped into one fsync’d stream commit',
      buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256, 512],
      registers: [registry],
    }),
    commitReadings: new Histogram({
      name: 'vigil_stream_commit_readings',
      help: 'Readings in one fsync’d stream commit',
      buckets: [1, 10, 50, 100, 500, 1000, 5000, 10000, 50000],
      registers: [registry],
    }),
    commitSeconds: new Histogram({
      name: 'vigil_stream_commit_seconds',
      help: 'Duration of one stream commit including fsync',
      buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.5],
      registers: [registry],
    }),
  };
  return m;
}

export type Metrics = ReturnType<typeof createMetrics>;

/** Gauges filled at scrape time from live state. */
export function registerLiveGauges(
  metrics: Metrics,
  groupLag: () => { group: string; partition: number; lag: number; owned: boolean }[],
  groupCounters: () => { group: string; handled: number; alertsRaised: number; sent: number; failed: number; memory: ThreadMemory | null }[],
  openAlerts: () => Promise<number>,
): void {
  const registers = [metrics.registry];
  new Gauge({
    name: 'vigil_group_lag_records',
    help: 'Stream records between a group’s checkpoint and the partition head',
    labelNames: ['group', 'partition'] as const,
    registers,
    collect() {
      this.reset();
      for (const { group, partition, lag } of groupLag()) this.set({ group, partition: String(partition) }, lag);
    },
  });
  new Gauge({
    // Lag is reported by the partition's owner only: summed over processes, owned partitions tell
    // whether that sum covers every partition (after a crash, a partition waits for its dead
    // owner's lease to expire, and its lag shows nowhere meanwhile).
    name: 'vigil_group_partitions_owned',
    help: 'Partitions of the stream whose lease this process’s group thread holds',
    labelNames: ['group'] as const,
    registers,
    collect() {
      this.reset();
      const owned = new Map<string, number>();
      for (const { group, owned: mine } of groupLag()) owned.set(group, (owned.get(group) ?? 0) + (mine ? 1 : 0));
      for (const [group, n] of owned) this.set({ group }, n);
    },
  });
  // Each group runs in a worker thread with its own V8 heap, which the process's
  // vigil_nodejs_heap_* and vigil_nodejs_external_memory_bytes (the main thread's) do not count;
  // a group without a figure (no embedded sink, or not reported yet) has no series.
  const threadMemoryGauges: [string, string, keyof ThreadMemory][] = [
    ['vigil_group_heap_used_bytes', 'V8 heap used by a group’s worker thread', 'heapUsedBytes'],
    ['vigil_group_heap_total_bytes', 'V8 heap reserved for a group’s worker thread (what the process’s RSS sees)', 'heapTotalBytes'],
    ['vigil_group_external_bytes', 'Memory held outside the V8 heap by a group thread’s objects (Buffers, ArrayBuffers)', 'externalBytes'],
    ['vigil_group_sink_memory_bytes', 'Memory a group’s embedded sink engine holds by its own count (DuckDB for the warehouse)', 'sinkBytes'],
  ];
  for (const [name, help, field] of threadMemoryGauges) {
    new Gauge({
      name,
      help,
      labelNames: ['group'] as const,
      registers,
      collect() {
        this.reset();
        for (const c of groupCounters()) {
          const bytes = c.memory?.[field];
          if (bytes != null) this.set({ group: c.group }, bytes);
        }
      },
    });
  }
  new Gauge({
    name: 'vigil_group_handled_records',
    help: 'Stream records handled by a group since its thread started',
    labelNames: ['group'] as const,
    registers,
    collect() {
      for (const c of groupCounters()) this.set({ group: c.group }, c.handled);
    },
  });
  new Gauge({
    name: 'vigil_alerts_raised',
    help: 'Alerts newly raised since start',
    registers,
    collect() {
      this.set(groupCounters().reduce((n, c) => n + c.alertsRaised, 0));
    },
  });
  new Gauge({
    name: 'vigil_notifications',
    help: 'Notification attempts since start, by result',
    labelNames: ['result'] as const,
    registers,
    collect() {
      const all = groupCounters();
      this.set({ result: 'sent' }, all.reduce((n, c) => n + c.sent, 0));
      this.set({ result: 'failed' }, all.reduce((n, c) => n + c.failed, 0));
    },
  });
  new Gauge({
    name: 'vigil_alerts_open',
    help: 'Alerts not yet resolved',
    registers,
    async collect() {
      this.set(await openAlerts());
    },
  });
}
