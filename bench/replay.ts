/**
 * Replay benchmark (`npm run bench:replay`): how fast each consumer group catches up after
 * `POST /v1/admin/groups/{group}/replay {"from":"TRIM_HORIZON"}`, against the stream read alone,
 * in one run. See docs/performance.md.
 *
 *   npm run bench:replay -- [--readings 2000000] [--batch 50] [--connections 64] [--acc-hz 0]
 *                           [--groups alerts,warehouse,archive] [--together] [--timeout 120]
 *                           [--cpu-prof DIR]
 *
 * 1. Load: `readings` readings, `batch` per request, as fast as ingest takes them (autocannon,
 *    closed loop, `amount`), groups running; then wait until every group has checkpointed
 *    every record.
 * 2. Baseline, Vigil idle: the stream read alone, in this process, through Vigil's compiled
 *    EmbeddedStream (what the groups use), every partition from the start in batches of
 *    `processor.batchRecords` (256): once raw, once with each record's JSON parsed (every group
 *    parses every record). The ingest rate of step 1 is printed too.
 * 3. Each group in turn (and with --together all three at once): POST replay TRIM_HORIZON,
 *    then poll the group's checkpoints in store.db every 100 ms until every partition's
 *    checkpoint is back at its head. Time from the POST to that point; the rate "10–90%" is
 *    the slope between 10% and 90% of the records checkpointed (no start-up, no tail).
 *    Checkpoints move at each flush (alerts ≤ 200 ms, warehouse 2,000 records or 1 s, archive
 *    `--archive-flush-interval-ms` 1000 here), which bounds the timing's resolution.
 *
 * Target (issue): replay ≥ 200,000 readings/s, per group. Reported, not asserted.
 */
import { parseArgs } from 'node:util';
import { describeMachine, machineBusySeconds } from './lib/machine.js';
import { fixed, formatTable, int } from './lib/table.js';
import { cpuSeconds } from './lib/children.js';
import { runLoad } from './lib/load.js';
import { heads, openStreamReadOnly, StoreReader, waitCheckpointed } from './lib/data-dir.js';
import { adminApi, groups, registerDevices, scrapeMetrics, startVigilProcess, type VigilProcess } from './lib/vigil-process.js';

const { values: opt } = parseArgs({
  options: {
    readings: { type: 'string', default: '2000000' },
    batch: { type: 'string', default: '50' },
    connections: { type: 'string', default: '64' },
    'acc-hz': { type: 'string', default: '0' },
    groups: { type: 'string', default: 'alerts,warehouse,archive' },
    together: { type: 'boolean', default: false },
    timeout: { type: 'string', default: '120' },
    'cpu-prof': { type: 'string' },
  },
});
const READINGS = Number(opt.readings);
const BATCH = Number(opt.batch);
const CONNECTIONS = Number(opt.connections);
const ACC_HZ = Number(opt['acc-hz']);
const GROUPS = opt.groups!.split(',');
const TIMEOUT_MS = Number(opt.timeout) * 1000;
const PARTITIONS = 8;
const READ_BATCH = 256;
const TARGET_READINGS_PER_SEC = 200_000;
const NOISY_OTHER_CPU_PCT = 25;

const log = (line = '') => process.stdout.write(line + '\n');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Replay {
  name: string;
  groups: string[];
  records: number;
  readings: number;
  seconds: number;
  /** Slope between 10% and 90% checkpointed, records/s (of every group replayed). */
  steadyRecordsPerSec: number | null;
  caughtUp: boolean;
  handledDelta: number;
  vigilCpuPct: number | null;
  otherCpuPct: number | null;
}

