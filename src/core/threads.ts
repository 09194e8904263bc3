import { Worker, type WorkerOptions } from 'node:worker_threads';

/**
 * Starts a worker thread on a module next to the caller, given as
 * `new URL('./x-worker.js', import.meta.url)`. From compiled code that file exists; from
 * TypeScript source (vitest, tsx) the `.ts` twin is started through tsx's loader.
 */
export function startWorker(entry: URL, options: WorkerOptions = {}): Worker {
  const fromSource = import.meta.url.endsWith('.ts');
  if (!fromSource) return new Worker(entry, options);
  const tsEntry = entry.href.replace(/\.js$/, '.ts');
  return new Worker(new URL('./ts-worker-boot.mjs', import.meta.url), {
    ...options,
    workerData: { ...(options.workerData as object), __vigilEntry: tsEntry },
  });
}
