/**
 * Ingest benchmark (`npm run bench:ingest`): Vigil's `POST /v1/readings` against a bare
 * node:http JSON server, same load generator, same bodies, one run. See docs/performance.md.
 *
 *   npm run bench:ingest -- [--duration 10] [--warmup 2] [--connections 64] [--batches 1,50]
 *                           [--targets bare,vigil[,ingest-only]] [--cpu-prof DIR] [--archive-flush-ms 1000]
 *
 * `ingest-only` is a diagnostic: Vigil's HTTP ingest and stream writer with no consumer group,
 * to tell what ingest costs from what the groups sharing its cores cost. `--cpu-prof DIR`
 * starts the Vigil processes with `node --cpu-prof` (summarise with lib/cpuprofile-summary.ts).
 *
 * Prints the machine, one table (req/s, readings/s, latency, errors, Vigil ÷ bare, CPU), the
 * targets, how the consumer groups kept up and caught up, and the stream's commit batching.
 * Figures are reported, not asserted: the exit code is 0 unless something broke (Vigil
 * answered anything but 202, connections failed, a reading was rejected or seen as a duplicate).
 */
import { parseArgs } from 'node:util';
import { describeMachine, machineBusySeconds } from './lib/machine.js';
import { fixed, formatTable, int } from './lib/table.js';
import { startBareServer } from './lib/bare-server.js';
import { cpuSeconds, type Child } from './lib/children.js';
import { readingsBody, runLoad, type LoadResult } from './lib/load.js';
import { groups, registerDevices, scrapeMetrics, startVigilProcess, type BenchDevice, type GroupView, type VigilProcess } from './lib/vigil-process.js';

const { values: opt } = parseArgs({
  options: {
    duration: { type: 'string', default: '10' },
    warmup: { type: 'string', default: '2' },
    connections: { type: 'string', default: '64' },
    batches: { type: 'string', default: '1,50' },
    targets: { type: 'string', default: 'bare,vigil' },
    'cpu-prof': { type: 'string' },
    'archive-flush-ms': { type: 'string', default: '1000' },
    'catch-up-timeout': { type: 'string', default: '45' },
  },
});
const DURATION = Number(opt.duration);
const WARMUP = Number(opt.warmup);
const CONNECTIONS = Number(opt.connections);
const BATCHES = opt.batches!.split(',').map(Number);
const TARGETS = opt.targets!.split(',');
const CATCH_UP_TIMEOUT_MS = Number(opt['catch-up-timeout']) * 1000;

/** Targets from the issue. */
const TARGET_RATIO_AT_1 = 0.5;
const TARGET_READINGS_PER_SEC_AT_50 = 200_000;
/** Above this, another tenant took enough of a 2-core machine to move the figures. */
const NOISY_OTHER_CPU_PCT = 25;

type TargetName = 'bare' | 'vigil' | 'vigil, no groups';

interface Target {
  name: TargetName;
  url: string;
  child: Child;
  devices: BenchDevice[];
  vigil?: VigilProcess;
  stop(): Promise<unknown>;
}

interface Run {
  target: TargetName;
  batch: number;
  load: LoadResult;
  /** Server process CPU during the measured run, % of one core (all its threads). */
  serverCpuPct: number | null;
  /** CPU used by everything else on the machine during the run (other users of a shared box). */
  otherCpuPct: number | null;
  vigil?: VigilRunStats;
}

interface GroupRunStats {
  name: string;
  maxReportedLag: number;
  /** Appended minus handled when the load stopped (handled is up to 1 s old, so ≈). */
  behindAtEnd: number;
  handledPerSec: number;
  /** Seconds after the load stopped until every appended record was handled / also checkpointed (lag 0). */
  handledAfterSec: number | null;
  lagZeroAfterSec: number | null;
  handled: number;
}

interface VigilRunStats {
  appendedPerSec: number;
  groups: GroupRunStats[];
  commits: number;
  requestsPerCommit: number;
  readingsPerCommit: number;
  commitMs: number;
  accepted: number;
  duplicates: number;
  rejected: number;
}

