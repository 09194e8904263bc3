/**
 * End-to-end benchmark (`npm run bench:e2e`): sustained throughput of Vigil as a whole, ingest
 * and every consumer group, at a fixed offered rate that steps up. See docs/performance.md.
 *
 *   npm run bench:e2e -- [--backend embedded|nats-pg] [--rates 10000,20000,40000,50000,60000,80000 (nats-pg: 2500,…,40000)]
 *                        [--step 10] [--warmup 3] [--batch 50] [--connections 64]
 *                        [--lag-limit 2] [--keep-going] [--pg-admin-url URL] [--nats-servers HOST:PORT]
 *                        [--acc-hz 25] [--cpu-prof DIR]
 *
 * `--acc-hz HZ` puts a 5-s accelerometer burst at HZ in every reading, as a real band sends
 * (bench/lib/load.ts `accReading`; ~2.7 KB per reading at 25 Hz); default 0: no accelerometer.
 * `--cpu-prof DIR` starts Vigil under `node --cpu-prof` (summarise with lib/cpuprofile-summary.ts).
 *
 * Each step offers a fixed rate (autocannon `overallRate`, readings/s ÷ readings per request)
 * while `GET /v1/admin/groups` is sampled every second. A step holds when every answer was 202,
 * the achieved rate is within 5% of the offered rate, and at the end of the step every group's
 * lag is below `--lag-limit` seconds worth of records (lag in records ÷ appended records/s;
 * a stream record is one request). Between steps the groups are given up to 20 s to catch up,
 * so that a step starts from lag ≈ 0. Stepping stops at the first step that does not hold
 * (unless --keep-going) and when the time budget (~150 s of steps) is spent.
 *
 * `nats-pg` runs Vigil on the development machine's NATS JetStream and PostgreSQL, in a fresh
 * stream and a fresh schema that are removed afterwards (with the stream's `KV_<name>_seen`).
 * Figures are reported, not asserted: exit 0 unless something broke.
 */
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import { cpuSecondsByName, describeMachine, machineBusySeconds } from './lib/machine.js';
import { fixed, formatTable, int } from './lib/table.js';
import { cpuSeconds } from './lib/children.js';
import { accReading, ACC_BURST_SEC, runLoad, type LoadResult } from './lib/load.js';
import { groups, registerDevices, scrapeMetrics, startVigilProcess, type BenchDevice, type GroupView, type VigilProcess } from './lib/vigil-process.js';

const { values: opt } = parseArgs({
  options: {
    backend: { type: 'string', default: 'embedded' },
    /** Default: 10k–80k for embedded (50k is the issue's target), 2.5k–40k for nats-pg (a local JetStream and PostgreSQL share the cores). */
    rates: { type: 'string' },
    step: { type: 'string', default: '10' },
    warmup: { type: 'string', default: '3' },
    batch: { type: 'string', default: '50' },
    connections: { type: 'string', default: '64' },
    'lag-limit': { type: 'string', default: '2' },
    'keep-going': { type: 'boolean', default: false },
    'acc-hz': { type: 'string', default: '0' },
    'cpu-prof': { type: 'string' },
    'pg-admin-url': { type: 'string', default: 'postgres://postgres@127.0.0.1:5432/test' },
    'nats-servers': { type: 'string', default: '127.0.0.1:4222' },
  },
});
const BACKEND = opt.backend!;
if (BACKEND !== 'embedded' && BACKEND !== 'nats-pg') throw new Error(`--backend embedded|nats-pg, not ${BACKEND}`);
const RATES = (opt.rates ?? (BACKEND === 'embedded' ? '10000,20000,40000,50000,60000,80000' : '2500,5000,10000,20000,40000')).split(',').map(Number);
const STEP_SEC = Number(opt.step);
const WARMUP_SEC = Number(opt.warmup);
const BATCH = Number(opt.batch);
const CONNECTIONS = Number(opt.connections);
const LAG_LIMIT_SEC = Number(opt['lag-limit']);
const ACC_HZ = Number(opt['acc-hz']);
const CATCH_UP_BETWEEN_STEPS_MS = 20_000;
/** Steps are not started past this (from the start of the first step): the run stays < 3 min. */
const STEP_BUDGET_MS = 150_000;
/** A step whose achieved rate is below this share of the offered one did not sustain it. */
const ACHIEVED_MIN_SHARE = 0.95;

