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

export type GroupReply =
  | { type: 'ready' }
  | { type: 'failed'; error: string }
  /** `heapUsedBytes`: the thread's own V8 heap (each worker thread has one; RSS is the process's). */
  | { type: 'stats'; stats: GroupStats; counters: GroupCounters; heapUsedBytes: number }
  | { type: 'reply'; id: number; result?: unknown; error?: string }
  | { type: 'stopped' };