async function replay(vigil: VigilProcess, store: StoreReader, names: string[], h: (number | null)[], totalRecords: number, readingsPerRecord: number): Promise<Replay> {
  const handled0 = new Map((await groups(vigil)).map((g) => [g.name, g.handledRecords]));
  const samples: [number, number][] = [];
  const cpu0 = cpuSeconds(vigil.child.pid);
  const machine0 = machineBusySeconds();
  const self0 = process.cpuUsage();
  const t0 = performance.now();
  for (const g of names) await adminApi(vigil, 'POST', `/v1/admin/groups/${g}/replay`, { from: 'TRIM_HORIZON' });
  const done = await waitCheckpointed(store, names, h, TIMEOUT_MS, (records, at) => samples.push([records, at]));
  const t1 = done ?? performance.now();
  const seconds = (t1 - t0) / 1000;
  const cpu1 = cpuSeconds(vigil.child.pid);
  const machine1 = machineBusySeconds();
  const self = process.cpuUsage(self0);
  // Stats are posted every second: wait for the last ones before reading handledRecords.
  await sleep(1200);
  const handled1 = new Map((await groups(vigil)).map((g) => [g.name, g.handledRecords]));
  const all = totalRecords * names.length;
  const at = (share: number) => samples.find(([r]) => r >= share * all)?.[1] ?? null;
  const [a, b] = [at(0.1), at(0.9)];
  const steady = a !== null && b !== null && b > a ? (0.8 * all) / ((b - a) / 1000) / names.length : null;
  const vigilCpuPct = cpu0 !== null && cpu1 !== null ? ((cpu1 - cpu0) / seconds) * 100 : null;
  const selfPct = ((self.user + self.system) / 1e6 / seconds) * 100;
  return {
    name: names.length === 1 ? names[0] : `${names.join(' + ')} together`,
    groups: names,
    records: totalRecords,
    readings: totalRecords * readingsPerRecord,
    seconds,
    steadyRecordsPerSec: steady,
    caughtUp: done !== null,
    handledDelta: names.reduce((n, g) => n + (handled1.get(g)! - handled0.get(g)!), 0),
    vigilCpuPct,
    otherCpuPct: vigilCpuPct !== null && machine0 !== null && machine1 !== null ? Math.max(0, ((machine1 - machine0) / seconds) * 100 - vigilCpuPct - selfPct) : null,
  };
}

/** The stream read alone (Vigil idle): every partition from the start, raw and with each record parsed. */
async function readAll(dataDir: string, parse: boolean) {
  const stream = openStreamReadOnly(dataDir, PARTITIONS);
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  let records = 0;
  let readings = 0;
  let bytes = 0;
  for (let p = 0; p < PARTITIONS; p++) {
    let after: string | null = null;
    for (;;) {
      const batch = await stream.read(p, after, READ_BATCH);
      if (batch.length === 0) break;
      for (const r of batch) {
        bytes += r.data.length;
        if (parse) readings += (JSON.parse(r.data) as { readings: unknown[] }).readings.length;
      }
      records += batch.length;
      after = batch[batch.length - 1].sequence;
    }
  }
  const seconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  await stream.close();
  return { records, readings, bytes, seconds, cpuPct: ((cpu.user + cpu.system) / 1e6 / seconds) * 100 };
}

