/**
 * What the soak records every ~10 s: the Vigil child's RSS and CPU, each group's lag, what has
 * been accepted, the simulator's and the rest of the machine's CPU, and disk. Each sample is
 * appended to a CSV as it is taken, so an hour's figures survive a soak that dies at minute 50.
 */
import { appendFileSync, readdirSync, statfsSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cpuSeconds, memoryOf } from '../../bench/lib/children.js';
import { machineBusySeconds } from '../../bench/lib/machine.js';
import { scrapeMetrics } from '../../bench/lib/vigil-process.js';

export const GROUPS = ['alerts', 'warehouse', 'archive'] as const;

export interface Sample {
  /** Seconds since load started. */
  t: number;
  rssMB: number;
  /** % of one core since the previous sample, all threads. */
  vigilCpu: number;
  simulatorCpu: number;
  /** The rest of the machine (the other engineer's work, the test runner, the kernel). */
  otherCpu: number;
  accepted: number;
  /** Records (= requests; one reading each at batch 1) appended but not yet checkpointed, per group. */
  lag: Record<(typeof GROUPS)[number], number>;
  dataMB: number;
  diskFreeGB: number;
  memory: MemoryParts;
}

/**
 * What the RSS is made of, MB: each V8 heap (the main thread's, the group threads' summed) as
 * used and as reserved (what RSS sees), the memory their objects hold outside the heap
 * (Buffers, ArrayBuffers), and the rest: native memory of DuckDB, SQLite, the allocator.
 */
export interface MemoryParts {
  heapMainUsed: number;
  heapMainTotal: number;
  externalMain: number;
  heapGroupsUsed: number;
  heapGroupsTotal: number;
  externalGroups: number;
  /** RSS minus the reserved heaps and the external memory. */
  native: number;
  /** The part of `native` DuckDB counts as its own (the warehouse's buffer manager). */
  duckdb: number;
  /** Each group thread's heap, used and reserved (the summed figures above, split). */
  heapAlertsUsed: number;
  heapAlertsTotal: number;
  heapWarehouseUsed: number;
  heapWarehouseTotal: number;
  heapArchiveUsed: number;
  heapArchiveTotal: number;
}

export const MEMORY_PARTS: (keyof MemoryParts)[] = [
  'heapMainUsed',
  'heapMainTotal',
  'externalMain',
  'heapGroupsUsed',
  'heapGroupsTotal',
  'externalGroups',
  'native',
  'duckdb',
  'heapAlertsUsed',
  'heapAlertsTotal',
  'heapWarehouseUsed',
  'heapWarehouseTotal',
  'heapArchiveUsed',
  'heapArchiveTotal',
];

function memoryParts(rssMB: number, metrics: Map<string, number>): MemoryParts {
  const mb = (name: string) => (metrics.get(name) ?? NaN) / 1e6;
  const groupMb = (name: string, group: (typeof GROUPS)[number]) => mb(`${name}{group="${group}"}`);
  const parts = {
    heapMainUsed: mb('vigil_nodejs_heap_size_used_bytes'),
    heapMainTotal: mb('vigil_nodejs_heap_size_total_bytes'),
    externalMain: mb('vigil_nodejs_external_memory_bytes'),
    heapGroupsUsed: mb('vigil_group_heap_used_bytes'),
    heapGroupsTotal: mb('vigil_group_heap_total_bytes'),
    externalGroups: mb('vigil_group_external_bytes'),
  };
  const native = rssMB - parts.heapMainTotal - parts.externalMain - parts.heapGroupsTotal - parts.externalGroups;
  return {
    ...parts,
    native,
    duckdb: mb('vigil_group_sink_memory_bytes'),
    heapAlertsUsed: groupMb('vigil_group_heap_used_bytes', 'alerts'),
    heapAlertsTotal: groupMb('vigil_group_heap_total_bytes', 'alerts'),
    heapWarehouseUsed: groupMb('vigil_group_heap_used_bytes', 'warehouse'),
    heapWarehouseTotal: groupMb('vigil_group_heap_total_bytes', 'warehouse'),
    heapArchiveUsed: groupMb('vigil_group_heap_used_bytes', 'archive'),
    heapArchiveTotal: groupMb('vigil_group_heap_total_bytes', 'archive'),
  };
}

export interface SamplerOptions {
  vigilUrl: string;
  adminKey: string;
  vigilPid: number;
  simulatorPid: number;
  dataDir: string;
  csvFile: string;
  everyMs: number;
}

function duMB(dir: string): number {
  let bytes = 0;
  const walk = (d: string) => {
    for (const name of readdirSync(d)) {
      const p = join(d, name);
      try {
        const s = statSync(p);
        if (s.isDirectory()) walk(p);
        else bytes += s.size;
      } catch {
        // removed while walking (stream trimming, archive temp files)
      }
    }
  };
  walk(dir);
  return bytes / 1e6;
}