const log = (line = '') => process.stdout.write(line + '\n');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function startTargets(): Promise<Target[]> {
  const targets: Target[] = [];
  try {
    if (TARGETS.includes('bare')) {
      const bare = await startBareServer();
      // Tokens are ignored by the bare server; the bodies are built exactly as for Vigil.
      const devices = Array.from({ length: CONNECTIONS }, (_, i) => ({ deviceId: `bare-${i}`, token: 'unused', seq: 0 }));
      targets.push({ name: 'bare', url: bare.url, child: bare.child, devices, stop: () => bare.child.stop(5000) });
    }
    for (const [flag, name, ingestOnly] of [['vigil', 'vigil', false], ['ingest-only', 'vigil, no groups', true]] as const) {
      if (!TARGETS.includes(flag)) continue;
      const nodeArgs = opt['cpu-prof'] ? ['--cpu-prof', '--cpu-prof-dir', opt['cpu-prof']] : [];
      const vigil = await startVigilProcess({ nodeArgs, ingestOnly, flags: { '--archive-flush-interval-ms': opt['archive-flush-ms']! } });
      const target: Target = { name, url: vigil.url, child: vigil.child, devices: [], vigil, stop: () => vigil.stop() };
      targets.push(target); // before registering, so a failure still stops it
      target.devices = await registerDevices(vigil, CONNECTIONS);
    }
  } catch (err) {
    await Promise.all(targets.map((t) => t.stop()));
    throw err;
  }
  return targets;
}

interface Hooks {
  /** Awaited after the warm-up, just before the measured run. */
  before(): Promise<void>;
  /** Awaited just after the measured run. */
  after(): Promise<void>;
}

/** Warm-up (JIT, connection set-up, SQLite/DuckDB caches), then the measured run with CPU use. */
async function measure(t: Target, batch: number, hooks?: Hooks) {
  const load = (durationSec: number) => runLoad({ url: t.url, devices: t.devices, readingsPerRequest: batch, durationSec, connections: CONNECTIONS });
  if (WARMUP > 0) await load(WARMUP);
  await hooks?.before();
  const cpu0 = cpuSeconds(t.child.pid);
  const machine0 = machineBusySeconds();
  const t0 = performance.now();
  const result = await load(DURATION);
  const cpu1 = cpuSeconds(t.child.pid);
  const machine1 = machineBusySeconds();
  const wallSec = (performance.now() - t0) / 1000;
  await hooks?.after();
  const serverCpuPct = cpu0 !== null && cpu1 !== null ? ((cpu1 - cpu0) / wallSec) * 100 : null;
  const otherCpuPct =
    serverCpuPct !== null && machine0 !== null && machine1 !== null
      ? Math.max(0, ((machine1 - machine0) / wallSec) * 100 - serverCpuPct - result.generatorCpuPct)
      : null;
  return { load: result, serverCpuPct, otherCpuPct };
}

interface Progress {
  at: number;
  /** Stream records appended so far: a record is one request, so this is the committed requests. */
  appended: number;
  view: GroupView[];
}

async function progress(vigil: VigilProcess): Promise<Progress> {
  const [metrics, view] = await Promise.all([scrapeMetrics(vigil), groups(vigil)]);
  return { at: performance.now(), appended: metrics.get('vigil_stream_commit_requests_sum') ?? 0, view };
}

/**
 * Samples /v1/admin/groups every second during the load for the lag each group reports
 * (groups post their stats once a second, so what the API shows is up to 1 s old).
 */
function sampleLag(vigil: VigilProcess, maxLag: Map<string, number>): () => Promise<void> {
  let busy: Promise<void> = Promise.resolve();
  const timer = setInterval(() => {
    busy = busy.then(async () => {
      for (const g of await groups(vigil).catch(() => [] as GroupView[])) maxLag.set(g.name, Math.max(maxLag.get(g.name) ?? 0, g.lag ?? 0));
    });
  }, 1000);
  return async () => {
    clearInterval(timer);
    await busy;
  };
}

/** After the load: polls until each group has handled every appended record and reports lag 0. */
async function catchUp(vigil: VigilProcess, loadEnd: number) {
  const handledAt = new Map<string, number>();
  const lagZeroAt = new Map<string, number>();
  let last: GroupView[] = [];
  while (performance.now() < loadEnd + CATCH_UP_TIMEOUT_MS) {
    const p = await progress(vigil);
    last = p.view;
    for (const g of p.view) {
      if (g.handledRecords < p.appended) continue;
      if (!handledAt.has(g.name)) handledAt.set(g.name, p.at);
      if (!lagZeroAt.has(g.name) && g.lag === 0) lagZeroAt.set(g.name, p.at);
    }
    if (p.view.every((g) => lagZeroAt.has(g.name))) break;
    await sleep(200);
  }
  const after = (m: Map<string, number>, name: string) => (m.has(name) ? Math.max(0, (m.get(name)! - loadEnd) / 1000) : null);
  return last.map((g) => ({ name: g.name, handledAfterSec: after(handledAt, g.name), lagZeroAfterSec: after(lagZeroAt, g.name), handled: g.handledRecords }));
}

async function runBare(t: Target, batch: number): Promise<Run> {
  return { target: t.name, batch, ...(await measure(t, batch)) };
}