async function main(): Promise<number> {
  const started = Date.now();
  log(`Vigil replay benchmark: catch-up rate of each consumer group from TRIM_HORIZON, against the stream read alone`);
  for (const line of describeMachine()) log(`  ${line}`);
  log(
    `  load    ${int(READINGS)} readings, ${BATCH} per request (one stream record each), autocannon ${CONNECTIONS} connections as fast as answered` +
      `${ACC_HZ > 0 ? `, ${ACC_HZ}-Hz accelerometer bursts` : ', no accelerometer'}; groups running`,
  );
  log(`  vigil   node bin/vigil.js start --simulate 0, rate limit off, --archive-flush-interval-ms 1000, ${PARTITIONS} partitions, embedded stream, SQLite store, DuckDB warehouse`);
  const nodeArgs = opt['cpu-prof'] ? ['--cpu-prof', '--cpu-prof-dir', opt['cpu-prof']] : [];
  const vigil = await startVigilProcess({ nodeArgs, flags: { '--archive-flush-interval-ms': 1000, '--stream-partitions': PARTITIONS } });
  process.once('SIGINT', () => void vigil.stop().finally(() => process.exit(130)));
  let broke = false;
  const replays: Replay[] = [];
  let ingest = { readingsPerSec: 0, seconds: 0 };
  let raw: Awaited<ReturnType<typeof readAll>> | null = null;
  let parsed: Awaited<ReturnType<typeof readAll>> | null = null;
  let totalRecords = 0;
  let readingsPerRecord = BATCH;
  try {
    const devices = await registerDevices(vigil, CONNECTIONS);
    const requests = Math.ceil(READINGS / BATCH);
    const load = await runLoad({ url: vigil.url, devices, readingsPerRequest: BATCH, durationSec: 3600, amount: requests, connections: CONNECTIONS, accHz: ACC_HZ });
    ingest = { readingsPerSec: load.readingsPerSec, seconds: load.durationSec };
    log(`  loaded  ${int(load.requests * BATCH)} readings in ${fixed(load.durationSec)} s: ${int(load.readingsPerSec)} readings/s (p99 ${fixed(load.p99Ms, 0)} ms, ${load.not202} not 202)`);
    if (load.not202 + load.errors + load.timeouts > 0) broke = true;

    const stream = openStreamReadOnly(vigil.dataDir, PARTITIONS);
    const h = await heads(stream);
    await stream.close();
    totalRecords = h.reduce<number>((a, x) => a + (x ?? 0), 0);
    const store = new StoreReader(vigil.dataDir);
    try {
      const t = performance.now();
      const caught = await waitCheckpointed(store, GROUPS, h, 180_000);
      log(`  groups  ${caught === null ? 'NOT caught up within 180 s' : `every group checkpointed every record ${fixed((caught - t) / 1000)} s after the load`}`);

      raw = await readAll(vigil.dataDir, false);
      parsed = await readAll(vigil.dataDir, true);
      readingsPerRecord = parsed.readings / Math.max(1, parsed.records);
      log(`  stream  ${int(raw.records)} records, ${int(parsed.readings)} readings, ${fixed(raw.bytes / 1e6)} MB of record JSON`);

      const runs = GROUPS.map((g) => [g]);
      if (opt.together) runs.push(GROUPS);
      for (const names of runs) {
        const r = await replay(vigil, store, names, h, totalRecords, readingsPerRecord);
        replays.push(r);
        log(`  replay  ${r.name}: ${int(r.readings / r.seconds)} readings/s (${fixed(r.seconds)} s)${r.caughtUp ? '' : ' — NOT caught up before the timeout'}`);
        if (!r.caughtUp) broke = true;
        await sleep(1000);
      }
    } finally {
      store.close();
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
  const rows: (string | number)[][] = [];
  rows.push(['ingest of the load (closed loop, groups running)', '-', int(READINGS), fixed(ingest.seconds), '-', int(ingest.readingsPerSec), '-', '-', '-', '-']);
  if (raw && parsed) {
    rows.push(['stream read alone, raw (this process)', int(raw.records), int(parsed.readings), fixed(raw.seconds, 2), int(raw.records / raw.seconds), int(parsed.readings / raw.seconds), '-', '-', `${Math.round(raw.cpuPct)}% (bench)`, '-']);
    rows.push(['stream read alone + JSON.parse (this process)', int(parsed.records), int(parsed.readings), fixed(parsed.seconds, 2), int(parsed.records / parsed.seconds), int(parsed.readings / parsed.seconds), '-', '-', `${Math.round(parsed.cpuPct)}% (bench)`, '-']);
  }
  for (const r of replays) {
    rows.push([
      `replay ${r.name}`,
      int(r.records * r.groups.length),
      int(r.readings * r.groups.length),
      fixed(r.seconds, 1),
      int((r.records * r.groups.length) / r.seconds),
      int(r.readings / r.seconds),
      r.steadyRecordsPerSec === null ? '-' : int(r.steadyRecordsPerSec * readingsPerRecord),
      r.readings / r.seconds >= TARGET_READINGS_PER_SEC ? 'PASS' : 'MISS',
      pct(r.vigilCpuPct),
      pct(r.otherCpuPct),
    ]);
  }
  log(
    formatTable(
      ['what', 'records', 'readings', 'seconds', 'records/s', 'readings/s (per group)', 'readings/s 10–90% (per group)', `≥ ${int(TARGET_READINGS_PER_SEC)}/s`, 'Vigil CPU', 'other CPU'],
      rows,
    ),
  );
  log(`(one record = one request of ${fixed(readingsPerRecord, 0)} readings. Replay time: from the POST to every partition's checkpoint back at its head,`);
  log(' polled every 100 ms; "together": all groups rewound at once, rate per group. CPU: % of one core, Vigil process all threads)');
  for (const r of replays) if (Math.abs(r.handledDelta - r.records * r.groups.length) > 0) log(`  note: ${r.name} reported ${int(r.handledDelta)} records handled for ${int(r.records * r.groups.length)} replayed`);
  const noisy = replays.filter((r) => (r.otherCpuPct ?? 0) > NOISY_OTHER_CPU_PCT);
  if (noisy.length) log(`NOISY: other processes used > ${NOISY_OTHER_CPU_PCT}% of a core during ${noisy.map((r) => r.name).join(', ')}: run again before comparing`);
  log();
  log(`target (issue): replay ≥ ${int(TARGET_READINGS_PER_SEC)} readings/s per group:`);
  for (const r of replays) log(`  ${r.name}: ${int(r.readings / r.seconds)} readings/s  ${r.readings / r.seconds >= TARGET_READINGS_PER_SEC ? 'PASS' : 'MISS'}`);
  log();
  log(`done in ${fixed((Date.now() - started) / 1000)} s${broke ? ' — something broke (non-202 answers, duplicates, rejected readings or a replay that did not finish)' : ''}`);
  return broke ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (err: Error) => {
    process.stderr.write(`bench:replay failed: ${err.stack ?? err.message}\n`);
    process.exit(1);
  },
);
