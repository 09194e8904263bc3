/**
 * `vigil start`: everything in one process on the configured backends, plus (with
 * `--simulate N`) a simulated fleet, a banner saying where to look and a one-line status.
 * Ctrl-C (or SIGTERM) shuts down cleanly; a second Ctrl-C exits at once.
 */
import { join, resolve } from 'node:path';
import { ConfigError, loadConfig } from '../core/config.js';
import { GROUP_NAMES, type GroupName } from '../processor/groups/registry.js';
import { startVigil, type Vigil } from '../app.js';
import { addContact, createResident, registerDevice } from '../api/admin-service.js';
import type { AdminClient } from '../simulator/provision.js';
import { provisionFleet } from '../simulator/provision.js';
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

async function statusLine(vigil: Vigil, since: { at: number; accepted: number }): Promise<string> {
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
    ` | notifications ${sent} sent${failed ? `, ${failed} failed` : ''}`
  );
}

/** What this process runs: everything (`start`), the API and ingest (`api`), or groups (`worker`). */
export interface Role {
  api: boolean;
  groups: readonly GroupName[];
}

export async function runStart(flags: Record<string, string>, configFile?: string, role: Role = { api: true, groups: GROUP_NAMES }): Promise<void> {
  const config = loadConfig({ flags, file: configFile });
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

  let fleet: Fleet | null = null;
  let cancelDemo: (() => void) | null = null;
  if (config.simulate > 0) {
    const devices = await provisionFleet(inProcessAdmin(vigil), config.simulate, {
      stateFile: join(config.dataDir, 'simulator.json'),
      contactWebhookUrl: vigil.url + DEMO_INBOX_PATH,
    });
    // The demo's short escalation, unless an admin set one for that resident since.
    for (const residentId of new Set(devices.map((d) => d.residentId))) await vigil.store.setSettingIfAbsent(residentPolicyKey(residentId), JSON.stringify(DEMO_POLICIES));
    fleet = new Fleet({ url: vigil.url, devices });
    fleet.start();
    fleetHolder.fleet = fleet;
    cancelDemo = scheduleDemoScenarios(fleet);
    out(`  simulator  ${devices.length} residents, one reading every 5 s each; SOS, tachycardia and hypoxia scenarios start within 30 s`);
    out(`             more on command: POST ${vigil.url}/v1/simulator/scenarios {"device":0,"scenario":"FALL"}   (admin key)`);
    out(`  contacts   each resident's contact gets webhooks at ${vigil.url}${DEMO_INBOX_PATH}: every escalation step prints a "notify" line`);
  }
  out('');

  const since = { at: Date.now(), accepted: 0 };
  const status =
    config.statusIntervalMs > 0
      ? setInterval(() => void statusLine(vigil, since).then(out, () => undefined), config.statusIntervalMs)
      : null;

  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) {
      out('second signal: exiting now');
      process.exit(130);
    }
    stopping = true;
    out(`\n${signal}: stopping (answering in-flight requests, checkpointing groups)…`);
    if (status) clearInterval(status);
    cancelDemo?.();
    await fleet?.stop();
    await vigil.stop();
    out('stopped cleanly');
    process.exit(0);
  };
  process.on('SIGINT', () => void shutdown('SIGINT'));
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
}
