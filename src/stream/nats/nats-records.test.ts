import { describe, expect, it } from 'vitest';
import { msgIdOf, packRecords } from './nats-records.js';

describe('NATS records', () => {
  it('names a record by its (deviceId, seq) set: range form, or hashed when not a range', () => {
    expect(msgIdOf('band', [7, 5, 6])).toBe('band:5:3');
    const gap = msgIdOf('band', [5, 7, 9]);
    expect(gap).toMatch(/^band:5:3:[0-9a-f]+$/);
    expect(msgIdOf('band', [9, 5, 7])).toBe(gap);
    expect(msgIdOf('band', [5, 8, 9])).not.toBe(gap);
  });

  it('packs one record as the embedded log does, and cuts only what exceeds max_payload', () => {
    const readings = ['{"seq":1}', '{"seq":2}', '{"seq":3}'];
    expect(packRecords('b', 'r', readings, [1, 2, 3], 1 << 20)).toEqual([
      { data: '{"deviceId":"b","residentId":"r","readings":[{"seq":1},{"seq":2},{"seq":3}]}', seqs: [1, 2, 3] },
    ]);
    const big = Array.from({ length: 10 }, (_, i) => JSON.stringify({ seq: i, pad: 'é'.repeat(300) }));
    const parts = packRecords('b', 'r', big, [...big.keys()], 1024 + 1400);
    expect(parts.length).toBeGreaterThan(1);
    for (const p of parts) expect(Buffer.byteLength(p.data)).toBeLessThanOrEqual(1400);
    expect(parts.flatMap((p) => (JSON.parse(p.data) as { readings: { seq: number }[] }).readings.map((r) => r.seq))).toEqual([...big.keys()]);
    expect(parts.flatMap((p) => p.seqs)).toEqual([...big.keys()]);
    expect(() => packRecords('b', 'r', big, [...big.keys()], 1024 + 300)).toThrow(RangeError);
  });
});