/** Above this, another tenant took enough of a 2-core machine to move the figures (as in bench/ingest.ts). */
const NOISY_OTHER_CPU_PCT = 25;

/** Target from the issue: embedded ≥ 50k readings/s sustained with lag < 2 s. */
const TARGET_EMBEDDED_READINGS_PER_SEC = 50_000;

/** Server processes whose CPU is reported per step, by /proc/<pid>/comm. */
const ENGINE_PROCESSES = BACKEND === 'nats-pg' ? ['nats-server', 'postgres'] : [];

const log = (line = '') => process.stdout.write(line + '\n');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Engines {
  flags: Record<string, string>;
  describe: string;
  cleanup(): Promise<void>;
}

/** A fresh NATS stream name and PostgreSQL schema for one run; `cleanup` drops both. */
async function freshNatsPg(): Promise<Engines> {
  const { default: pg } = await import('pg');
  const id = randomBytes(4).toString('hex');
  const schema = `vigil_bench_${id}`;
  const stream = `VIGIL_BENCH_${id.toUpperCase()}`;
  const adminUrl = opt['pg-admin-url']!;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  await admin.query(`CREATE SCHEMA ${schema}`);
  await admin.end();
  const u = new URL(adminUrl);
  u.searchParams.set('options', `-c search_path=${schema}`);
  const url = u.toString();
  return {
    flags: {
      '--stream-backend': 'nats',
      '--nats-servers': `nats://${opt['nats-servers']!}`,
      '--nats-stream': stream,
      '--store-backend': 'postgres',
      '--store-postgres-url': url,
      '--warehouse-backend': 'postgres',
      '--warehouse-postgres-url': url,
    },
    describe: `NATS JetStream ${opt['nats-servers']} stream ${stream}, PostgreSQL ${u.host}${u.pathname} schema ${schema} (store and warehouse)`,
    async cleanup() {
      const errors: string[] = [];
      try {
        const c = new pg.Client({ connectionString: adminUrl });
        await c.connect();
        await c.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
        await c.end();
      } catch (err) {
        errors.push(`schema ${schema}: ${(err as Error).message}`);
      }
      try {
        const { connect } = await import('@nats-io/transport-node');
        const { jetstreamManager } = await import('@nats-io/jetstream');
        const nc = await connect({ servers: opt['nats-servers']! });
        const jsm = await jetstreamManager(nc);
        for (const name of [stream, `KV_${stream}_seen`]) await jsm.streams.delete(name).catch(() => undefined);
        await nc.close();
      } catch (err) {
        errors.push(`stream ${stream}: ${(err as Error).message}`);
      }
      if (errors.length) throw new Error(`cleanup failed: ${errors.join('; ')}`);
    },
  };
}

interface GroupStep {
  name: string;
  maxLag: number;
  endLag: number;
  /** Appended records minus the records the group reported handled, at the end of the step (handled is ≤ 1 s old). */
  behindAtEnd: number;
}

interface Step {
  offered: number;
  load: LoadResult;
  appendedPerSec: number;
  groups: GroupStep[];
  /** % of one core over the step. */
  cpu: { vigil: number | null; generator: number; engines: Map<string, number>; other: number | null };
  held: boolean;
  why: string[];
}

async function appendedSoFar(vigil: VigilProcess): Promise<number> {
  return (await scrapeMetrics(vigil)).get('vigil_stream_commit_requests_sum') ?? 0;
}

