import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { Reading } from '../../core/reading.js';
import type { StreamRecord } from '../../stream/types.js';
import { DuckDbWarehouse } from '../../warehouse/duckdb/duckdb-warehouse.js';
import type { FlushContext } from '../types.js';
import { WarehouseGroup } from './warehouse-group.js';

const T0 = Date.UTC(2024, 0, 15, 10, 0, 0);

function record(partition: number, sequence: number, deviceId: string, residentId: string, seqs: number[]): StreamRecord {
  const readings: Reading[] = seqs.map((seq) => ({
    deviceId,
    seq,
    ts: T0 + seq * 5000,
    receivedAt: T0 + seq * 5000 + 800,
    hr: 60 + seq,
    acc: { hz: 25, samples: [[0, 0, 1], [0, 0, 1]] },
  }));
  return { partition, sequence: String(sequence), timestamp: T0 + sequence, data: JSON.stringify({ deviceId, residentId, readings }) };
}

/**
 * A FlushContext that records what the warehouse held when the checkpoint was committed, and
 * keeps the state entries written the way a store does (`saved`, what `open` gets back).
 */
function recordingContext(partition: number, sequence: string, seen: (residentId: string) => Promise<number[]>, saved = new Map<string, unknown>()) {
  const commits: { snapshot: unknown; written: string[]; storedAtCommit: number[] }[] = [];
  const ctx: FlushContext = {
    checkpoint: { group: 'warehouse', partition, sequence, fence: { owner: 'test', epoch: 1 } },
    commit: async (snapshot, state) => {
      for (const [key, value] of state?.put ?? []) saved.set(key, JSON.parse(JSON.stringify(value)));
      commits.push({ snapshot, written: (state?.put ?? []).map(([key]) => key).sort(), storedAtCommit: await seen('res-1') });
    },
  };
  return { ctx, commits, saved };
}
const none = () => new Map<string, unknown>();

describe('WarehouseGroup', () => {
  let warehouse: DuckDbWarehouse | null = null;
  let dir = '';
  afterEach(async () => {
    await warehouse?.close();
    warehouse = null;
    rmSync(dir, { recursive: true, force: true });
  });

  const open = async () => {
    dir = mkdtempSync(join(tmpdir(), 'vigil-wh-'));
    warehouse = await DuckDbWarehouse.open(dir);
    const wh = warehouse;
    const seqsOf = async (residentId: string) =>
      (await wh.readings({ residentId, from: 0, to: T0 + 86_400_000, limit: 1000 })).map((r) => r.seq);
    return { group: new WarehouseGroup(wh, { timezoneOf: async () => 'UTC' }), seqsOf };
  };

  it('loads the handled readings, then commits', async () => {
    const { group, seqsOf } = await open();
    expect(group.name).toBe('warehouse');
    await group.open(3, null, none());
    await group.handle(3, [record(3, 1, 'band-a', 'res-1', [0, 1, 2]), record(3, 2, 'band-b', 'res-2', [7])]);
    await group.handle(3, [record(3, 5, 'band-a', 'res-1', [3, 4])]);
    expect(await seqsOf('res-1')).toEqual([]);

    const { ctx, commits } = recordingContext(3, '5', seqsOf);
    await group.flush(3, ctx);
    expect(commits).toEqual([{ snapshot: null, written: ['band-a', 'band-b'], storedAtCommit: [0, 1, 2, 3, 4] }]);
    const [row] = await warehouse!.readings({ residentId: 'res-2', from: 0, to: T0 + 86_400_000, limit: 10 });
    expect(row).toMatchObject({ deviceId: 'band-b', seq: 7, residentId: 'res-2', hr: 67, accHz: 25, accSamples: 2 });
  });

  it('loads only what was handled since the last flush, writes only the states that changed, and replays change nothing', async () => {
    const { group, seqsOf } = await open();
    await group.open(0, null, none());
    await group.handle(0, [record(0, 1, 'band-a', 'res-1', [0, 1])]);
    await group.flush(0, recordingContext(0, '1', seqsOf).ctx);

    const empty = recordingContext(0, '1', seqsOf);
    await group.flush(0, empty.ctx);
    expect(empty.commits).toEqual([{ snapshot: null, written: [], storedAtCommit: [0, 1] }]);

    // After a restart the runtime re-reads from an older checkpoint: the same records come again.
    await group.close(0);
    await group.open(0, null, none());
    await group.handle(0, [record(0, 1, 'band-a', 'res-1', [0, 1]), record(0, 2, 'band-a', 'res-1', [2])]);
    const replay = recordingContext(0, '2', seqsOf);
    await group.flush(0, replay.ctx);
    expect(replay.commits).toEqual([{ snapshot: null, written: ['band-a'], storedAtCommit: [0, 1, 2] }]);
    const vitals = await warehouse!.vitals({ residentId: 'res-1', from: T0, to: T0 + 60_000, step: '1m' });
    expect(vitals).toMatchObject([{ readings: 3, hrAvg: 61 }]);
  });

  it('drops unflushed readings of a closed partition and keeps partitions apart', async () => {
    const { group, seqsOf } = await open();
    await group.open(0, null, none());
    await group.open(1, null, none());
    await group.handle(0, [record(0, 1, 'band-a', 'res-1', [0])]);
    await group.handle(1, [record(1, 1, 'band-z', 'res-1', [9])]);
    await group.close(0);
    await group.open(0, null, none());
    await group.flush(0, recordingContext(0, '0', seqsOf).ctx);
    expect(await seqsOf('res-1')).toEqual([]);
    await group.flush(1, recordingContext(1, '1', seqsOf).ctx);
    expect(await seqsOf('res-1')).toEqual([9]);
  });

  it('does not commit when the load fails', async () => {
    const { group } = await open();
    await group.open(0, null, none());
    await group.handle(0, [record(0, 1, 'band-a', 'res-1', [0])]);
    await group.shutdown();
    warehouse = null;
    const { ctx, commits } = recordingContext(0, '1', async () => []);
    await expect(group.flush(0, ctx)).rejects.toThrow();
    expect(commits).toEqual([]);
  });
});

