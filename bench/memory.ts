/**
 * Memory benchmark (`npm run bench:memory`): Vigil's memory per active device, as resident
 * set size of the process and as the alerts group's detector state, at growing fleet sizes,
 * against the same Vigil with no device, in one run. See docs/performance.md.
 *
 *   npm run bench:memory -- [--sizes 10000,100000,250000] [--readings 4] [--acc-hz 25]
 *                           [--register sql|api] [--api-sample 2000] [--concurrency 32]
 *                           [--settle 5] [--catch-up-timeout 300] [--cpu-prof DIR]
 *
 * One Vigil process; the fleet grows step by step to each size (devices of earlier steps stay
 * registered and keep their state; they do not send again):
 * 1. Baseline: the RSS of the freshly started Vigil with 0 devices, after `settle` seconds.
 * 2. Per size: register the new devices (one resident each). `--register api` uses the admin
 *    API (`POST /v1/residents` + `POST /v1/devices`, 16 in flight); `sql` (default) measures
 *    the API on the first `api-sample` devices and inserts the rest straight into store.db
 *    (bench/lib/register.ts `bulkRegister`: same rows, ~100× faster).
 * 3. Each new device sends one request of `readings` readings, each with a 5-s accelerometer
 *    burst at `acc-hz` (bench/lib/load.ts `accReading`; contiguous in event time, ending now),
 *    so the detectors hold the state a real band gives them.
 * 4. Wait until every group has checkpointed every record, wait `settle` s, then: RSS (median
 *    of 5 samples, 1 s apart, /proc/<pid>/status VmRSS; VmHWM for the peak), and the alerts
 *    group's snapshot in store.db (`checkpoints.snapshot`, the JSON of every device's
 *    detector state per partition): bytes per device, and which detector holds what (from
 *    partition 0's snapshot).
 *
 * Target (issue): ≤ 2 KB of state per device (the JSON state figure). Reported, not asserted.
 */
import { parseArgs } from 'node:util';
import { describeMachine, machineBusySeconds } from './lib/machine.js';
import { fixed, formatTable, int } from './lib/table.js';
import { cpuSeconds, memoryOf } from './lib/children.js';
import { ACC_BURST_SEC, readingsBody, setEventClock } from './lib/load.js';
import { bulkRegister, registerMany, type RegisteredDevice } from './lib/register.js';
import { sendEach } from './lib/send-each.js';
import { heads, openStreamReadOnly, StoreReader, waitCheckpointed } from './lib/data-dir.js';
import { scrapeMetrics, startVigilProcess, type VigilProcess } from './lib/vigil-process.js';

const { values: opt } = parseArgs({
  options: {
    sizes: { type: 'string', default: '10000,100000,250000' },
    readings: { type: 'string', default: '4' },
    'acc-hz': { type: 'string', default: '25' },
    register: { type: 'string', default: 'sql' },
    'api-sample': { type: 'string', default: '2000' },
    concurrency: { type: 'string', default: '32' },
    settle: { type: 'string', default: '5' },
    'catch-up-timeout': { type: 'string', default: '300' },
    'cpu-prof': { type: 'string' },
  },
});
const SIZES = opt.sizes!.split(',').map(Number);
const READINGS = Number(opt.readings);
const ACC_HZ = Number(opt['acc-hz']);
const REGISTER = opt.register!;
if (REGISTER !== 'sql' && REGISTER !== 'api') throw new Error(`--register sql|api, not ${REGISTER}`);
const API_SAMPLE = Number(opt['api-sample']);
const CONCURRENCY = Number(opt.concurrency);
const SETTLE_MS = Number(opt.settle) * 1000;
const CATCH_UP_TIMEOUT_MS = Number(opt['catch-up-timeout']) * 1000;
const PARTITIONS = 8;
const GROUPS = ['alerts', 'warehouse', 'archive'];
const TARGET_STATE_BYTES = 2048;
const NOISY_OTHER_CPU_PCT = 25;

const log = (line = '') => process.stdout.write(line + '\n');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const MB = (b: number) => fixed(b / 1e6);

interface Step {
  devices: number;
  registerSec: number;
  registerHow: string;
  driveSec: number;
  driveReadings: number;
  driveMB: number;
  not202: number;
  catchUpSec: number | null;
  rss: number;
  peak: number;
  snapshots: Record<string, number>;
  vigilCpuPct: number | null;
  otherCpuPct: number | null;
}