/** Waits (bounded) until every group reports lag 0, so a step starts clean. */
async function settle(vigil: VigilProcess): Promise<boolean> {
  const deadline = performance.now() + CATCH_UP_BETWEEN_STEPS_MS;
  while (performance.now() < deadline) {
    const view = await groups(vigil);
    if (view.every((g) => g.lag === 0)) return true;
    await sleep(250);
  }
  return false;
}

/** 202 answers so far, over every load of the run: each is one appended stream record. */
let acceptedRequests = 0;

async function runStep(vigil: VigilProcess, devices: BenchDevice[], offered: number): Promise<Step> {
  const maxLag = new Map<string, number>();
  const note = (view: GroupView[]) => {
    for (const g of view) maxLag.set(g.name, Math.max(maxLag.get(g.name) ?? 0, g.lag ?? 0));
  };
  let busy: Promise<void> = Promise.resolve();
  const timer = setInterval(() => {
    busy = busy.then(async () => note(await groups(vigil).catch(() => [] as GroupView[])));
  }, 1000);

  const appended0 = await appendedSoFar(vigil);
  const engines0 = cpuSecondsByName(ENGINE_PROCESSES);
  const vigil0 = cpuSeconds(vigil.child.pid);
  const machine0 = machineBusySeconds();
  const t0 = performance.now();
  let load: LoadResult;
  try {
    load = await runLoad({ url: vigil.url, devices, readingsPerRequest: BATCH, durationSec: STEP_SEC, connections: CONNECTIONS, overallRate: offered / BATCH, accHz: ACC_HZ });
  } finally {
    clearInterval(timer);
  }
  const wallSec = (performance.now() - t0) / 1000;
  acceptedRequests += load.requests - load.not202;
  const vigil1 = cpuSeconds(vigil.child.pid);
  const machine1 = machineBusySeconds();
  const engines1 = cpuSecondsByName(ENGINE_PROCESSES);
  const appended1 = await appendedSoFar(vigil);
  await busy;
  // The lag at the end of the step: what the groups reported last (their stats are ≤ 1 s old).
  const endView = await groups(vigil);
  note(endView);

  // Every 202 is one appended record; /metrics counts the embedded stream's commits only.
  const appendedPerSec = appended1 > appended0 ? (appended1 - appended0) / wallSec : (load.requests - load.not202) / wallSec;
  const pct = (sec: number) => (sec / wallSec) * 100;
  const engines = new Map(ENGINE_PROCESSES.map((n) => [n, pct((engines1.get(n) ?? 0) - (engines0.get(n) ?? 0))]));
  const vigilPct = vigil0 !== null && vigil1 !== null ? pct(vigil1 - vigil0) : null;
  const enginesPct = [...engines.values()].reduce((a, b) => a + b, 0);
  const other =
    machine0 !== null && machine1 !== null && vigilPct !== null ? Math.max(0, pct(machine1 - machine0) - vigilPct - load.generatorCpuPct - enginesPct) : null;

  const lagLimit = appendedPerSec * LAG_LIMIT_SEC;
  const appendedTotal = appended1 > 0 ? appended1 : acceptedRequests;
  const groupsOut = endView.map((g) => ({
    name: g.name,
    maxLag: maxLag.get(g.name) ?? 0,
    endLag: g.lag ?? Number.POSITIVE_INFINITY,
    behindAtEnd: Math.max(0, appendedTotal - g.handledRecords),
  }));
  const why = [
    load.not202 > 0 && `${load.not202} answers not 202`,
    load.errors + load.timeouts > 0 && `${load.errors} errors, ${load.timeouts} timeouts`,
    load.readingsPerSec < offered * ACHIEVED_MIN_SHARE && `achieved < ${ACHIEVED_MIN_SHARE * 100}% of offered`,
    ...groupsOut.filter((g) => !(g.endLag < lagLimit)).map((g) => `${g.name} lag ${fixed(g.endLag / Math.max(1, appendedPerSec))} s at end`),
    endView.length === 0 && 'no group reported',
  ].filter((x): x is string => typeof x === 'string');
  return {
    offered,
    load,
    appendedPerSec,
    groups: groupsOut,
    cpu: { vigil: vigilPct, generator: load.generatorCpuPct, engines, other },
    held: why.length === 0,
    why,
  };
}

