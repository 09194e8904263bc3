/**
 * `vigil start`: everything in one process on the configured backends, plus (with
 * `--simulate N`) a simulated fleet, a banner saying where to look and a one-line status.
 * Ctrl-C (or SIGTERM) shuts down cleanly; a second Ctrl-C exits at once.
 */
import { join, resolve } from 'node:path';
import { ConfigError, loadConfig } from '../core/config.js';
import { limitHeapGrowth } from '../core/heap-growth.js';
import { acceptReadings } from '../ingest/accept-readings.js';
import { compareSequences, type StreamProducer } from '../stream/types.js';
import { GROUP_NAMES, type GroupName } from '../processor/groups/registry.js';
import { startVigil, type Vigil } from '../app.js';
import { addContact, createResident, registerDevice } from '../api/admin-service.js';
import type { AdminClient, ProvisionedDevice } from '../simulator/provision.js';
import { provisionFleet } from '../simulator/provision.js';
import { HistoryBackfill, type AppendedAt, type HistoryDevice } from '../simulator/history.js';
import type { WireReading } from '../simulator/resident-model.js';
import { Fleet } from '../simulator/fleet.js';
import { scheduleDemoScenarios } from '../simulator/demo.js';
import { registerSimulatorApi, type FleetHolder } from '../api/simulator-api.js';
import { DEMO_INBOX_PATH, DEMO_POLICIES, registerDemoInbox } from '../simulator/demo-inbox.js';
import { residentPolicyKey } from '../notify/escalation/escalation-policy.js';

/** The simulator provisions through the store directly: the admin key may not be known in clear. */
function inProcessAdmin(vigil: Vigil): AdminClient {
  return {
    createResident: (r) => createResident(vigil.store, r),
    createDevice: (d) => registerDevice(vigil.store, d),
    createContact: (residentId, c) => addContact(vigil.store, residentId, c),
  };
}

/**
 * The history backfill's ingest: the in-process door (what POST /v1/readings and MQTT call once
 * they know the device), on the stream itself rather than the one live events tap, so that
 * yesterday's vitals are not pushed to the dashboard as live ones.
 */
function historyAppend(vigil: Vigil): (device: HistoryDevice, readings: WireReading[]) => Promise<AppendedAt | null> {
  return async (device, readings) => {
    let at: AppendedAt | null = null;
    const stream: StreamProducer = {
      append: async (entries) => {
        const results = await vigil.stream.append(entries);
        const r = results[0];
        if (r?.partition != null && r.sequence !== null) at = { partition: r.partition, sequence: r.sequence };
        return results;
      },
    };
    const result = await acceptReadings({ config: vigil.config, stream, metrics: vigil.metrics }, { deviceId: device.deviceId, residentId: device.residentId, createdAt: 0 }, { readings });
    if (result.rejected.length > 0) vigil.log.warn({ deviceId: device.deviceId, rejected: result.rejected.slice(0, 3) }, 'history readings rejected');
    return at;
  };
}

/**
 * Whether the groups of this process (all, or those named) have handled the record (`position`)
 * or committed it (`checkpoint`: in the warehouse, for the warehouse group). A group that is down,
 * or a partition another process owns, does not hold the backfill up.
 */
function passedByGroups(vigil: Vigil, mark: 'position' | 'checkpoint', names?: readonly GroupName[]): (at: AppendedAt) => boolean {
  return (at) =>
    vigil.host.stats().every((g) => {
      if (!g.running || (names && !names.includes(g.name))) return true;
      const p = g.stats?.partitions[at.partition];
      if (!g.stats || !p) return false;
      if (!p.owned) return true;
      const passed = p[mark];
      return passed !== null && compareSequences(passed, at.sequence) >= 0;
    });
}

const thousands = (n: number) => n.toLocaleString('en-US');

async function statusLine(vigil: Vigil, since: { at: number; accepted: number }, history: HistoryBackfill | null): Promise<string> {
  const accepted = (await vigil.metrics.readingsAccepted.get()).values[0]?.value ?? 0;
  const now = Date.now();
  const rate = (accepted - since.accepted) / Math.max(0.001, (now - since.at) / 1000);
  since.at = now;
  since.accepted = accepted;
  const lags = vigil.host
    .stats()
    .map((g) => `${g.name}=${g.running && g.stats ? g.stats.partitions.reduce((n, p) => n + p.lag, 0) : 'down'}`)
    .join(' ');
  const open = await vigil.store.countOpenAlerts();
  const sent = vigil.host.stats().reduce((n, g) => n + (g.counters?.notificationsSent ?? 0), 0);
  const failed = vigil.host.stats().reduce((n, g) => n + (g.counters?.notificationsFailed ?? 0), 0);
  return (
    `[${new Date(now).toISOString().slice(11, 19)}] ${rate.toFixed(1)} readings/s accepted (${accepted} total) | lag ${lags} | ${open} open alerts` +
    ` | notifications ${sent} sent${failed ? `, ${failed} failed` : ''}` +
    (history ? ` | history ${thousands(history.loaded)} / ${thousands(history.total)} readings` : '')
  );
}

/** What this process runs: everything (`start`), the API and ingest (`api`), or groups (`worker`). */
export interface Role {
  api: boolean;
  groups: readonly GroupName[];
}