async function runVigil(t: Target, batch: number): Promise<Run> {
  const vigil = t.vigil!;
  const before = await scrapeMetrics(vigil);
  const handledBefore = new Map((await groups(vigil)).map((g) => [g.name, g.handledRecords]));
  const maxLag = new Map<string, number>();
  // Filled by the hooks around the measured run.
  const mark: { start?: Progress; end?: Progress; loadEnd: number; stopSampling?: () => Promise<void> } = { loadEnd: 0 };
  const measured = await measure(t, batch, {
    async before() {
      mark.start = await progress(vigil);
      mark.stopSampling = sampleLag(vigil, maxLag);
    },
    async after() {
      mark.loadEnd = performance.now();
      mark.end = await progress(vigil);
      await mark.stopSampling!();
    },
  });
  const caught = await catchUp(vigil, mark.loadEnd);
  const after = await scrapeMetrics(vigil);
  const delta = (name: string) => (after.get(name) ?? 0) - (before.get(name) ?? 0);
  const commits = delta('vigil_stream_commit_requests_count');
  const [s, e] = [mark.start!, mark.end!];
  const sec = (e.at - s.at) / 1000;
  const handledIn = (p: Progress, name: string) => p.view.find((g) => g.name === name)?.handledRecords ?? 0;
  return {
    target: t.name,
    batch,
    ...measured,
    vigil: {
      appendedPerSec: (e.appended - s.appended) / sec,
      groups: caught.map((g) => ({
        ...g,
        handled: g.handled - (handledBefore.get(g.name) ?? 0),
        maxReportedLag: maxLag.get(g.name) ?? 0,
        behindAtEnd: Math.max(0, e.appended - handledIn(e, g.name)),
        handledPerSec: (handledIn(e, g.name) - handledIn(s, g.name)) / sec,
      })),
      commits,
      requestsPerCommit: delta('vigil_stream_commit_requests_sum') / Math.max(1, commits),
      readingsPerCommit: delta('vigil_stream_commit_readings_sum') / Math.max(1, commits),
      commitMs: (delta('vigil_stream_commit_seconds_sum') * 1000) / Math.max(1, commits),
      accepted: delta('vigil_readings_accepted_total'),
      duplicates: delta('vigil_readings_duplicate_total'),
      rejected: delta('vigil_readings_rejected_total'),
    },
  };
}