function report(steps: Step[]): void {
  const names = [...new Set(steps.flatMap((s) => s.groups.map((g) => g.name)))];
  const pct = (v: number | null | undefined) => (v === null || v === undefined ? '-' : `${Math.round(v)}%`);
  log();
  log(
    formatTable(
      [
        'offered readings/s',
        'achieved readings/s',
        'p50 ms',
        'p99 ms',
        'non-202',
        ...names.map((n) => `${n} max lag (records / s)`),
        'behind at end ≈ s',
        'held',
        'Vigil CPU',
        ...ENGINE_PROCESSES.map((n) => `${n} CPU`),
        'generator CPU',
        'other CPU',
      ],
      steps.map((s) => [
        int(s.offered),
        int(s.load.readingsPerSec),
        fixed(s.load.p50Ms, 0),
        fixed(s.load.p99Ms, 0),
        s.load.not202 + s.load.errors + s.load.timeouts,
        ...names.map((n) => {
          const g = s.groups.find((x) => x.name === n);
          return g ? `${int(g.maxLag)} / ${fixed(g.maxLag / Math.max(1, s.appendedPerSec))}` : '-';
        }),
        s.groups.map((g) => `${g.name} ${fixed(g.behindAtEnd / Math.max(1, s.appendedPerSec))}`).join(', '),
        s.held ? 'yes' : `no (${s.why.join('; ')})`,
        pct(s.cpu.vigil),
        ...ENGINE_PROCESSES.map((n) => pct(s.cpu.engines.get(n))),
        pct(s.cpu.generator),
        pct(s.cpu.other),
      ]),
    ),
  );
  log(
    `(lag: the most any group reported over the step, sampled every second, in stream records (one record = one request of ${BATCH} readings) ` +
      `and in seconds = records ÷ appended records/s. "behind at end": appended records minus the records each group reported handled ` +
      `(≤ 1 s old), in seconds of appends: what the group really still had to do, whatever the stream's sequence numbering. ` +
      `CPU: % of one core over the step, all threads; other = rest of the machine)`,
  );
  const noisy = steps.filter((s) => (s.cpu.other ?? 0) > NOISY_OTHER_CPU_PCT);
  if (noisy.length) {
    log(`NOISY: other processes used > ${NOISY_OTHER_CPU_PCT}% of a core during ${noisy.map((s) => int(s.offered)).join(', ')} readings/s: run again before comparing`);
  }
  const held = steps.filter((s) => s.held);
  const best = held.length ? Math.max(...held.map((s) => s.offered)) : null;
  log();
  log(`highest offered rate held: ${best === null ? 'none' : `${int(best)} readings/s`}`);
  if (BACKEND === 'embedded') {
    const verdict = best !== null && best >= TARGET_EMBEDDED_READINGS_PER_SEC ? 'PASS' : 'MISS';
    log(`target (issue): embedded ≥ ${int(TARGET_EMBEDDED_READINGS_PER_SEC)} readings/s sustained with lag < ${LAG_LIMIT_SEC} s: ${verdict}`);
  } else {
    log(`target (issue): none for nats-pg; recorded: ${best === null ? 'none' : int(best)} readings/s sustained with lag < ${LAG_LIMIT_SEC} s`);
  }
}

