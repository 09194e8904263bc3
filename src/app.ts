/**
 * Vigil in one process: the HTTP API and ingest on the main thread, the stream's log writer
 * and each consumer group in worker threads (DESIGN §2, process model).
 */
import { mkdirSync } from 'node:fs';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { Config } from './core/config.js';
import { createLogger } from './core/logger.js';
import { createMetrics, registerLiveGauges, type Metrics } from './core/metrics.js';
import { openStore } from './store/registry.js';
import type { Store } from './store/types.js';
import { openStream } from './stream/registry.js';
import type { Stream } from './stream/types.js';
import { GroupHost } from './processor/group-host.js';
import { GROUP_NAMES, siteDetectionSettings, type GroupName } from './processor/groups/registry.js';
import { createHttpServer } from './api/http-server.js';
import { AdminAuth } from './api/admin-auth.js';
import { registerAdminApi } from './api/admin-api.js';
import { registerAlertsApi } from './api/alerts-api.js';
import { registerErasureApi } from './api/erasure-api.js';
import { openArchive } from './archive/registry.js';
import { registerWarehouseApi, type WarehouseQueries } from './api/warehouse-api.js';
import { ApiAccess, PrincipalAuth, registerApiAuth } from './api/principal.js';
import { registerOpenApi } from './api/openapi.js';
import { registerThirdPartyApi } from './api/third-party-api.js';
import { groupsView, registerGroupsApi } from './api/groups-api.js';
import { registerIngest } from './ingest/http-ingest.js';
import { registerWebPushApi } from './notify/channels/webpush/webpush-api.js';
import { vapidKeys } from './notify/channels/webpush/webpush-channel.js';
import { publicBaseUrl } from './notify/channels/twilio/twilio-channels.js';
import { registerTwilioWebhooks } from './notify/channels/twilio/twilio-webhooks.js';
import { StoreAcknowledgements } from './notify/acknowledgements.js';
import { DeviceAuth } from './ingest/device-auth.js';
import { DeviceRateLimiter } from './ingest/rate-limit.js';
import { startMqttIngest } from './ingest/mqtt-ingest.js';
import { LiveEventSource } from './api/live-event-source.js';
import { registerLiveEvents } from './api/live-events.js';
import { registerOverviewApi } from './api/overview-api.js';
import { registerDashboard } from './api/dashboard.js';

export interface VigilOptions {
  config: Config;
  log?: Logger;
  groups?: readonly GroupName[];
  /**
   * Serve the ingest and the APIs (default). `vigil worker` sets false: it serves only
   * /healthz and /metrics, for its groups' lag.
   */
  api?: boolean;
  /** Extra routes (e.g. the simulator's), registered before the server listens. */
  routes?: (app: FastifyInstance, admin: AdminAuth) => void;
}

export interface Vigil {
  config: Config;
  app: FastifyInstance;
  /** Base URL the server listens on. */
  url: string;
  /** The admin key in clear when this start generated it (print it once), else null. */
  generatedAdminKey: string | null;
  store: Store;
  stream: Stream;
  host: GroupHost;
  metrics: Metrics;
  log: Logger;
  stop(): Promise<void>;
}

/** Warehouse reads: through the warehouse group's thread here, else straight to a networked warehouse. */
async function warehouseQueries(config: Config, host: GroupHost): Promise<{ queries: WarehouseQueries | null; close(): Promise<void> }> {
  if (host.has('warehouse')) {
    return {
      queries: {
        readings: (q) => host.query('warehouse', 'readings', q),
        vitals: (q) => host.query('warehouse', 'vitals', q),
        sleepSessions: (q) => host.query('warehouse', 'sleepSessions', q),
        dailyActivity: (q) => host.query('warehouse', 'dailyActivity', q),
        eraseResident: (id) => host.query('warehouse', 'eraseResident', id),
      },
      close: async () => {},
    };
  }
  if (config['warehouse.backend'] === 'duckdb') return { queries: null, close: async () => {} };
  const { openWarehouse } = await import('./warehouse/registry.js');
  const warehouse = await openWarehouse(config);
  return { queries: warehouse, close: () => warehouse.close() };
}

