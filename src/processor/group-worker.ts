/**
 * A consumer group's thread: owns its stream reader, store connection and sink (DuckDB
 * allows one owner per process), so neither SQLite's synchronous calls nor the sink's work
 * ever run on the HTTP thread (DESIGN §2, process model).
 */
import { getHeapStatistics } from 'node:v8';
import { parentPort, workerData } from 'node:worker_threads';
import { createLogger } from '../core/logger.js';
import { openStream } from '../stream/registry.js';
import { openStore } from '../store/registry.js';
import { GroupRuntime } from './runtime.js';
import { buildGroup } from './groups/registry.js';
import type { GroupReply, GroupRequest, GroupWorkerData } from './group-protocol.js';

const { config, group: name, owner } = workerData as GroupWorkerData;
const port = parentPort!;
const post = (msg: GroupReply) => port.postMessage(msg);
const log = createLogger(config['log.level'], `group:${name}`);

try {
  const stream = await openStream(config);
  const store = await openStore(config);
  const built = await buildGroup(name, config, store, log);
  const runtime = new GroupRuntime({
    group: built.group,
    stream,
    store,
    owner,
    leaseMs: config['processor.leaseMs'],
    batchRecords: config['processor.batchRecords'],
    log,
    // The host restarts the thread; partitions resume from their checkpoints.
    onCrash: () => process.exit(1),
  });
  runtime.start();
  for (const service of built.services ?? []) await service.start();
  // The sink's count is a query: taken beside each report, which sends the last one, so a report
  // stays synchronous (a rewind's reply must follow its stats).
  let sinkBytes: number | null = null;
  const countSink = () => built.sinkMemoryBytes?.().then((n) => (sinkBytes = n), () => undefined);
  const report = () => {
    const heap = getHeapStatistics();
    const memory = { heapUsedBytes: heap.used_heap_size, heapTotalBytes: heap.total_heap_size, externalBytes: heap.external_memory, sinkBytes };
    post({ type: 'stats', stats: runtime.stats(), counters: built.counters, memory });
  };
  const statsTimer = setInterval(() => {
    report();
    void countSink();
  }, 1000);

  port.on('message', async (msg: GroupRequest) => {
    if (msg.type === 'stop') {
      clearInterval(statsTimer);
      for (const service of built.services ?? []) await service.stop();
      await runtime.stop();
      await stream.close();
      await store.close();
      post({ type: 'stopped' });
      port.close();
      return;
    }
    try {
      const result = msg.type === 'rewind' ? await runtime.rewind(msg.position) : await built.query!(msg.method, msg.args);
      if (msg.type === 'rewind') report();
      post({ type: 'reply', id: msg.id, result });
    } catch (err) {
      post({ type: 'reply', id: msg.id, error: (err as Error).message });
    }
  });
  post({ type: 'ready' });
  report();
} catch (err) {
  log.error({ err }, 'group worker failed to start');
  post({ type: 'failed', error: (err as Error).message });
  process.exit(1);
}
