import { describe, expect, it } from 'vitest';
import { sanitizeReading } from './sanitize.js';

const now = Date.UTC(2026, 10, 26, 12);
const opts = { now, maxFutureSkewMs: 300_000 };
const ok = (raw: unknown) => {
  const r = sanitizeReading(raw, opts);
  if (r.error !== undefined) throw new Error(r.error);
  return r.reading;
};
const err = (raw: unknown) => sanitizeReading(raw, opts).error;

describe('sanitizeReading', () => {
  it('normalizes a full reading and drops unknown fields', () => {
    const r = ok({
      deviceId: 'band-1', seq: 3, ts: '2026-11-26T11:59:55Z', hr: 70, spo2: 97, skinTemp: 33.2, steps: 4, battery: 80, worn: true, charging: false,
      acc: { hz: 50, samples: [[0, 0, 1]] }, events: ['SOS'], location: { lat: 48.85, lon: 2.35, accuracyM: 12 }, extra: 'x', __proto__: { polluted: true },
    });
    expect(r).toEqual({
      deviceId: 'band-1', seq: 3, ts: Date.UTC(2026, 10, 26, 11, 59, 55), receivedAt: now, hr: 70, spo2: 97, skinTemp: 33.2, steps: 4, battery: 80,
      worn: true, charging: false, acc: { hz: 50, samples: [[0, 0, 1]] }, events: ['SOS'], location: { lat: 48.85, lon: 2.35, accuracyM: 12 },
    });
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(ok({ deviceId: 'a', seq: 0, ts: now - 1 }).ts).toBe(now - 1);
  });

  it('drops physically impossible values and flags them', () => {
    const r = ok({ deviceId: 'b', seq: 1, ts: now, hr: 300, spo2: 101, skinTemp: 10, battery: -1, steps: 5000, location: { lat: 91, lon: 0 }, events: ['SOS', 'DANCE'] });
    expect(r.hr ?? r.spo2 ?? r.skinTemp ?? r.battery ?? r.steps ?? r.location).toBeUndefined();
    expect(r.flags).toEqual(['hr:out_of_range', 'spo2:out_of_range', 'skinTemp:out_of_range', 'battery:out_of_range', 'steps:out_of_range', 'events:unknown', 'location:out_of_range']);
    expect(r.events).toEqual(['SOS']);
  });

  it('reads canonical ISO timestamps by offset exactly as Date.parse does', () => {
    let x = 7;
    for (let i = 0; i < 2000; i++) {
      x = (x * 48271) % 2147483647;
      const t = Date.UTC(2000, 0, 1) + (x % 1_000_000) * 800_003; // 2000 to 2025
      const iso = new Date(t).toISOString();
      expect(ok({ deviceId: 'a', seq: 1, ts: iso }).ts).toBe(Date.parse(iso));
    }
    expect(ok({ deviceId: 'a', seq: 1, ts: '2024-02-29T23:59:59.999Z' }).ts).toBe(Date.UTC(2024, 1, 29, 23, 59, 59, 999));
    expect(ok({ deviceId: 'a', seq: 1, ts: '2026-11-26T12:00:00+01:00' }).ts).toBe(Date.UTC(2026, 10, 26, 11));
    expect(err({ deviceId: 'a', seq: 1, ts: '2026-02-31T00:00:00.000Z' })).toBe('ts must be an ISO-8601 date-time string or epoch milliseconds');
    expect(err({ deviceId: 'a', seq: 1, ts: '2026-13-01T00:00:00.000Z' })).toBe('ts must be an ISO-8601 date-time string or epoch milliseconds');
  });

  it('replaces a future timestamp with the receive time', () => {
    const r = ok({ deviceId: 'c', seq: 1, ts: now + 301_000 });
    expect(r.ts).toBe(now);
    expect(r.flags).toEqual(['ts:future']);
    expect(ok({ deviceId: 'c', seq: 1, ts: now + 299_000 }).flags).toBeUndefined();
  });

  it.each([
    [null, 'reading must be a JSON object'],
    [[1], 'reading must be a JSON object'],
    [{ seq: 1, ts: now }, 'deviceId must be a string of 1-64 characters from [A-Za-z0-9._-]'],
    [{ deviceId: 'a b', seq: 1, ts: now }, 'deviceId must be a string of 1-64 characters from [A-Za-z0-9._-]'],
    [{ deviceId: 'x'.repeat(65), seq: 1, ts: now }, 'deviceId must be a string of 1-64 characters from [A-Za-z0-9._-]'],
    [{ deviceId: 'a', seq: 1.5, ts: now }, 'seq must be an integer from 0 to 2^53-1'],
    [{ deviceId: 'a', seq: 2 ** 60, ts: now }, 'seq must be an integer from 0 to 2^53-1'],
    [{ deviceId: 'a', seq: '1', ts: now }, 'seq must be an integer from 0 to 2^53-1'],
    [{ deviceId: 'a', seq: 1, ts: 'soon' }, 'ts must be an ISO-8601 date-time string or epoch milliseconds'],
    [{ deviceId: 'a', seq: 1, ts: 5 }, 'ts is before 2000-01-01'],
    [{ deviceId: 'a', seq: 1, ts: now, hr: '70' }, 'hr must be a number'],
    [{ deviceId: 'a', seq: 1, ts: now, steps: 1.5 }, 'steps must be an integer'],
    [{ deviceId: 'a', seq: 1, ts: now, worn: 'yes' }, 'worn must be true or false'],
    [{ deviceId: 'a', seq: 1, ts: now, acc: { hz: 50, samples: [[0, 0]] } }, 'acc.samples[0] must be [x, y, z] numbers in g'],
    [{ deviceId: 'a', seq: 1, ts: now, acc: { hz: 50, samples: new Array(2001).fill([0, 0, 1]) } }, 'acc.samples holds at most 2000 samples'],
    [{ deviceId: 'a', seq: 1, ts: now, acc: { hz: 0, samples: [] } }, 'acc.hz must be from 1 to 1000'],
    [{ deviceId: 'a', seq: 1, ts: now, events: 'SOS' }, 'events must be an array of at most 16 strings'],
    [{ deviceId: 'a', seq: 1, ts: now, location: { lat: '1', lon: 2 } }, 'location must be {lat: number, lon: number, accuracyM?: number}'],
  ])('rejects %j', (raw, message) => {
    expect(err(raw)).toBe(message);
  });
});
