/**
 * Starts consumer groups in worker threads of this process and talks to them: their latest
 * stats (lag, counters), rewinds for replay, warehouse queries, and a clean stop (flush,
 * checkpoint, release leases). A worker that dies is restarted after a pause; its
 * partitions resume from their checkpoints.
 */
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import type { Worker } from 'node:worker_threads';
import type { Logger } from 'pino';
import type { Config } from '../core/config.js';
import { startWorker } from '../core/threads.js';
import type { Position } from '../stream/types.js';
import type { GroupStats } from './runtime.js';
import type { GroupCounters, GroupName } from './groups/registry.js';
import type { GroupReply, GroupRequest, GroupWorkerData, ThreadMemory } from './group-protocol.js';

type WithoutId<T> = T extends unknown ? Omit<T, 'id'> : never;

interface Hosted {
  name: GroupName;
  worker: Worker | null;
  stats: GroupStats | null;
  counters: GroupCounters | null;
  memory: ThreadMemory | null;
  ready: Promise<void>;
  stopping: boolean;
  restarts: number;
}

export class GroupHost {
  private readonly groups = new Map<GroupName, Hosted>();
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private nextId = 1;
  private readonly owner = `${hostname()}:${process.pid}:${randomBytes(4).toString('hex')}`;

  constructor(
    private readonly config: Config,
    private readonly log: Logger,
  ) {}

  /** Starts the groups; resolves once each has opened its stream, store and sink. */
  async start(names: readonly GroupName[]): Promise<void> {
    for (const name of names) {
      const hosted: Hosted = { name, worker: null, stats: null, counters: null, memory: null, ready: Promise.resolve(), stopping: false, restarts: 0 };
      this.groups.set(name, hosted);
      this.spawn(hosted);
    }
    await Promise.all([...this.groups.values()].map((g) => g.ready));
  }

  private spawn(hosted: Hosted): void {
    const data: GroupWorkerData = { config: this.config, group: hosted.name, owner: `${this.owner}:${hosted.name}` };
    const worker = startWorker(new URL('./group-worker.js', import.meta.url), { workerData: data });
    hosted.worker = worker;
    hosted.ready = new Promise((resolve, reject) => {
      worker.on('message', (msg: GroupReply) => {
        switch (msg.type) {
          case 'ready':
            resolve();
            break;
          case 'failed':
            reject(new Error(`group ${hosted.name}: ${msg.error}`));
            break;
          case 'stats':
            hosted.stats = msg.stats;
            hosted.counters = msg.counters;
            hosted.memory = msg.memory;
            break;
          case 'reply': {
            const p = this.pending.get(msg.id);
            this.pending.delete(msg.id);
            if (msg.error !== undefined) p?.reject(new Error(msg.error));
            else p?.resolve(msg.result);
            break;
          }
        }
      });
      worker.on('error', (err) => {
        this.log.error({ err, group: hosted.name }, 'group worker error');
        reject(err);
      });
      worker.on('exit', (code) => {
        hosted.worker = null;
        if (hosted.stopping) return;
        hosted.restarts++;
        const delay = Math.min(30_000, 500 * 2 ** Math.min(hosted.restarts, 6));
        this.log.error({ group: hosted.name, code, restartInMs: delay }, 'group worker exited; restarting');
        setTimeout(() => {
          if (hosted.stopping) return;
          this.spawn(hosted);
          hosted.ready.catch((err) => this.log.error({ err, group: hosted.name }, 'group restart failed'));
        }, delay).unref();
      });
    });
    // Avoid an unhandled rejection when nobody awaits a restart's readiness.
    hosted.ready.catch(() => undefined);
  }

  private request(name: GroupName, msg: WithoutId<Extract<GroupRequest, { id: number }>>): Promise<unknown> {
    const hosted = this.groups.get(name);
    if (!hosted?.worker) return Promise.reject(new Error(`group ${name} is not running`));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      hosted.worker!.postMessage({ ...msg, id } as GroupRequest);
    });
  }

  rewind(name: GroupName, position: Position): Promise<void> {
    return this.request(name, { type: 'rewind', position }) as Promise<void>;
  }

  query<T>(name: GroupName, method: string, args: unknown): Promise<T> {
    return this.request(name, { type: 'query', method, args }) as Promise<T>;
  }

  has(name: GroupName): boolean {
    return this.groups.has(name);
  }

  stats(): { name: GroupName; running: boolean; stats: GroupStats | null; counters: GroupCounters | null; memory: ThreadMemory | null }[] {
    return [...this.groups.values()].map((g) => ({ name: g.name, running: g.worker !== null, stats: g.stats, counters: g.counters, memory: g.memory }));
  }

  /** Each group flushes, checkpoints and releases its leases before its thread ends. */
  async stop(): Promise<void> {
    await Promise.all(
      [...this.groups.values()].map(async (g) => {
        g.stopping = true;
        const worker = g.worker;
        if (!worker) return;
        await new Promise<void>((resolve) => {
          worker.once('exit', () => resolve());
          worker.postMessage({ type: 'stop' } satisfies GroupRequest);
        });
      }),
    );
    for (const p of this.pending.values()) p.reject(new Error('stopping'));
    this.pending.clear();
  }
}