describe('WarehouseGroup summaries', () => {
  it('writes daily activity from the readings, counting a replayed duplicate once, and restores from its state entries', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'vigil-wh-'));
    const wh = await DuckDbWarehouse.open(dir);
    try {
      const group = new WarehouseGroup(wh, { timezoneOf: async () => 'Europe/Paris' });
      const steps = (partition: number, sequence: number, seqs: number[]): StreamRecord => {
        const readings: Reading[] = seqs.map((seq) => ({ deviceId: 'band-a', seq, ts: T0 + seq * 5000, receivedAt: T0 + seq * 5000, steps: 10, worn: true }));
        return { partition, sequence: String(sequence), timestamp: T0, data: JSON.stringify({ deviceId: 'band-a', residentId: 'res-1', readings }) };
      };
      const { ctx, commits, saved } = recordingContext(0, '2', async () => []);
      await group.open(0, null, none());
      await group.handle(0, [steps(0, 1, [0, 1, 2]), steps(0, 2, [2, 3])]);
      await group.flush(0, ctx);
      const day = new Date(T0).toISOString().slice(0, 10);
      expect(await wh.dailyActivity({ residentId: 'res-1', from: day, to: day })).toMatchObject([{ deviceId: 'band-a', day, steps: 40, final: false }]);

      expect(commits[0].written).toEqual(['band-a']);

      // A restart from the state entries with the stream replayed from seq 3 on: still 40 + 10 for seq 4.
      const again = new WarehouseGroup(wh, { timezoneOf: async () => 'Europe/Paris' });
      await again.open(0, null, saved);
      await again.handle(0, [steps(0, 2, [3]), steps(0, 3, [4])]);
      await again.flush(0, recordingContext(0, '3', async () => []).ctx);
      expect(await wh.dailyActivity({ residentId: 'res-1', from: day, to: day })).toMatchObject([{ steps: 50 }]);

      // A whole-partition snapshot from before state entries restores too, and its devices are
      // all written at the next commit (after which the entries alone hold them).
      const legacy = new WarehouseGroup(wh, { timezoneOf: async () => 'Europe/Paris' });
      await legacy.open(0, { devices: { ...Object.fromEntries(saved), 'band-idle': saved.get('band-a') } }, none());
      await legacy.handle(0, [steps(0, 3, [4, 5])]);
      const migrated = recordingContext(0, '4', async () => []);
      await legacy.flush(0, migrated.ctx);
      expect(migrated.commits[0].written).toEqual(['band-a', 'band-idle']);
      expect(await wh.dailyActivity({ residentId: 'res-1', from: day, to: day })).toMatchObject([{ steps: 60 }]);
    } finally {
      await wh.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