/** Median RSS of `n` samples `everyMs` apart, and the last peak. */
async function sampleRss(pid: number, n = 5, everyMs = 1000): Promise<{ rss: number; peak: number }> {
  const rss: number[] = [];
  let peak = 0;
  for (let i = 0; i < n; i++) {
    if (i > 0) await sleep(everyMs);
    const m = memoryOf(pid);
    if (!m) return { rss: NaN, peak: NaN };
    rss.push(m.rss);
    peak = m.peak;
  }
  rss.sort((a, b) => a - b);
  return { rss: rss[Math.floor(n / 2)], peak };
}

/** Average JSON bytes per device of each part of a partition's alerts snapshot. */
function breakdown(snapshot: string): { devices: number; perDevice: number; parts: [string, number][] } {
  const parsed = JSON.parse(snapshot) as { devices: Record<string, { residentId: string; state: Record<string, unknown> }> };
  const entries = Object.entries(parsed.devices);
  const parts = new Map<string, number>();
  let total = 0;
  for (const [id, d] of entries) {
    const whole = JSON.stringify(id).length + 1 + JSON.stringify(d).length + 1;
    total += whole;
    let inState = 0;
    for (const [k, v] of Object.entries(d.state)) {
      const len = JSON.stringify(k).length + 1 + JSON.stringify(v).length + 1;
      inState += len;
      parts.set(`state.${k}`, (parts.get(`state.${k}`) ?? 0) + len);
    }
    parts.set('deviceId key, residentId, braces', (parts.get('deviceId key, residentId, braces') ?? 0) + whole - inState);
  }
  const n = Math.max(1, entries.length);
  return { devices: entries.length, perDevice: total / n, parts: [...parts].map(([k, v]) => [k, v / n] as [string, number]).sort((a, b) => b[1] - a[1]) };
}

async function addDevices(vigil: VigilProcess, from: number, count: number): Promise<{ devices: RegisteredDevice[]; seconds: number; how: string; apiPerSec: number | null }> {
  const t0 = performance.now();
  if (REGISTER === 'api') {
    const devices = await registerMany(vigil, { count, from, prefix: 'mem', concurrency: 16 });
    const seconds = (performance.now() - t0) / 1000;
    return { devices, seconds, how: 'admin API', apiPerSec: count / seconds };
  }
  let apiPerSec: number | null = null;
  let viaApi: RegisteredDevice[] = [];
  if (from === 0 && API_SAMPLE > 0) {
    const n = Math.min(API_SAMPLE, count);
    viaApi = await registerMany(vigil, { count: n, from, prefix: 'mem', concurrency: 16 });
    apiPerSec = n / ((performance.now() - t0) / 1000);
  }
  const bulk = bulkRegister(vigil.dataDir, { count: count - viaApi.length, from: from + viaApi.length, prefix: 'mem' });
  const seconds = (performance.now() - t0) / 1000;
  return { devices: [...viaApi, ...bulk], seconds, how: viaApi.length ? `API ${int(viaApi.length)} + store.db ${int(bulk.length)}` : `store.db ${int(bulk.length)}`, apiPerSec };
}