export async function startVigil(opts: VigilOptions): Promise<Vigil> {
  const { config } = opts;
  const log = opts.log ?? createLogger(config['log.level'], 'vigil');
  mkdirSync(config.dataDir, { recursive: true });

  const store = await openStore(config);
  const { auth: admin, generatedKey } = await AdminAuth.init(store, config.adminKey);
  const metrics = createMetrics();
  const stream = await openStream(config, {
    onCommit: (s) => {
      metrics.commitRequests.observe(s.requests);
      metrics.commitReadings.observe(s.readings);
      metrics.commitSeconds.observe(s.ms / 1000);
    },
  });
  const host = new GroupHost(config, log);
  try {
    await host.start(opts.groups ?? GROUP_NAMES);
  } catch (err) {
    await host.stop();
    await stream.close();
    await store.close();
    throw err;
  }

  registerLiveGauges(
    metrics,
    () => host.stats().flatMap((g) => (g.stats?.partitions ?? []).map((p) => ({ group: g.name, partition: p.partition, lag: p.lag, owned: p.owned }))),
    () =>
      host.stats().map((g) => ({
        group: g.name,
        handled: g.stats?.handledRecords ?? 0,
        alertsRaised: g.counters?.alertsRaised ?? 0,
        sent: g.counters?.notificationsSent ?? 0,
        failed: g.counters?.notificationsFailed ?? 0,
        memory: g.memory,
      })),
    () => store.countOpenAlerts(),
  );

  const app = createHttpServer({ log, bodyLimit: config['ingest.maxBodyBytes'] });
  const limiter = new DeviceRateLimiter(config['ingest.rateLimitPerSecond'], config['ingest.rateLimitBurst']);
  let closeWarehouse = async () => {};
  // Live events (GET /v1/events): alerts polled from the store; vitals from this process's ingest,
  // which appends through `ingestStream` (HTTP and MQTT).
  const liveEvents = new LiveEventSource(store, { log });
  const ingestStream = liveEvents.tapStream(stream);
  if (opts.api ?? true) {
    // Both before any route: the OpenAPI document and the scoped routes' hooks are built as routes are declared.
    await registerOpenApi(app);
    const access = new ApiAccess(new PrincipalAuth(store, admin), metrics);
    await registerApiAuth(app, access, { rateLimitPerMinute: config['api.rateLimitPerMinute'] });
    // One token cache, shared: a rotation or revocation through the admin API evicts the old token at once.
    const deviceAuth = new DeviceAuth(store);
    registerIngest(app, { config, stream: ingestStream, auth: deviceAuth, limiter, metrics });
    registerAdminApi(app, store, admin, siteDetectionSettings(config), deviceAuth);
    registerAlertsApi(app, store, access);
    const warehouse = await warehouseQueries(config, host);
    closeWarehouse = warehouse.close;
    registerWarehouseApi(app, store, warehouse.queries, access);
    const queries = warehouse.queries;
    registerThirdPartyApi(app, { store, queries, access });
    registerOverviewApi(app, { store, queries, access });
    registerErasureApi(app, admin, {
      store,
      eraseWarehouse: queries ? (id) => queries.eraseResident(id) : null,
      eraseArchive: async (id) => {
        // The archive is files or objects any process can rewrite; opened for the erasure only.
        const archive = await openArchive(config);
        try {
          return await archive.eraseResident(id);
        } finally {
          await archive.close();
        }
      },
    });
    registerGroupsApi(app, host, admin);
    registerLiveEvents(app, liveEvents, { authenticate: (token) => access.auth.authenticateToken(token) });
    registerWebPushApi(app, store, admin, (await vapidKeys(store, config)).publicKey);
    if (config['twilio.accountSid']) {
      registerTwilioWebhooks(app, { authToken: config['twilio.authToken'], publicUrl: publicBaseUrl(config), acks: new StoreAcknowledgements(store) });
    }
    opts.routes?.(app, admin);
    await registerDashboard(app);
  }
  app.get('/healthz', async (_req, reply) => {
    const groups = groupsView(host).map(({ name, running, caughtUp, lag }) => ({ name, running, caughtUp, lag }));
    const ok = groups.every((g) => g.running);
    return reply.code(ok ? 200 : 503).send({ status: ok ? 'ok' : 'degraded', groups });
  });
  app.get('/metrics', async (_req, reply) => reply.type(metrics.registry.contentType).send(await metrics.registry.metrics()));

  await app.listen({ port: config.port, host: config.host });
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : config.port;
  const url = `http://${config.host === '0.0.0.0' ? '127.0.0.1' : config.host}:${port}`;
  const sweep = setInterval(() => limiter.sweep(Date.now()), 60_000).unref();
  let mqttIngest: { stop(): Promise<void> } | null = null;
  let stopping: Promise<void> | null = null;
  // In-flight requests are answered (they wait on the stream), then the stream commits what it
  // holds, then every group flushes and checkpoints.
  const shutdown = () =>
    (stopping ??= (async () => {
      clearInterval(sweep);
      await mqttIngest?.stop(); // first: what it is appending is acked, the rest is redelivered
      await app.close();
      await liveEvents.close();
      await stream.close();
      await host.stop();
      await closeWarehouse();
      await store.close();
    })());
  if (config['mqtt.url'] && (opts.api ?? true)) {
    // MQTT is an ingest front door like POST /v1/readings: only where the ingest is served.
    try {
      mqttIngest = await startMqttIngest({ config, stream: ingestStream, store, metrics, log });
    } catch (err) {
      await shutdown();
      throw err;
    }
  }
  return {
    config,
    app,
    url,
    generatedAdminKey: generatedKey,
    store,
    stream,
    host,
    metrics,
    log,
    stop: shutdown,
  };
}
