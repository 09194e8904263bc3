/** The machine a benchmark ran on, printed first so figures are never read without it. */
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
