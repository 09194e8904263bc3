import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';

/**
 * A child process applies the setting as `vigil start` does, then starts a thread (as the
 * groups run) that keeps ~80 MB of objects alive while replacing them, so that what dies has
 * lived long enough to reach the old generation: the worst case for V8's own heap sizing.
 */
const CHILD = `
  const { Worker } = await import('node:worker_threads');
  const { limitHeapGrowth } = await import(${JSON.stringify(new URL('../../dist/core/heap-growth.js', import.meta.url).href)});
  limitHeapGrowth(Number(process.argv[1]));
  const worker = new Worker(\`
    import v8 from 'node:v8';
    import { parentPort } from 'node:worker_threads';
    const ring = (globalThis.ring = new Array(400000));
    let i = 0, maxTotal = 0;
    const t0 = Date.now();
    while (Date.now() - t0 < 3000) {
      for (let k = 0; k < 5000; k++) ring[i++ % ring.length] = { a: [i, i + 1, i + 2], b: 'x' + i, c: { d: i } };
      if (Date.now() - t0 > 1000) maxTotal = Math.max(maxTotal, v8.getHeapStatistics().total_heap_size);
    }
    gc();
    parentPort.postMessage({ live: v8.getHeapStatistics().used_heap_size, maxTotal });
  \`, { eval: true });
  worker.once('message', (m) => { console.log(JSON.stringify(m)); process.exit(0); });
`;

function churn(percent: number): { live: number; maxTotal: number } {
  const out = execFileSync(process.execPath, ['--expose-gc', '--input-type=module', '-e', CHILD, String(percent)], { encoding: 'utf8', timeout: 30_000 });
  return JSON.parse(out) as { live: number; maxTotal: number };
}

describe('limitHeapGrowth', () => {
  it("keeps a busy thread's heap near its live objects, where V8 alone lets it grow to several times them", () => {
    // Here V8's own sizing reached ~6× the live objects (80 MB live, ~490 MB reserved); 10%: ~2.4× (young generation included).
    const limited = churn(10);
    expect(limited.maxTotal / limited.live).toBeLessThan(3.5);
  }, 60_000);
});
