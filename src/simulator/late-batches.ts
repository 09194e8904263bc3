/**
 * How a phone delivers the readings it could not send while out of the band's range: all of
 * them once the link is back, in several requests, in no particular order (DESIGN §3.3: late
 * data arrives in bursts, in any order). Shared by the live fleet and offline generation so
 * both exercise the detectors the same way.
 */
import type { Random } from './prng.js';

/** What ingest takes in one request (DESIGN §3.1). */
const MAX_BATCH = 500;

/**
 * Shuffles `held` (Fisher–Yates) and cuts it into 3–6 batches (more when a batch would pass
 * 500 readings; fewer when there are fewer readings), each non-empty. Every item lands in
 * exactly one batch.
 */
export function splitLateBatches<T>(held: readonly T[], rng: Random): T[][] {
  const items = held.slice();
  for (let i = items.length - 1; i > 0; i--) {
    const j = rng.int(0, i);
    const t = items[i];
    items[i] = items[j];
    items[j] = t;
  }
  if (items.length === 0) return [];
  const count = Math.max(Math.ceil(items.length / MAX_BATCH), Math.min(items.length, rng.int(3, 6)));
  const batches: T[][] = [];
  for (let k = 0; k < count; k++) batches.push(items.slice(Math.floor((k * items.length) / count), Math.floor(((k + 1) * items.length) / count)));
  return batches;
}
