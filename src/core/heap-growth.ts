/**
 * How much room V8 leaves each heap past its live objects (setting `heapGrowingPercent`).
 *
 * After a full collection V8 sets the next one's threshold at the live size times a factor it
 * picks from how fast the program allocates: a busy consumer group gets 2–4×, so a heap whose
 * live objects stay flat still swings by hundreds of MB and drifts up over an hour (the soak,
 * docs/reliability.md). A fixed factor keeps the heap, and so the RSS, proportional to what it
 * holds. V8 flags are per process and read at each collection: set before the group threads
 * start, it applies to every heap, theirs included.
 */
import { setFlagsFromString } from 'node:v8';

/** `percent` is the setting's integer; 0 leaves V8's own heuristic. */
export function limitHeapGrowth(percent: number): void {
  if (percent > 0) setFlagsFromString(`--heap-growing-percent=${percent}`);
}
