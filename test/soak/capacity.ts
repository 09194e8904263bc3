/**
 * Capacity for the soak, measured the way `npm run bench:e2e` measures it: the benchmark itself
 * runs as a child (its own Vigil, its own data dir) and its verdict line is read back. The soak
 * then offers half of it. Measuring at the start of the run, rather than trusting a figure
 * from docs/performance.md, keeps "half of capacity" true for this machine and this commit.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));

export interface Capacity {
  /** Highest offered rate bench:e2e held, readings/s. */
  readingsPerSec: number;
  /** The exact benchmark arguments, for the report. */
  command: string;
  /** Its whole output (machine, every step), kept with the soak's figures. */
  output: string;
}

/** One bench:e2e run: its highest held rate (0 if none) and whether it flagged other load (NOISY). */
async function benchOnce(args: string[]): Promise<{ held: number; noisy: boolean; output: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'bench/e2e.ts', ...args], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (c: Buffer) => (output += c.toString('utf8')));
  child.stderr.on('data', (c: Buffer) => (output += c.toString('utf8')));
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  const held = /highest offered rate held: ([\d,]+|none)/.exec(output);
  if (!held) throw new Error(`bench:e2e exited ${code} without a verdict:\n${output}`);
  return { held: held[1] === 'none' ? 0 : Number(held[1].replaceAll(',', '')), noisy: output.includes('NOISY'), output };
}

/**
 * Runs bench/e2e.ts on the embedded backend with readings shaped like the simulator's (one
 * reading per request, a 5-s accelerometer burst at `accHz`) over `rates`, and returns the
 * highest rate held. Other work on the machine can only lower what holds, so a run that
 * bench:e2e flags NOISY is retried (up to `attempts`) and the best run counts. Throws if none
 * held: a soak at "half of nothing" would prove nothing.
 */
export async function measureCapacity(opts: { rates: number[]; accHz: number; batch: number; attempts?: number }): Promise<Capacity> {
  const args = ['--backend', 'embedded', '--acc-hz', String(opts.accHz), '--batch', String(opts.batch), '--rates', opts.rates.join(',')];
  const runs: Awaited<ReturnType<typeof benchOnce>>[] = [];
  for (let i = 0; i < (opts.attempts ?? 3); i++) {
    if (i > 0) await new Promise((r) => setTimeout(r, 20_000));
    runs.push(await benchOnce(args));
    if (!runs.at(-1)!.noisy) break;
  }
  const best = runs.reduce((a, b) => (b.held > a.held ? b : a));
  if (best.held === 0) throw new Error(`bench:e2e held no rate:\n${best.output}`);
  return {
    readingsPerSec: best.held,
    command: `npm run bench:e2e -- ${args.join(' ')}`,
    output: runs.map((r, i) => `--- run ${i + 1}${r === best ? ' (taken)' : ''}${r.noisy ? ' (NOISY)' : ''}: held ${r.held}\n${r.output}`).join('\n'),
  };
}
