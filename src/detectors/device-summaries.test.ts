import { describe, expect, it } from 'vitest';
import type { Reading } from '../core/reading.js';
import { restoreSummaryState, SLEEP_SILENCE_MS, summarizeReading, tickSummaries, type Summaries } from './device-summaries.js';

const T0 = Date.UTC(2024, 5, 10, 22);

describe('tickSummaries', () => {
  it('tells whether a tick changed the state, so that only changed states are checkpointed', () => {
    const st = restoreSummaryState(undefined);
    const out: Summaries = { sleep: [], days: [] };
    const readings: Reading[] = [0, 1, 3].map((seq) => ({ deviceId: 'band-1', seq, ts: T0 + seq * 5000, receivedAt: T0 + seq * 5000, worn: true, steps: 0 }));
    for (const r of readings) summarizeReading(st, r, 'Europe/Paris', out);
    const lastHeard = readings[2].receivedAt;
    const ticks = [1000, 31_000, 40_000, SLEEP_SILENCE_MS, SLEEP_SILENCE_MS + 1000].map((after) => {
      const before = JSON.stringify(st);
      const changed = tickSummaries(st, 'Europe/Paris', lastHeard + after, out);
      expect(changed, `tick ${after} ms after the last reading`).toBe(JSON.stringify(st) !== before);
      return changed;
    });
    // seq 3 waited for seq 2 until the reorder buffer gave up on it; the night ended on silence.
    expect(ticks).toEqual([false, true, false, true, false]);
  });
});
