/** Messages between the process and a consumer group's worker thread. */
import type { Config } from '../core/config.js';
import type { Position } from '../stream/types.js';
import type { GroupStats } from './runtime.js';
import type { GroupCounters, GroupName } from './groups/registry.js';

export interface GroupWorkerData {
  config: Config;
  group: GroupName;
  owner: string;
}

export type GroupRequest =
  | { type: 'stop' }
  | { type: 'rewind'; id: number; position: Position }
  | { type: 'query'; id: number; method: string; args: unknown };

/**
 * A worker thread's own V8 heap (each thread has one; RSS is the process's): bytes in use,
 * bytes V8 has reserved for it (what RSS sees), and memory held outside the heap by its objects
 * (Buffers, ArrayBuffers); and what its sink engine holds natively.
 */
export interface ThreadMemory {
  heapUsedBytes: number;
  heapTotalBytes: number;
  externalBytes: number;
  /** The sink engine's own count of what it holds (DuckDB's `duckdb_memory()`), null when it keeps none. */
  sinkBytes: number | null;
}

export type GroupReply =
  | { type: 'ready' }
  | { type: 'failed'; error: string }
  | { type: 'stats'; stats: GroupStats; counters: GroupCounters; memory: ThreadMemory }
  | { type: 'reply'; id: number; result?: unknown; error?: string }
  | { type: 'stopped' };
