/**
 * The log writer thread. It owns the only writing connection to stream.db and turns every
 * append request that arrived while the previous commit was fsync'ing into one transaction:
 * group commit, one fsync for many HTTP requests, and none of it on the HTTP thread.
 */
import { BroadcastChannel, parentPort, workerData } from 'node:worker_threads';
import { EmbeddedLogWriter } from './embedded-log.js';
import type { AppendRequest, WriterReply, WriterRequest, WriterWorkerData } from './writer-protocol.js';

const { path, partitions, retentionMs, retentionCheckMs } = workerData as WriterWorkerData;
const port = parentPort!;
const appended = new BroadcastChannel(`vigil-stream:${path}`);

let writer: EmbeddedLogWriter;
try {
  writer = new EmbeddedLogWriter(path, partitions);
  port.postMessage({ type: 'ready' } satisfies WriterReply);
} catch (err) {
  port.postMessage({ type: 'failed', error: (err as Error).message } satisfies WriterReply);
  process.exit(1);
}

let queue: AppendRequest[] = [];
let scheduled = false;

function commit(): void {
  scheduled = false;
  const batch = queue;
  queue = [];
  if (batch.length === 0) return;
  const started = performance.now();
  const entries = batch.flatMap((r) => r.entries);
  try {
    const results = writer.appendBatch(entries, Date.now());
    let k = 0;
    const replies = batch.map((r) => ({ id: r.id, results: results.slice(k, (k += r.entries.length)) }));
    port.postMessage({
      type: 'appended',
      replies,
      stats: { requests: batch.length, readings: entries.reduce((n, e) => n + e.seqs.length, 0), ms: performance.now() - started },
    } satisfies WriterReply);
    appended.postMessage(null);
  } catch (err) {
    port.postMessage({ type: 'rejected', ids: batch.map((r) => r.id), error: (err as Error).message } satisfies WriterReply);
  }
}

port.on('message', (msg: WriterRequest) => {
  if (msg.type === 'append') {
    queue.push(...msg.requests);
    // Everything that arrives before this runs joins the same transaction.
    if (!scheduled) {
      scheduled = true;
      setImmediate(commit);
    }
  } else if (msg.type === 'close') {
    commit();
    clearInterval(retention);
    writer.close();
    appended.close();
    port.postMessage({ type: 'closed' } satisfies WriterReply);
    port.close();
  }
});

const retention = setInterval(() => {
  try {
    writer.enforceRetention(Date.now(), retentionMs);
  } catch {
    // A busy or full disk fails the next append too, which is where it gets reported.
  }
}, retentionCheckMs);
