/**
 * The embedded stream: appends go to the log writer thread (started on the first append, so
 * reader-only threads never start one); reads use this thread's own read-only connection.
 * New-data notices travel on a BroadcastChannel between threads of this process; readers in
 * other processes fall back to their poll timeout.
 */
import { join } from 'node:path';
import { mkdirSync } from 'node:fs';
import { BroadcastChannel, type Worker } from 'node:worker_threads';
import { startWorker } from '../../core/threads.js';
import {
  StreamUnavailableError,
  type AppendEntry,
  type AppendResult,
  type Position,
  type Sequence,
  type Stream,
  type StreamRecord,
} from '../types.js';
import { EmbeddedLogReader } from './embedded-log.js';
import type { AppendRequest, CommitStats, WriterReply, WriterRequest, WriterWorkerData } from './writer-protocol.js';
import { AppendWaiters } from '../append-waiters.js';

export interface EmbeddedStreamOptions {
  dataDir: string;
  partitions: number;
  retentionMs: number;
  retentionCheckMs?: number;
  /** Appends waiting for the writer before `append` fails fast with StreamUnavailableError. */
  maxPendingAppends?: number;
  onCommit?: (stats: CommitStats) => void;
}

interface Pending {
  resolve: (r: AppendResult[]) => void;
  reject: (e: Error) => void;
}

export class EmbeddedStream implements Stream {
  readonly partitions: number;
  private readonly path: string;
  private reader: EmbeddedLogReader | null = null;
  private writer: Worker | null = null;
  private writerReady: Promise<void> | null = null;
  private writerDead: Error | null = null;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  /** Appends of this event-loop turn, posted together (one message instead of one per request). */
  private outgoing: AppendRequest[] = [];
  private channel: BroadcastChannel | null = null;
  private readonly waiters = new AppendWaiters();

  constructor(private readonly opts: EmbeddedStreamOptions) {
    this.partitions = opts.partitions;
    mkdirSync(opts.dataDir, { recursive: true });
    this.path = join(opts.dataDir, 'stream.db');
  }

  private get log(): EmbeddedLogReader {
    this.reader ??= new EmbeddedLogReader(this.path, this.partitions);
    return this.reader;
  }

  private startWriter(): Promise<void> {
    const data: WriterWorkerData = {
      path: this.path,
      partitions: this.partitions,
      retentionMs: this.opts.retentionMs,
      retentionCheckMs: this.opts.retentionCheckMs ?? 60_000,
    };
    const worker = startWorker(new URL('./embedded-writer-worker.js', import.meta.url), { workerData: data });
    this.writer = worker;
    return new Promise((resolve, reject) => {
      worker.on('message', (msg: WriterReply) => {
        switch (msg.type) {
          case 'ready':
            resolve();
            break;
          case 'failed':
            this.writerDead = new Error(msg.error);
            reject(this.writerDead);
            break;
          case 'appended':
            for (const { id, results } of msg.replies) {
              this.pending.get(id)?.resolve(results);
              this.pending.delete(id);
            }
            this.opts.onCommit?.(msg.stats);
            break;
          case 'rejected':
            for (const id of msg.ids) {
              this.pending.get(id)?.reject(new StreamUnavailableError(`stream write failed: ${msg.error}`));
              this.pending.delete(id);
            }
            break;
        }
      });
      worker.on('error', (err) => {
        this.writerDead = err;
        reject(err);
        this.failAll(err);
      });
      worker.on('exit', () => {
        this.writerDead ??= new Error('stream writer stopped');
        this.failAll(this.writerDead);
      });
    });
  }

  private failAll(err: Error): void {
    for (const p of this.pending.values()) p.reject(new StreamUnavailableError(err.message));
    this.pending.clear();
  }

  async append(entries: AppendEntry[]): Promise<AppendResult[]> {
    if (this.writerDead) throw new StreamUnavailableError(this.writerDead.message, 5);
    if (this.pending.size >= (this.opts.maxPendingAppends ?? Infinity))
      throw new StreamUnavailableError('stream writer is saturated', 1);
    this.writerReady ??= this.startWriter();
    await this.writerReady;
    const id = this.nextId++;
    return new Promise<AppendResult[]>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      if (this.outgoing.push({ id, entries }) === 1) setImmediate(() => this.post());
    });
  }

  private post(): void {
    if (this.outgoing.length === 0) return;
    const requests = this.outgoing;
    this.outgoing = [];
    this.writer!.postMessage({ type: 'append', requests } satisfies WriterRequest);
  }

  async resolve(partition: number, position: Position): Promise<Sequence | null> {
    return this.log.resolve(partition, position);
  }

  async read(partition: number, after: Sequence | null, limit: number): Promise<StreamRecord[]> {
    return this.log.read(partition, after, limit);
  }

  async head(partition: number): Promise<Sequence | null> {
    return this.log.head(partition);
  }

  waitForAppend(timeoutMs: number): Promise<void> {
    if (!this.channel) {
      this.channel = new BroadcastChannel(`vigil-stream:${this.path}`);
      this.channel.onmessage = () => this.waiters.wakeAll();
      this.channel.unref();
    }
    return this.waiters.wait(timeoutMs);
  }

  async close(): Promise<void> {
    if (this.writer && !this.writerDead) {
      const worker = this.writer;
      this.post(); // appends of this turn go before the close
      await new Promise<void>((resolve) => {
        worker.once('exit', () => resolve());
        worker.postMessage({ type: 'close' } satisfies WriterRequest);
      });
    }
    this.channel?.close();
    this.waiters.wakeAll();
    this.reader?.close();
    this.reader = null;
  }
}
