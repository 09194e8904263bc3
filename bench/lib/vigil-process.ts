/**
 * Vigil as the user runs it: `node bin/vigil.js start` in its own process (HTTP thread, log
 * writer thread and the three consumer groups), on a throwaway data dir, with a known admin
 * key, the per-device rate limit out of the way, and an admin-API client for set-up and
 * observation (groups, /metrics).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { REPO_ROOT } from './bare-server.js';
import { freePort, spawnNode, waitForHttp, type Child } from './children.js';

export interface VigilProcess {
  url: string;
  adminKey: string;
  dataDir: string;
  child: Child;
  /** Clean stop (groups flush and checkpoint), then the data dir is removed. */
  stop(): Promise<void>;
}

export interface VigilProcessOptions {
  /** Extra `vigil start` flags, e.g. `{ '--stream-partitions': 16 }`; they override the defaults below. */
  flags?: Record<string, string | number>;
  /** Node options placed before the script, e.g. `['--cpu-prof', '--cpu-prof-dir', dir]`. */
  nodeArgs?: string[];
  /** Diagnostic: ingest and stream writer only, no consumer group (vigil-ingest-only-child.ts). */
  ingestOnly?: boolean;
}

export async function startVigilProcess(opts: VigilProcessOptions = {}): Promise<VigilProcess> {
  const port = await freePort();
  const dataDir = mkdtempSync(join(tmpdir(), 'vigil-bench-'));
  const adminKey = `bench-${randomBytes(16).toString('hex')}`;
  const flags: Record<string, string | number> = {
    '--simulate': 0,
    '--port': port,
    '--host': '127.0.0.1',
    '--data-dir': dataDir,
    '--admin-key': adminKey,
    // A benchmark device sends thousands of requests a second; the production limit is 100/s.
    '--ingest-rate-limit-per-second': 1_000_000,
    '--ingest-rate-limit-burst': 1_000_000,
    '--status-interval-ms': 0,
    '--log-level': 'warn',
    ...opts.flags,
  };
  const script = opts.ingestOnly
    ? ['--import', 'tsx', fileURLToPath(new URL('./vigil-ingest-only-child.ts', import.meta.url))]
    : ['bin/vigil.js', 'start'];
  const args = [...(opts.nodeArgs ?? []), ...script, ...Object.entries(flags).flatMap(([k, v]) => [k, String(v)])];
  // VIGIL_* variables of the caller's shell must not change what is measured.
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('VIGIL_')));
  const child = spawnNode('vigil', args, { cwd: REPO_ROOT, env });
  const url = `http://127.0.0.1:${port}`;
  try {
    await waitForHttp(`${url}/healthz`, child, 60_000, 200);
  } catch (err) {
    await child.stop(5000);
    rmSync(dataDir, { recursive: true, force: true });
    throw err;
  }
  return {
    url,
    adminKey,
    dataDir,
    child,
    async stop() {
      await child.stop(30_000);
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

export async function adminApi<T>(vigil: VigilProcess, method: string, path: string, body?: unknown): Promise<T> {
  const res = await fetch(vigil.url + path, {
    method,
    headers: { authorization: `Bearer ${vigil.adminKey}`, ...(body !== undefined && { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${text}`);
  return JSON.parse(text) as T;
}

export interface BenchDevice {
  deviceId: string;
  token: string;
  /** Next seq to send: (deviceId, seq) must be new on every request, across runs. */
  seq: number;
}

/** One resident with one device each, registered over the admin API as an installer would. */
export async function registerDevices(vigil: VigilProcess, count: number, prefix = 'bench'): Promise<BenchDevice[]> {
  const devices: BenchDevice[] = [];
  for (let i = 0; i < count; i++) {
    const deviceId = `${prefix}-${String(i).padStart(4, '0')}`;
    const resident = await adminApi<{ id: string }>(vigil, 'POST', '/v1/residents', { name: `Resident ${i}`, timezone: 'Europe/Paris' });
    const device = await adminApi<{ token: string }>(vigil, 'POST', '/v1/devices', { deviceId, residentId: resident.id });
    devices.push({ deviceId, token: device.token, seq: 0 });
  }
  return devices;
}

/** `GET /metrics`, every series of a name summed: `vigil_stream_commit_requests_sum` → one number. */
/**
 * Every sample of `/metrics`: each metric summed over its labels (`name`), and each labelled
 * series as written (`name{labels}`).
 */
export async function scrapeMetrics(vigil: Pick<VigilProcess, 'url'>, opts: { timeoutMs?: number } = {}): Promise<Map<string, number>> {
  const res = await fetch(`${vigil.url}/metrics`, opts.timeoutMs ? { signal: AbortSignal.timeout(opts.timeoutMs) } : {});
  const text = await res.text();
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([A-Za-z_:][\w:]*)(\{[^}]*\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    out.set(m[1], (out.get(m[1]) ?? 0) + Number(m[3]));
    if (m[2]) out.set(m[1] + m[2], Number(m[3]));
  }
  return out;
}

export interface GroupView {
  name: string;
  running: boolean;
  caughtUp: boolean;
  lag: number | null;
  handledRecords: number;
}

export async function groups(vigil: VigilProcess): Promise<GroupView[]> {
  return (await adminApi<{ groups: GroupView[] }>(vigil, 'GET', '/v1/admin/groups')).groups;
}
