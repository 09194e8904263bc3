/** Messages between the embedded stream (any thread) and its log writer thread. */
import type { AppendEntry, AppendResult } from '../types.js';

export interface WriterWorkerData {
  path: string;
  partitions: number;
  retentionMs: number;
  retentionCheckMs: number;
}

export interface AppendRequest {
  id: number;
  entries: AppendEntry[];
}

/** Appends made in one event-loop turn travel in one message. */
export type WriterRequest = { type: 'append'; requests: AppendRequest[] } | { type: 'close' };

export interface CommitStats {
  requests: number;
  readings: number;
  ms: number;
}

export type WriterReply =
  | { type: 'ready' }
  | { type: 'failed'; error: string }
  | { type: 'appended'; replies: { id: number; results: AppendResult[] }[]; stats: CommitStats }
  | { type: 'rejected'; ids: number[]; error: string }
  | { type: 'closed' };
