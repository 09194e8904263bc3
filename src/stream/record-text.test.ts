import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { packRecord } from './record-packing.js';
import { recordReadingTexts } from './record-text.js';

/** Readings as ingest writes them, with strings that would trip a naive scanner. */
const tricky = fc.string({ unit: fc.constantFrom('"', '\\', '{', '}', '[', ']', ',', 'a', 'é', '😀', '\n', '\u0000') });
const reading = fc.record({
  deviceId: fc.stringMatching(/^[A-Za-z0-9._-]{1,64}$/),
  seq: fc.nat(),
  ts: fc.date({ noInvalidDate: true }).map((d) => d.toISOString()),
  hr: fc.option(fc.double({ noNaN: true, noDefaultInfinity: true })),
  note: tricky,
  events: fc.array(tricky, { maxLength: 3 }),
  acc: fc.option(fc.record({ hz: fc.integer({ min: 1, max: 100 }), samples: fc.array(fc.tuple(fc.double({ min: -64, max: 64, noNaN: true }), fc.double({ min: -64, max: 64, noNaN: true }), fc.double({ min: -64, max: 64, noNaN: true })), { maxLength: 40 }) })),
  location: fc.option(fc.record({ lat: fc.double({ min: -90, max: 90, noNaN: true }), lon: fc.double({ min: -180, max: 180, noNaN: true }) })),
});

describe('recordReadingTexts', () => {
  it('gives back each reading exactly as stored, which is what parsing and serializing again gives', () => {
    fc.assert(
      fc.property(fc.array(reading, { maxLength: 8 }), tricky, (readings, residentId) => {
        const texts = readings.map((r) => JSON.stringify(r));
        const data = packRecord('band-1', residentId, texts);
        const out = recordReadingTexts(data);
        expect(out).toEqual({ deviceId: 'band-1', residentId, readings: texts });
        expect(out.readings).toEqual((JSON.parse(data) as { readings: unknown[] }).readings.map((r) => JSON.stringify(r)));
      }),
      { numRuns: 500 },
    );
  });

  it('parses what is not in the packed layout instead of guessing', () => {
    const readings = [{ deviceId: 'b', seq: 1 }];
    // Other key order, whitespace, a truncated record.
    expect(recordReadingTexts(JSON.stringify({ residentId: 'r', deviceId: 'b', readings })).readings).toEqual(['{"deviceId":"b","seq":1}']);
    expect(recordReadingTexts('{"deviceId":"b","residentId":"r","readings":[ {"seq":1} ]}').readings).toEqual(['{"seq":1}']);
    expect(() => recordReadingTexts('{"deviceId":"b","residentId":"r","readings":[{"seq":1}')).toThrow(SyntaxError);
  });
});