async function main(): Promise<number> {
  const started = Date.now();
  log('Vigil memory benchmark: RSS and detector state per active device, against the same Vigil with no device');
  for (const line of describeMachine()) log(`  ${line}`);
  log(
    `  fleet   ${SIZES.map(int).join(' → ')} devices (one resident each), grown in one Vigil process; each new device sends one request of ${READINGS} readings, ` +
      `each with a ${ACC_BURST_SEC}-s accelerometer burst at ${ACC_HZ} Hz, contiguous, ending now; ${CONCURRENCY} requests in flight`,
  );
  log(`  vigil   node bin/vigil.js start --simulate 0, rate limit off, --archive-flush-interval-ms 1000, ${PARTITIONS} partitions, embedded stream, SQLite store, DuckDB warehouse`);
  const nodeArgs = opt['cpu-prof'] ? ['--cpu-prof', '--cpu-prof-dir', opt['cpu-prof']] : [];
  const vigil = await startVigilProcess({ nodeArgs, flags: { '--archive-flush-interval-ms': 1000, '--stream-partitions': PARTITIONS } });
  process.once('SIGINT', () => void vigil.stop().finally(() => process.exit(130)));
  const steps: Step[] = [];
  let baseline = { rss: NaN, peak: NaN };
  let apiRate: number | null = null;
  let parts: ReturnType<typeof breakdown> | null = null;
  let broke = false;
  try {
    await sleep(SETTLE_MS);
    baseline = await sampleRss(vigil.child.pid);
    log(`  baseline (0 devices): RSS ${MB(baseline.rss)} MB`);
    const store = new StoreReader(vigil.dataDir);
    const stream = openStreamReadOnly(vigil.dataDir, PARTITIONS);
    try {
      let have = 0;
      for (const size of SIZES) {
        if (size <= have) continue;
        const reg = await addDevices(vigil, have, size - have);
        apiRate ??= reg.apiPerSec;
        log(`  ${int(size)}: ${int(size - have)} devices registered in ${fixed(reg.seconds)} s (${reg.how})`);
        const cpu0 = cpuSeconds(vigil.child.pid);
        const machine0 = machineBusySeconds();
        const self0 = process.cpuUsage();
        const t0 = performance.now();
        const sent = await sendEach(
          vigil.url,
          reg.devices.length,
          (i) => {
            const d = reg.devices[i];
            setEventClock(d, Date.now() - READINGS * ACC_BURST_SEC * 1000);
            return { path: '/v1/readings', headers: { 'content-type': 'application/json', authorization: `Bearer ${d.token}` }, body: readingsBody(d, READINGS, ACC_HZ) };
          },
          CONCURRENCY,
        );
        const driveSec = (performance.now() - t0) / 1000;
        const not202 = sent.sent - (sent.status['202'] ?? 0) + sent.errors;
        if (not202 > 0) {
          broke = true;
          log(`  BROKEN: ${not202} requests not answered 202 (${JSON.stringify(sent.status)}; first: ${sent.firstError})`);
        }
        log(`  ${int(size)}: ${int(sent.sent)} requests (${int(sent.sent * READINGS)} readings, ${MB(sent.bytes)} MB) sent in ${fixed(driveSec)} s`);
        const h = await heads(stream);
        const caught = await waitCheckpointed(store, GROUPS, h, CATCH_UP_TIMEOUT_MS);
        const catchUpSec = caught === null ? null : (caught - t0) / 1000 - driveSec;
        const cpu1 = cpuSeconds(vigil.child.pid);
        const machine1 = machineBusySeconds();
        const self = process.cpuUsage(self0);
        const wall = (performance.now() - t0) / 1000;
        if (caught === null) {
          broke = true;
          log(`  ${int(size)}: groups NOT caught up within ${CATCH_UP_TIMEOUT_MS / 1000} s: ${GROUPS.map((g) => `${g} ${int(store.progress(g, h).records)} of ${int(h.reduce<number>((a, x) => a + (x ?? 0), 0))}`).join(', ')}`);
        } else log(`  ${int(size)}: every group checkpointed every record ${fixed(catchUpSec!)} s after the last request`);
        await sleep(SETTLE_MS);
        const mem = await sampleRss(vigil.child.pid);
        const snapshots = Object.fromEntries(GROUPS.map((g) => [g, store.checkpoints(g).reduce((a, c) => a + c.snapshotBytes, 0)]));
        const vigilCpuPct = cpu0 !== null && cpu1 !== null ? ((cpu1 - cpu0) / wall) * 100 : null;
        const selfPct = ((self.user + self.system) / 1e6 / wall) * 100;
        steps.push({
          devices: size,
          registerSec: reg.seconds,
          registerHow: reg.how,
          driveSec,
          driveReadings: sent.sent * READINGS,
          driveMB: sent.bytes / 1e6,
          not202,
          catchUpSec,
          rss: mem.rss,
          peak: mem.peak,
          snapshots,
          vigilCpuPct,
          otherCpuPct: vigilCpuPct !== null && machine0 !== null && machine1 !== null ? Math.max(0, ((machine1 - machine0) / wall) * 100 - vigilCpuPct - selfPct) : null,
        });
        log(`  ${int(size)}: RSS ${MB(mem.rss)} MB (peak ${MB(mem.peak)} MB), alerts snapshot ${MB(snapshots.alerts)} MB`);
        have = size;
      }
      const p0 = store.snapshotTexts('alerts').find((r) => r.part === 0)?.snapshot;
      if (p0) parts = breakdown(p0);
    } finally {
      store.close();
      await stream.close();
    }
    const m = await scrapeMetrics(vigil);
    const dup = m.get('vigil_readings_duplicate_total') ?? 0;
    const rej = m.get('vigil_readings_rejected_total') ?? 0;
    log(`  readings accepted ${int(m.get('vigil_readings_accepted_total') ?? 0)}, duplicates ${dup}, rejected ${rej}`);
    if (dup + rej > 0) broke = true;
  } finally {
    await vigil.stop();
  }

  const pct = (v: number | null) => (v === null ? '-' : `${Math.round(v)}%`);
  log();
  const rows: (string | number)[][] = [['0 (baseline)', '-', '-', '-', '-', MB(baseline.rss), '-', '-', '-', '-', '-', '-', '-', '-']];
  steps.forEach((s, i) => {
    const prev = i === 0 ? { devices: 0, rss: baseline.rss } : steps[i - 1];
    const statePerDevice = s.snapshots.alerts / s.devices;
    rows.push([
      int(s.devices),
      `${fixed(s.registerSec)} (${s.registerHow})`,
      `${fixed(s.driveSec)} (${int(s.driveReadings / s.driveSec)} readings/s, ${fixed(s.driveMB / s.driveSec)} MB/s)`,
      s.catchUpSec === null ? `> ${CATCH_UP_TIMEOUT_MS / 1000}` : fixed(s.catchUpSec),
      pct(s.vigilCpuPct),
      MB(s.rss),
      MB(s.peak),
      MB(s.rss - baseline.rss),
      int((s.rss - baseline.rss) / s.devices),
      int((s.rss - prev.rss) / (s.devices - prev.devices)),
      MB(s.snapshots.alerts),
      int(statePerDevice),
      statePerDevice <= TARGET_STATE_BYTES ? 'PASS' : 'MISS',
      pct(s.otherCpuPct),
    ]);
  });
  log(
    formatTable(
      [
        'devices',
        'registration s',
        'drive s',
        'caught up after s',
        'Vigil CPU',
        'RSS MB',
        'peak RSS MB',
        'RSS over baseline MB',
        'RSS bytes/device (over baseline)',
        'RSS bytes/device (marginal, vs previous row)',
        'alerts snapshot MB',
        'state bytes/device (JSON)',
        `state ≤ ${int(TARGET_STATE_BYTES)} B`,
        'other CPU',
      ],
      rows,
    ),
  );
  log('(RSS: the Vigil process, all threads: HTTP, log writer, three groups, SQLite and DuckDB caches; median of 5 samples 1 s apart once every group');
  log(' had checkpointed every record. state: JSON length of the alerts group\'s snapshots in store.db ÷ devices. CPU over drive + catch-up)');
  if (apiRate !== null) log(`admin API registration: ${int(apiRate)} devices/s (resident + device, 16 in flight): ${int(SIZES[SIZES.length - 1] / apiRate)} s for ${int(SIZES[SIZES.length - 1])} devices`);
  if (parts) {
    log();
    log(`what a device's state holds (partition 0's alerts snapshot, ${int(parts.devices)} devices, ${int(parts.perDevice)} bytes/device):`);
    log(formatTable(['part', 'bytes/device', 'share'], parts.parts.map(([k, v]) => [k, int(v), `${fixed((v / parts!.perDevice) * 100)}%`])));
  }
  const noisy = steps.filter((s) => (s.otherCpuPct ?? 0) > NOISY_OTHER_CPU_PCT);
  if (noisy.length) log(`NOISY: other processes used > ${NOISY_OTHER_CPU_PCT}% of a core during ${noisy.map((s) => int(s.devices)).join(', ')} devices`);
  const last = steps[steps.length - 1];
  if (last) {
    const state = last.snapshots.alerts / last.devices;
    log();
    log(`target (issue): ≤ ${int(TARGET_STATE_BYTES)} bytes of state per device at ${int(last.devices)} devices: ${int(state)} bytes  ${state <= TARGET_STATE_BYTES ? 'PASS' : 'MISS'}`);
    log(`RSS growth per device (not the target's figure): ${int((last.rss - baseline.rss) / last.devices)} bytes over the 0-device baseline`);
  }
  log();
  log(`done in ${fixed((Date.now() - started) / 1000)} s${broke ? ' — something broke (non-202 answers, duplicates, rejected readings or groups that did not catch up)' : ''}`);
  return broke ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (err: Error) => {
    process.stderr.write(`bench:memory failed: ${err.stack ?? err.message}\n`);
    process.exit(1);
  },
);
