/** The machine a benchmark ran on, printed first so figures are never read without it. */
import { readFileSync } from 'node:fs';
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
  ];
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