async function main(): Promise<number> {
  const started = Date.now();
  log(`Vigil end-to-end benchmark, backend ${BACKEND}: fixed offered rate, stepping up, ingest + every consumer group`);
  for (const line of describeMachine()) log(`  ${line}`);
  log(
    `  load    autocannon in this process, ${CONNECTIONS} connections (one device each), pipelining 1, ${BATCH} readings/request, ` +
      `overallRate = offered ÷ ${BATCH} req/s; ${WARMUP_SEC} s warm-up, then ${STEP_SEC} s per step: ${RATES.map(int).join(', ')} readings/s`,
  );
  log(
    ACC_HZ > 0
      ? `  body    every reading carries a ${ACC_BURST_SEC}-s accelerometer burst at ${ACC_HZ} Hz (${Buffer.byteLength(accReading('bench-0000', 0, Date.now(), ACC_HZ))} bytes per reading), contiguous in event time per device`
      : '  body    readings of ~160 bytes, no accelerometer (--acc-hz to add bursts)',
  );
  log(`  holds   every answer 202, achieved ≥ ${ACHIEVED_MIN_SHARE * 100}% of offered, every group's lag at the end of the step < ${LAG_LIMIT_SEC} s worth of records`);

  const engines = BACKEND === 'nats-pg' ? await freshNatsPg() : null;
  let vigil: VigilProcess | null = null;
  let stopping = false;
  const cleanup = async () => {
    if (stopping) return;
    stopping = true;
    await vigil?.stop();
    await engines?.cleanup();
  };
  process.once('SIGINT', () => void cleanup().finally(() => process.exit(130)));
  const steps: Step[] = [];
  let broke = false;
  try {
    log(`  vigil   node bin/vigil.js start --simulate 0, rate limit off, --archive-flush-interval-ms 1000${engines ? `; ${engines.describe}` : ', embedded stream, SQLite store, DuckDB warehouse'}`);
    const nodeArgs = opt['cpu-prof'] ? ['--cpu-prof', '--cpu-prof-dir', opt['cpu-prof']] : [];
    vigil = await startVigilProcess({ nodeArgs, flags: { '--archive-flush-interval-ms': 1000, ...engines?.flags } });
    const devices = await registerDevices(vigil, CONNECTIONS);
    if (WARMUP_SEC > 0) {
      const w = await runLoad({ url: vigil.url, devices, readingsPerRequest: BATCH, durationSec: WARMUP_SEC, connections: CONNECTIONS, overallRate: RATES[0] / BATCH, accHz: ACC_HZ });
      acceptedRequests += w.requests - w.not202;
      if (w.not202 + w.errors + w.timeouts > 0) broke = true;
    }
    const stepsFrom = performance.now();
    for (const rate of RATES) {
      if (performance.now() - stepsFrom > STEP_BUDGET_MS - STEP_SEC * 1000) {
        log(`  (time budget spent: ${int(rate)} readings/s and above not run)`);
        break;
      }
      const clean = await settle(vigil);
      const s = await runStep(vigil, devices, rate);
      steps.push(s);
      log(
        `  ${int(rate)} readings/s offered: ${int(s.load.readingsPerSec)} achieved, ${s.held ? 'held' : `not held (${s.why.join('; ')})`}` +
          (clean ? '' : ' (groups had not caught up with the previous step when it started)'),
      );
      if (s.load.not202 > 0 || s.load.errors > 0) broke = true;
      if (!s.held && !opt['keep-going']) break;
    }
    const m = await scrapeMetrics(vigil);
    const dup = m.get('vigil_readings_duplicate_total') ?? 0;
    const rej = m.get('vigil_readings_rejected_total') ?? 0;
    log(`  readings accepted ${int(m.get('vigil_readings_accepted_total') ?? 0)}, duplicates ${dup}, rejected ${rej}`);
    if (dup + rej > 0) broke = true;
  } finally {
    await cleanup();
  }
  report(steps);
  log();
  log(`done in ${fixed((Date.now() - started) / 1000)} s${broke ? ' — something broke (non-202 answers, errors, duplicates or rejected readings)' : ''}`);
  return broke ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (err: Error) => {
    process.stderr.write(`bench:e2e failed: ${err.stack ?? err.message}\n`);
    process.exit(1);
  },
);
