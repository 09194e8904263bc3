import { describe, expect, it } from 'vitest';
import { splitLateBatches } from './late-batches.js';
import { generateDeliveries, generateFleetReadings, generateReadings, simulatedResidents } from './offline.js';
import { Random } from './prng.js';
import { homeLocationFor } from './provision.js';
import { ResidentModel, type WireReading } from './resident-model.js';

const MIDNIGHT = Date.parse('2024-06-10T00:00:00+02:00');
const HOUR = 3_600_000;
const model = (startTs = MIDNIGHT) => new ResidentModel({ deviceId: 'band-0001', seed: 3, startTs, accHz: 5 });

describe('generateReadings', () => {
  it('yields the readings of a time range, as next() would', () => {
    const manual: WireReading[] = [];
    const m = model();
    while (m.nextTs < MIDNIGHT + HOUR) manual.push(m.next());
    expect([...generateReadings(model(), MIDNIGHT, MIDNIGHT + HOUR)]).toEqual(manual);
    // A later start drops what comes before it; the model keeps its state (battery, ...).
    const later = [...generateReadings(model(), MIDNIGHT + HOUR / 2, MIDNIGHT + HOUR)];
    expect(later).toEqual(manual.slice(360));
    const m2 = model();
    [...generateReadings(m2, MIDNIGHT, MIDNIGHT + HOUR)];
    expect(() => [...generateReadings(m2, MIDNIGHT, MIDNIGHT + 2 * HOUR)]).toThrow(RangeError);
  });
});

describe('simulatedResidents', () => {
  it('are the residents provisioning and the fleet would make, at 20 Hz', () => {
    const residents = simulatedResidents(3, { startTs: MIDNIGHT });
    expect(residents.map((r) => r.deviceId)).toEqual(['band-0001', 'band-0002', 'band-0003']);
    residents.forEach((r, i) => {
      expect(r.homeLocation).toEqual(homeLocationFor(i + 1));
      expect(r.model.home).toEqual({ lat: r.homeLocation.lat, lon: r.homeLocation.lon });
    });
    const [first] = generateReadings(residents[0].model, MIDNIGHT, MIDNIGHT + 5000);
    expect(first.acc.hz).toBe(20);
    expect(first.acc.samples).toHaveLength(100);
    // Different residents, different days.
    const again = simulatedResidents(2, { startTs: MIDNIGHT, accHz: 1 });
    const a = [...generateReadings(again[0].model, MIDNIGHT, MIDNIGHT + HOUR)];
    const b = [...generateReadings(again[1].model, MIDNIGHT, MIDNIGHT + HOUR)];
    expect(a.map((r) => r.hr)).not.toEqual(b.map((r) => r.hr));
  });

  it('generateFleetReadings interleaves residents in time order', () => {
    const residents = simulatedResidents(3, { startTs: MIDNIGHT, accHz: 1 });
    const all = [...generateFleetReadings(residents.map((r) => r.model), MIDNIGHT + 60_000)];
    expect(all).toHaveLength(36);
    expect(all.map((r) => r.ts)).toEqual([...all.map((r) => r.ts)].sort());
    expect(all.slice(0, 3).map((r) => r.deviceId)).toEqual(['band-0001', 'band-0002', 'band-0003']);
  });
});

describe('late delivery', () => {
  it('splitLateBatches shuffles into 3–6 batches of at most 500, each item once', () => {
    const items = Array.from({ length: 100 }, (_, i) => i);
    const batches = splitLateBatches(items, new Random(1));
    expect(batches.length).toBeGreaterThanOrEqual(3);
    expect(batches.length).toBeLessThanOrEqual(6);
    expect(batches.flat()).not.toEqual(items);
    expect([...batches.flat()].sort((a, b) => a - b)).toEqual(items);
    const many = splitLateBatches(Array.from({ length: 3000 }, (_, i) => i), new Random(2));
    expect(many.length).toBeGreaterThanOrEqual(6);
    for (const b of many) expect(b.length).toBeLessThanOrEqual(500);
    expect(splitLateBatches([7], new Random(3))).toEqual([[7]]);
    expect(splitLateBatches([], new Random(3))).toEqual([]);
  });

  it('OUT_OF_RANGE readings arrive after it ends, shuffled, in several batches between live ones, each once', () => {
    const m = model(MIDNIGHT + 12 * HOUR);
    const start = MIDNIGHT + 12 * HOUR + 10 * 60_000;
    const end = start + 60 * 60_000;
    m.inject('OUT_OF_RANGE', start);
    const deliveries = [...generateDeliveries(m, MIDNIGHT + 14 * HOUR)];
    const seqs = deliveries.flatMap((d) => d.readings.map((r) => r.seq));
    expect(seqs).toHaveLength(2 * 720);
    expect([...seqs].sort((a, b) => a - b)).toEqual(Array.from({ length: 2 * 720 }, (_, i) => i));

    const late = deliveries.filter((d) => d.late);
    const lateReadings = late.flatMap((d) => d.readings);
    expect(lateReadings).toHaveLength(720); // one hour of 5-s readings
    for (const r of lateReadings) expect(Date.parse(r.ts) >= start && Date.parse(r.ts) < end).toBe(true);
    for (const d of late) expect(d.at).toBeGreaterThan(end);
    expect(late.length).toBeGreaterThanOrEqual(3);
    const lateSeqs = lateReadings.map((r) => r.seq);
    expect(lateSeqs).not.toEqual([...lateSeqs].sort((a, b) => a - b));
    // Live readings came before and between the late batches.
    const firstLate = deliveries.indexOf(late[0]);
    expect(deliveries[firstLate - 1].late).toBe(false);
    expect(Date.parse(deliveries[firstLate - 1].readings[0].ts)).toBeGreaterThanOrEqual(end);
    for (let i = 1; i < late.length; i++) expect(deliveries.slice(deliveries.indexOf(late[i - 1]) + 1, deliveries.indexOf(late[i])).some((d) => !d.late)).toBe(true);
    // Live ones in seq order, one per request.
    const live = deliveries.filter((d) => !d.late);
    expect(live.every((d) => d.readings.length === 1)).toBe(true);
    const liveSeqs = live.map((d) => d.readings[0].seq);
    expect(liveSeqs).toEqual([...liveSeqs].sort((a, b) => a - b));
  });

  it('delivers at the end of the range what is still held', () => {
    const m = model();
    m.inject('OUT_OF_RANGE', MIDNIGHT, 2 * HOUR);
    const deliveries = [...generateDeliveries(m, MIDNIGHT + HOUR)];
    expect(deliveries.every((d) => d.late && d.at === MIDNIGHT + HOUR)).toBe(true);
    expect(deliveries.flatMap((d) => d.readings)).toHaveLength(720);
  });
});