export async function groupLag(url: string, adminKey: string): Promise<Record<(typeof GROUPS)[number], number>> {
  const res = await fetch(`${url}/v1/admin/groups`, { headers: { authorization: `Bearer ${adminKey}` }, signal: AbortSignal.timeout(5000) });
  const { groups } = (await res.json()) as { groups: { name: string; lag: number | null }[] };
  const lag = { alerts: NaN, warehouse: NaN, archive: NaN };
  for (const g of groups) if (g.name in lag) lag[g.name as keyof typeof lag] = g.lag ?? NaN;
  return lag;
}

/** Starts sampling at once and every `everyMs`; `stop()` ends it and returns every sample. */
export function startSampler(o: SamplerOptions): { samples: Sample[]; stop(): Promise<Sample[]> } {
  const samples: Sample[] = [];
  writeFileSync(o.csvFile, `t_s,rss_mb,vigil_cpu_pct,simulator_cpu_pct,other_cpu_pct,accepted,lag_alerts,lag_warehouse,lag_archive,data_mb,disk_free_gb,${MEMORY_PARTS.map((p) => `${p}_mb`).join(',')}\n`);
  const t0 = performance.now();
  let prev = { wall: t0, vigil: cpuSeconds(o.vigilPid) ?? 0, sim: cpuSeconds(o.simulatorPid) ?? 0, machine: machineBusySeconds() ?? 0 };
  const take = async () => {
    const now = performance.now();
    const vigil = cpuSeconds(o.vigilPid) ?? prev.vigil;
    const sim = cpuSeconds(o.simulatorPid) ?? prev.sim;
    const machine = machineBusySeconds() ?? prev.machine;
    // The first sample has no interval behind it: its CPU figures are NaN, not a division by ~0.
    const pct = (d: number) => (now - prev.wall < 1000 ? NaN : (d / ((now - prev.wall) / 1000)) * 100);
    const [metrics, lag] = await Promise.all([scrapeMetrics({ url: o.vigilUrl }, { timeoutMs: 5000 }), groupLag(o.vigilUrl, o.adminKey)]);
    const fs = statfsSync(o.dataDir);
    const rssMB = (memoryOf(o.vigilPid)?.rss ?? NaN) / 1e6;
    const s: Sample = {
      t: Math.round((now - t0) / 1000),
      rssMB,
      vigilCpu: pct(vigil - prev.vigil),
      simulatorCpu: pct(sim - prev.sim),
      // Our own process (vitest worker) is in here too: it only samples, a few % at most.
      otherCpu: Math.max(0, pct(machine - prev.machine) - pct(vigil - prev.vigil) - pct(sim - prev.sim)),
      accepted: metrics.get('vigil_readings_accepted_total') ?? NaN,
      lag,
      dataMB: duMB(o.dataDir),
      diskFreeGB: (fs.bavail * fs.bsize) / 1e9,
      memory: memoryParts(rssMB, metrics),
    };
    prev = { wall: now, vigil, sim, machine };
    samples.push(s);
    const f = (n: number, d = 1) => n.toFixed(d);
    appendFileSync(o.csvFile, [s.t, f(s.rssMB), f(s.vigilCpu), f(s.simulatorCpu), f(s.otherCpu), s.accepted, s.lag.alerts, s.lag.warehouse, s.lag.archive, f(s.dataMB), f(s.diskFreeGB), ...MEMORY_PARTS.map((p) => f(s.memory[p]))].join(',') + '\n');
  };
  // A sample that fails (a scrape timing out under load) is skipped, not fatal: the next one counts.
  let busy: Promise<void> = take().catch(() => undefined);
  const timer = setInterval(() => (busy = busy.then(take).catch(() => undefined)), o.everyMs);
  return {
    samples,
    async stop() {
      clearInterval(timer);
      await busy;
      return samples;
    },
  };
}

/** Least-squares slope of y over x. */
export function slope(xs: number[], ys: number[]): number {
  const n = xs.length;
  const mx = xs.reduce((a, b) => a + b, 0) / n;
  const my = ys.reduce((a, b) => a + b, 0) / n;
  let num = 0;
  let den = 0;
  for (let i = 0; i < n; i++) {
    num += (xs[i] - mx) * (ys[i] - my);
    den += (xs[i] - mx) ** 2;
  }
  return den === 0 ? 0 : num / den;
}

/**
 * Theil–Sen slope: the median of the slopes between every pair of points. A few spikes (a GC
 * that has not run yet, an archive buffer about to be flushed) move it little, where they pull
 * a least-squares fit by their square: the RSS of a process holding a 60-s buffer swings by
 * ±100 MB around its trend.
 */
export function medianSlope(xs: number[], ys: number[]): number {
  const slopes: number[] = [];
  for (let i = 0; i < xs.length; i++) {
    for (let j = i + 1; j < xs.length; j++) if (xs[j] !== xs[i]) slopes.push((ys[j] - ys[i]) / (xs[j] - xs[i]));
  }
  if (slopes.length === 0) return 0;
  slopes.sort((a, b) => a - b);
  const mid = slopes.length >> 1;
  return slopes.length % 2 ? slopes[mid] : (slopes[mid - 1] + slopes[mid]) / 2;
}
