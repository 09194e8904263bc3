/**
 * Summarises V8 .cpuprofile files (from `node --cpu-prof`, one per thread): where each thread
 * spent its time, by package and by function, self and inclusive.
 *
 *   node --import tsx bench/lib/cpuprofile-summary.ts <dir or files...> [--top 20]
 *
 * Self time of a frame is the sum of the sampling intervals (timeDeltas) whose sample landed
 * in it; inclusive time counts a sample once for every distinct frame on its stack.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { fixed, formatTable } from './table.js';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

/** Buckets that answer "where does the time go": our code, each library, the runtime. */
export function packageOf(url: string, fn: string): string {
  if (url === '') return fn.startsWith('(') ? fn : `(native) ${fn || 'anonymous'}`;
  const nm = /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(url);
  if (nm) return nm[1];
  if (url.startsWith('node:')) return `node:${url.slice(5).split('/')[0]}`;
  const own = /\/(?:dist|src)\/(.+)$/.exec(url);
  if (own) return `vigil ${own[1].split('/')[0]}/`;
  return url;
}

function shortUrl(url: string): string {
  const nm = /node_modules\/(.+)$/.exec(url);
  if (nm) return nm[1];
  const own = /\/(?:dist|src)\/(.+)$/.exec(url);
  return own ? own[1] : url;
}

/** Which Vigil thread a profile is, from the scripts it ran. */
function threadName(p: CpuProfile): string {
  const urls = new Set(p.nodes.map((n) => n.callFrame.url));
  const has = (suffix: string) => [...urls].some((u) => u.endsWith(suffix));
  if (has('cli/main.js')) return 'main (HTTP)';
  if (has('embedded-writer-worker.js')) return 'stream log writer';
  for (const g of ['alerts', 'warehouse', 'archive']) if (has(`groups/${g}-group.js`)) return `group ${g}`;
  return 'unknown';
}

export interface ThreadSummary {
  name: string;
  wallMs: number;
  busyMs: number;
  byPackage: [string, number][];
  selfTop: [string, number][];
  inclusiveOwnTop: [string, number][];
}

export function summarise(p: CpuProfile, top = 20): ThreadSummary {
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const label = (n: ProfileNode) =>
    `${n.callFrame.functionName || '(anonymous)'} ${n.callFrame.url ? `${shortUrl(n.callFrame.url)}:${n.callFrame.lineNumber + 1}` : ''}`.trim();

  const self = new Map<string, number>();
  const pkg = new Map<string, number>();
  const inclusive = new Map<string, number>();
  let idleMs = 0;
  for (let i = 0; i < p.samples.length; i++) {
    // timeDeltas[i] is the time since the previous sample: attribute it to this sample's frame.
    const ms = (p.timeDeltas[i] ?? 0) / 1000;
    const node = byId.get(p.samples[i])!;
    const fn = node.callFrame.functionName;
    if (fn === '(idle)') {
      idleMs += ms;
      continue;
    }
    self.set(label(node), (self.get(label(node)) ?? 0) + ms);
    const bucket = packageOf(node.callFrame.url, fn);
    pkg.set(bucket, (pkg.get(bucket) ?? 0) + ms);
    const seen = new Set<string>();
    for (let id: number | undefined = node.id; id !== undefined; id = parent.get(id)) {
      const n = byId.get(id)!;
      if (!/\/(dist|src)\//.test(n.callFrame.url) || n.callFrame.url.includes('node_modules')) continue;
      const l = label(n);
      if (seen.has(l)) continue;
      seen.add(l);
      inclusive.set(l, (inclusive.get(l) ?? 0) + ms);
    }
  }
  const wallMs = (p.endTime - p.startTime) / 1000;
  const sorted = (m: Map<string, number>) => [...m].sort((a, b) => b[1] - a[1]).slice(0, top);
  return { name: threadName(p), wallMs, busyMs: wallMs - idleMs, byPackage: sorted(pkg), selfTop: sorted(self), inclusiveOwnTop: sorted(inclusive) };
}

function main(): void {
  const { values, positionals } = parseArgs({ options: { top: { type: 'string', default: '20' } }, allowPositionals: true });
  const top = Number(values.top);
  const files = positionals.flatMap((p) =>
    statSync(p).isDirectory() ? readdirSync(p).filter((f) => f.endsWith('.cpuprofile')).map((f) => join(p, f)) : [p],
  );
  if (files.length === 0) throw new Error('usage: cpuprofile-summary.ts <dir or .cpuprofile files...> [--top N]');
  const threads = files.map((f) => summarise(JSON.parse(readFileSync(f, 'utf8')) as CpuProfile, top));
  threads.sort((a, b) => b.busyMs - a.busyMs);
  const out = (s = '') => process.stdout.write(s + '\n');
  out(formatTable(['thread', 'profiled s', 'busy s', 'busy %'], threads.map((t) => [t.name, fixed(t.wallMs / 1000), fixed(t.busyMs / 1000), `${Math.round((t.busyMs / t.wallMs) * 100)}%`])));
  for (const t of threads) {
    const share = (ms: number) => `${fixed((ms / t.busyMs) * 100)}%`;
    out(`\n## ${t.name}: busy ${fixed(t.busyMs / 1000)} s of ${fixed(t.wallMs / 1000)} s`);
    out('\nself time by package:\n');
    out(formatTable(['package', 'ms', '% of busy'], t.byPackage.map(([k, ms]) => [k, fixed(ms, 0), share(ms)])));
    out('\nself time by function:\n');
    out(formatTable(['function', 'ms', '% of busy'], t.selfTop.map(([k, ms]) => [k, fixed(ms, 0), share(ms)])));
    out('\ninclusive time of Vigil functions:\n');
    out(formatTable(['function', 'ms', '% of busy'], t.inclusiveOwnTop.map(([k, ms]) => [k, fixed(ms, 0), share(ms)])));
  }
}

if (import.meta.url === `file://${process.argv[1]}`) main();