export async function runStart(flags: Record<string, string>, configFile?: string, role: Role = { api: true, groups: GROUP_NAMES }): Promise<void> {
  const config = loadConfig({ flags, file: configFile });
  limitHeapGrowth(config.heapGrowingPercent);
  if (!role.api && config.simulate > 0) throw new ConfigError('--simulate needs the ingest: use it with `vigil start` or `vigil api`');
  const fleetHolder: FleetHolder = { fleet: null };
  const out = (line: string) => process.stdout.write(line + '\n');
  const vigil = await startVigil({
    config,
    api: role.api,
    groups: role.groups,
    routes: (app, admin) => {
      registerSimulatorApi(app, fleetHolder, admin);
      if (config.simulate > 0) registerDemoInbox(app, out);
    },
  });

  out('');
  out(`Vigil ${role.api ? 'is running' : 'worker is running'} on ${vigil.url}${role.groups.length ? ` with groups ${role.groups.join(', ')}` : ' (API and ingest only)'}`);
  if (role.api) {
    // The first start shows the key once: the link logs the browser in with it (the part after # never leaves the browser).
    out(`  dashboard  ${vigil.url}/${vigil.generatedAdminKey ? `#key=${vigil.generatedAdminKey}` : ''}   (log in with the admin key or a staff key)`);
    out(`  ingest     POST ${vigil.url}/v1/readings   (device token)`);
    out(`  admin API  ${vigil.url}/v1/residents, /v1/alerts, /v1/admin/groups   (admin key)   reference ${vigil.url}/docs`);
  }
  out(`  health     ${vigil.url}/healthz      metrics ${vigil.url}/metrics`);
  out(`  data       ${resolve(config.dataDir)}`);
  if (vigil.generatedAdminKey) out(`  admin key  ${vigil.generatedAdminKey}   (shown once: keep it; \`vigil admin-key reset\` makes a new one)`);
  else out(`  admin key  ${config.adminKey ? 'from VIGIL_ADMIN_KEY' : 'set at first start (`vigil admin-key reset` makes a new one)'}`);

  let stopping = false;
  let fleet: Fleet | null = null;
  let cancelDemo: (() => void) | null = null;
  let history: HistoryBackfill | null = null;
  let historyDone: Promise<void> | null = null;
  if (config.simulate > 0) {
    // Devices registered by this start (all of them on the first start of a data dir) have no
    // data yet: they get a past (simulator/history.ts). Devices of the state file already have one.
    const created: ProvisionedDevice[] = [];
    const devices = await provisionFleet(inProcessAdmin(vigil), config.simulate, {
      stateFile: join(config.dataDir, 'simulator.json'),
      contactWebhookUrl: vigil.url + DEMO_INBOX_PATH,
      onCreated: (d) => created.push(d),
    });
    // The demo's short escalation, unless an admin set one for that resident since.
    for (const residentId of new Set(devices.map((d) => d.residentId))) await vigil.store.setSettingIfAbsent(residentPolicyKey(residentId), JSON.stringify(DEMO_POLICIES));
    const hours = config.simulateHistoryHours;
    const running = new Set(devices.map((d) => d.deviceId));
    const past = hours > 0 ? created.filter((c) => running.has(c.deviceId)) : [];
    fleet = new Fleet({ url: vigil.url, devices, held: past.map((d) => d.deviceId) });
    fleet.start();
    fleetHolder.fleet = fleet;
    cancelDemo = scheduleDemoScenarios(fleet);
    out(`  simulator  ${devices.length} residents, one reading every 5 s each; SOS, tachycardia and hypoxia scenarios start within 30 s`);
    out(`             more on command: POST ${vigil.url}/v1/simulator/scenarios {"device":0,"scenario":"FALL"}   (admin key)`);
    out(`  contacts   each resident's contact gets webhooks at ${vigil.url}${DEMO_INBOX_PATH}: every escalation step prints a "notify" line`);
    if (past.length > 0) {
      const f = fleet;
      const backfill = new HistoryBackfill({
        devices: past,
        hours,
        origin: (deviceId) => f.origin(deviceId),
        append: historyAppend(vigil),
        // Paced on every group (the archive is the slowest); done once the dashboard's sources
        // have committed it: the archive writes it at its next flush (archive.flushIntervalMs).
        handled: passedByGroups(vigil, 'position'),
        settled: passedByGroups(vigil, 'checkpoint', ['alerts', 'warehouse']),
        onDeviceDone: (deviceId) => f.release(deviceId),
        onError: (deviceId, err, willRetry) => vigil.log.warn({ err, deviceId, willRetry }, 'history append failed'),
      });
      history = backfill;
      const started = Date.now();
      historyDone = backfill.start().then(
        (r) => {
          if (stopping) return;
          history = null;
          const time = `[${new Date().toISOString().slice(11, 19)}]`;
          const what = `${thousands(r.readings)} readings, the last ${hours} h of ${r.devices} residents`;
          out(
            r.complete
              ? `${time} history done: ${what}, loaded in ${Math.round((Date.now() - started) / 1000)} s; charts, sleep and activity have their past`
              : `${time} history incomplete: ${what} (see the log)`,
          );
        },
        (err) => vigil.log.error({ err }, 'history backfill failed'),
      );
      out(
        `  history    the last ${hours} h of ${past.length} new residents, one reading a minute, loading in the background (${thousands(backfill.total)} readings;` +
          ` each band goes live once its past is in; --simulate-history-hours 0 for none)`,
      );
    }
  }
  out('');

  const since = { at: Date.now(), accepted: 0 };
  const status =
    config.statusIntervalMs > 0
      ? setInterval(() => void statusLine(vigil, since, history).then(out, () => undefined), config.statusIntervalMs)
      : null;

  const shutdown = async (signal: string) => {
    if (stopping) {
      out('second signal: exiting now');
      process.exit(130);
    }
    stopping = true;
    out(`\n${signal}: stopping (answering in-flight requests, checkpointing groups)…`);
    if (status) clearInterval(status);
    await history?.stop();
    await historyDone;
    cancelDemo?.();
    await fleet?.stop();
    await vigil.stop();
    out('stopped cleanly');
    process.exit(0);
  };
  process.on('SIGINT', () => void shutdown('SIGINT'));
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
}