function report(runs: Run[]): boolean {
  const bareOf = (batch: number) => runs.find((r) => r.target === 'bare' && r.batch === batch);
  const pct = (v: number | null) => (v === null ? '-' : `${Math.round(v)}%`);
  log();
  log(
    formatTable(
      ['target', 'readings/req', 'req/s', 'readings/s', 'p50 ms', 'p99 ms', 'non-2xx', 'errors', 'Vigil ÷ bare', 'server CPU', 'generator CPU', 'other CPU'],
      runs.map((r) => {
        const bare = bareOf(r.batch);
        return [
          r.target,
          r.batch,
          int(r.load.reqPerSec),
          int(r.load.readingsPerSec),
          fixed(r.load.p50Ms, 0),
          fixed(r.load.p99Ms, 0),
          r.load.not202,
          r.load.errors + r.load.timeouts,
          r.target !== 'bare' && bare ? fixed(r.load.reqPerSec / bare.load.reqPerSec, 2) : '-',
          pct(r.serverCpuPct),
          pct(r.load.generatorCpuPct),
          pct(r.otherCpuPct),
        ];
      }),
    ),
  );
  log('(non-2xx counts every answer other than 202. CPU is % of one core, summed over threads: server = the target process,');
  log(' generator = this process, other = everything else on the machine; a high "other" means a shared, noisy run)');
  const noisy = runs.filter((r) => (r.otherCpuPct ?? 0) > NOISY_OTHER_CPU_PCT);
  if (noisy.length) {
    log(`NOISY: other processes used > ${NOISY_OTHER_CPU_PCT}% of a core during ${noisy.map((r) => `${r.target} ${r.batch}/req`).join(', ')}: run again before comparing`);
  }

  log();
  log('Targets (reported, not asserted):');
  const v1 = runs.find((r) => r.target === 'vigil' && r.batch === 1);
  const b1 = bareOf(1);
  if (v1 && b1) {
    const ratio = v1.load.reqPerSec / b1.load.reqPerSec;
    const verdict = ratio >= TARGET_RATIO_AT_1 ? 'PASS' : 'MISS';
    log(`  ≥ ${TARGET_RATIO_AT_1} × bare at 1 reading/request: ${fixed(ratio, 2)} × bare (${int(v1.load.reqPerSec)} vs ${int(b1.load.reqPerSec)} req/s)  ${verdict}`);
  }
  const v50 = runs.find((r) => r.target === 'vigil' && r.batch === 50);
  if (v50) {
    const rps = v50.load.readingsPerSec;
    log(`  ≥ ${int(TARGET_READINGS_PER_SEC_AT_50)} readings/s at 50 readings/request: ${int(rps)} readings/s  ${rps >= TARGET_READINGS_PER_SEC_AT_50 ? 'PASS' : 'MISS'}`);
  }

  let ok = true;
  for (const r of runs.filter((x) => x.vigil)) {
    const v = r.vigil!;
    log();
    log(`${r.target} at ${r.batch} reading(s)/request: ${int(v.appendedPerSec)} stream records/s appended during the load (one record = one request)`);
    if (v.groups.length === 0) log('  (no consumer group runs)');
    else {
      log('  consumer groups: "max lag reported" is GET /v1/admin/groups sampled every second; "behind" is records appended minus');
      log('  records the group handled; catch-up is timed from the end of the load (~1 s steps: groups post stats every second)');
      log(
        formatTable(
          ['group', 'max lag reported', 'behind at load end ≈', 'handled records/s during load', 'all handled after (s)', 'lag 0 after (s)', 'records handled'],
          v.groups.map((g) => [
            g.name,
            int(g.maxReportedLag),
            int(g.behindAtEnd),
            int(g.handledPerSec),
            g.handledAfterSec === null ? `> ${CATCH_UP_TIMEOUT_MS / 1000}` : fixed(g.handledAfterSec),
            g.lagZeroAfterSec === null ? `> ${CATCH_UP_TIMEOUT_MS / 1000}` : fixed(g.lagZeroAfterSec),
            int(g.handled),
          ]),
        ),
      );
    }
    log(
      `  stream commits: ${int(v.commits)} fsync'd commits, ${fixed(v.requestsPerCommit)} requests and ${fixed(v.readingsPerCommit)} readings per commit on average, ${fixed(v.commitMs, 2)} ms per commit (warm-up included)`,
    );
    log(`  readings accepted ${int(v.accepted)}, duplicates ${v.duplicates}, rejected ${v.rejected} (warm-up included)`);
    const problems = [
      r.load.not202 > 0 && `${r.load.not202} answers were not 202`,
      r.load.errors + r.load.timeouts > 0 && `${r.load.errors} connection errors, ${r.load.timeouts} timeouts`,
      v.duplicates > 0 && `${v.duplicates} readings were seen as duplicates (the generator reused a seq)`,
      v.rejected > 0 && `${v.rejected} readings were rejected`,
    ].filter(Boolean);
    if (problems.length) {
      ok = false;
      log(`  BROKEN: ${problems.join('; ')}`);
    }
  }
  return ok;
}

async function main(): Promise<number> {
  const started = Date.now();
  log('Vigil ingest benchmark: POST /v1/readings vs a bare node:http JSON server');
  for (const line of describeMachine()) log(`  ${line}`);
  const sample = readingsBody({ deviceId: 'bench-0000', token: '', seq: 0 }, 1);
  log(
    `  load    autocannon in the benchmark's own process (1 JS thread), ${CONNECTIONS} connections (one device each), pipelining 1, ` +
      `${WARMUP} s warm-up + ${DURATION} s per run, targets interleaved per batch size; each server is its own child process on 127.0.0.1. ` +
      `Generator and servers share the machine's cores: see the CPU columns.`,
  );
  log(`  body    every request carries new (deviceId, seq); one reading is ${Buffer.byteLength(sample)} bytes, no accelerometer`);
  log(
    `  vigil   node bin/vigil.js start (HTTP thread + log writer thread + alerts, warehouse, archive group threads), ` +
      `rate limit off, --archive-flush-interval-ms ${opt['archive-flush-ms']} so that "lag 0" is not a wait for the archive's timed flush`,
  );
  log();

  const targets = await startTargets();
  // Ctrl-C: the children get it too, but their temp data dirs are ours to remove.
  process.once('SIGINT', () => void Promise.all(targets.map((t) => t.stop())).then(() => process.exit(130)));
  const runs: Run[] = [];
  try {
    // Interleaved, so that the runs compared with each other are minutes apart at most.
    for (const batch of BATCHES) {
      for (const t of targets) {
        const run = t.vigil ? await runVigil(t, batch) : await runBare(t, batch);
        runs.push(run);
        log(`  ${t.name}, ${batch}/request: ${int(run.load.reqPerSec)} req/s`);
      }
    }
  } finally {
    await Promise.all(targets.map((t) => t.stop()));
  }
  const ok = report(runs);
  log();
  log(`done in ${fixed((Date.now() - started) / 1000)} s`);
  return ok ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (err: Error) => {
    process.stderr.write(`bench:ingest failed: ${err.stack ?? err.message}\n`);
    process.exit(1);
  },
);
