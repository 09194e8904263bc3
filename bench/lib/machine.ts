/** The machine a benchmark ran on, printed first so figures are never read without it. */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import os from 'node:os';

export function describeMachine(): string[] {
  const cpus = os.cpus();
  const models = [...new Set(cpus.map((c) => c.model.trim()))].join(', ') || 'unknown';
  const gib = (bytes: number) => (bytes / 1024 ** 3).toFixed(1);
  return [
    `CPU     ${models} × ${cpus.length} (logical cores available to Node: ${os.availableParallelism()})`,
    `memory  ${gib(os.totalmem())} GiB (${gib(os.freemem())} GiB free at start)`,
    `OS      ${os.type()} ${os.release()} ${os.arch()}`,
    `Node    ${process.version}`,
    `date    ${new Date().toISOString()}`,
    `code    ${codeVersion()}`,
  ];
}

/** The commit the benchmark ran on, and whether src/ had uncommitted changes (what `npm run build` compiled). */
function codeVersion(): string {
  try {
    const git = (...args: string[]) => execFileSync('git', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    const head = git('rev-parse', '--short', 'HEAD');
    const dirty = git('status', '--porcelain', '--', 'src').split('\n').filter(Boolean).length;
    return `commit ${head}${dirty ? ` + uncommitted changes in ${dirty} file(s) of src/` : ''}`;
  } catch {
    return 'unknown (not a git checkout)';
  }
}

/**
 * CPU seconds the whole machine has been busy (all cores, all processes), from /proc/stat
 * (Linux); null elsewhere. Subtracting what the benchmark's own processes used tells how much
 * other work shared the machine during a run.
 */
export function machineBusySeconds(): number | null {
  try {
    const [, ...ticks] = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).map(Number);
    const [user, nice, system, , , irq, softirq, steal] = ticks;
    return (user + nice + system + irq + softirq + (steal ?? 0)) / 100;
  } catch {
    return null;
  }
}

/**
 * CPU seconds used so far by every process whose command name (`/proc/<pid>/comm`) is one of
 * `names`, summed per name (e.g. all `postgres` backends); Linux only, empty elsewhere. A process
 * that exits between two readings takes its CPU with it, so use this for long-lived servers.
 */
export function cpuSecondsByName(names: string[]): Map<string, number> {
  const out = new Map<string, number>();
  let pids: string[];
  try {
    pids = readdirSync('/proc').filter((d) => /^\d+$/.test(d));
  } catch {
    return out;
  }
  for (const pid of pids) {
    try {
      const comm = readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
      if (!names.includes(comm)) continue;
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      out.set(comm, (out.get(comm) ?? 0) + (Number(fields[11]) + Number(fields[12])) / 100);
    } catch {
      // gone meanwhile
    }
  }
  return out;
}
