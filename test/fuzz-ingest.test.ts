/**
 * Hostile input, generated: 100,000 bodies (malformed JSON, deep nesting, huge and negative
 * numbers, NaN/Infinity strings, unicode, `__proto__`/`constructor` keys, wrong types, 10k-sample
 * bursts, far past and future timestamps, enormous seq) sent through the whole HTTP pipeline
 * (`app.inject`: parser, hooks, handler, stream). Each answer is a 202 or a 4xx with a
 * problem+json body, never a 5xx; the process stays up; and the stream holds exactly the
 * readings the 202s accepted — nothing of a rejected one.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Vigil } from '../src/app.js';
import { partitionOf } from '../src/stream/partitioner.js';
import { decodeRecord } from '../src/stream/types.js';
import { registerResident, startTestVigil } from './helpers.js';

const RUNS = Number(process.env.VIGIL_FUZZ_RUNS ?? 100_000);
/** Bodies sent concurrently per property run, as phones do: their 202s share group commits. */
const CONCURRENT = 10;
const DEVICE = 'band-fuzz';

const hostileNumber = fc.oneof(
  fc.integer(),
  fc.double(),
  fc.constantFrom(-1, 0, 1e308, -1e308, 2 ** 53, 2 ** 64, Number.MAX_SAFE_INTEGER, 1e21, 5e-324),
  fc.constantFrom('NaN', 'Infinity', '-Infinity', '1e999', '0x1F', ''),
);
const hostileString = fc.oneof(fc.string(), fc.string({ unit: 'grapheme' }), fc.constantFrom('__proto__', 'constructor', '\u0000', '😀'.repeat(50), 'band-fuzz'));
const hostileTs = fc.oneof(
  fc.integer({ min: -1e15, max: 1e15 }),
  fc.constantFrom('1970-01-01T00:00:00Z', '9999-12-31T23:59:59.999Z', '2026-02-31T00:00:00.000Z', 'yesterday', '', '2026-11-26T10:00:00+14:00'),
  fc.date({ min: new Date(0), max: new Date(8.64e15), noInvalidDate: true }).map((d) => d.toISOString()),
  hostileNumber,
);
const anyValue = fc.oneof(hostileNumber, hostileString, fc.boolean(), fc.constant(null), fc.jsonValue({ maxDepth: 3 }));
const accBurst = fc.oneof(
  fc.record({ hz: hostileNumber, samples: fc.array(fc.array(hostileNumber, { maxLength: 4 }), { maxLength: 8 }) }),
  fc.constant({ hz: 50, samples: Array.from({ length: 10_000 }, () => [0, 0, 1]) }),
);
const reading = fc.record(
  {
    deviceId: fc.oneof(fc.constant(DEVICE), hostileString, anyValue),
    seq: fc.oneof(fc.integer({ min: 0, max: 1e9 }), hostileNumber, anyValue),
    ts: hostileTs,
    hr: fc.oneof(hostileNumber, anyValue),
    spo2: hostileNumber,
    skinTemp: hostileNumber,
    steps: hostileNumber,
    battery: hostileNumber,
    worn: anyValue,
    events: fc.oneof(fc.array(fc.oneof(fc.constantFrom('SOS', 'FALL', 'SOS_CANCEL'), hostileString), { maxLength: 20 }), anyValue),
    location: fc.oneof(fc.record({ lat: hostileNumber, lon: hostileNumber }), anyValue),
    acc: fc.oneof({ weight: 50, arbitrary: accBurst.filter((a) => a.samples.length < 100) }, { weight: 1, arbitrary: accBurst }),
    __proto__: fc.jsonValue({ maxDepth: 2 }),
    constructor: anyValue,
  },
  { requiredKeys: [] },
);
/** Valid but for one hostile field: exercises partial acceptance and sanitizing. */
const mostlyValid = fc
  .record({
    seq: fc.integer({ min: 0, max: 1e9 }),
    field: fc.constantFrom('hr', 'spo2', 'skinTemp', 'steps', 'battery', 'worn', 'charging', 'events', 'location', 'acc', 'extra', '__proto__', 'constructor'),
    value: anyValue,
  })
  .map(({ seq, field, value }) => ({ deviceId: DEVICE, seq, ts: new Date(Date.now() - 60_000).toISOString(), [field]: value }));
const body = fc.oneof(
  { weight: 3, arbitrary: fc.array(mostlyValid, { minLength: 1, maxLength: 5 }).map((readings) => JSON.stringify({ readings })) },
  { weight: 4, arbitrary: reading.map((r) => JSON.stringify(r)) },
  { weight: 2, arbitrary: fc.array(reading, { maxLength: 5 }).map((readings) => JSON.stringify({ readings })) },
  { weight: 1, arbitrary: fc.jsonValue().map((v) => JSON.stringify(v)) },
  { weight: 1, arbitrary: fc.string({ maxLength: 200 }) },
  { weight: 1, arbitrary: fc.integer({ min: 1, max: 20_000 }).map((n) => '['.repeat(n) + ']'.repeat(n % 7 === 0 ? n : 0)) },
  { weight: 1, arbitrary: fc.integer({ min: 1, max: 3000 }).map((n) => '{"readings":' + '{"a":'.repeat(n) + '1' + '}'.repeat(n) + '}') },
  { weight: 1, arbitrary: fc.integer({ min: 501, max: 600 }).map((n) => JSON.stringify({ readings: Array.from({ length: n }, (_, i) => ({ deviceId: DEVICE, seq: i, ts: 0 })) })) },
);

describe('ingest under generated hostile input', () => {
  let vigil: Vigil;
  let token = '';
  beforeAll(async () => {
    vigil = await startTestVigil({ 'ingest.rateLimitPerSecond': 1e6, 'ingest.rateLimitBurst': 1e6 });
    token = (await registerResident(vigil.url, DEVICE)).token;
  });
  afterAll(async () => vigil?.stop());

  it(`answers ${RUNS.toLocaleString('en')} hostile bodies with 202 or a 4xx problem, storing only what was accepted`, async () => {
    let accepted = 0;
    const statuses = new Map<number, number>();
    const send = async (payload: string) => {
      const res = await vigil.app.inject({
        method: 'POST',
        url: '/v1/readings',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        payload,
      });
      statuses.set(res.statusCode, (statuses.get(res.statusCode) ?? 0) + 1);
      if (res.statusCode === 202) {
        accepted += (JSON.parse(res.body) as { accepted: number }).accepted;
        return;
      }
      expect(res.statusCode).toBeGreaterThanOrEqual(400);
      expect(res.statusCode).toBeLessThan(500);
      expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
      const problem = JSON.parse(res.body) as { status: number; code: string; detail: string };
      expect(problem.status).toBe(res.statusCode);
      expect(typeof problem.code).toBe('string');
      expect(typeof problem.detail).toBe('string');
    };
    await fc.assert(
      fc.asyncProperty(fc.array(body, { minLength: CONCURRENT, maxLength: CONCURRENT }), async (payloads) => {
        await Promise.all(payloads.map(send));
      }),
      { numRuns: Math.ceil(RUNS / CONCURRENT) },
    );
    // Prototype pollution would show on every object of the process.
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();

    let stored = 0;
    const part = partitionOf(DEVICE, vigil.stream.partitions);
    let after: string | null = null;
    for (;;) {
      const records = await vigil.stream.read(part, after, 1000);
      if (records.length === 0) break;
      for (const r of records) {
        const batch = decodeRecord(r);
        if (batch.deviceId === DEVICE) stored += batch.readings.length;
      }
      after = records[records.length - 1].sequence;
    }
    expect(stored).toBe(accepted);
    console.log(`fuzz: ${RUNS} bodies, answers ${JSON.stringify(Object.fromEntries(statuses))}, ${accepted} readings accepted and stored`);
    expect([...statuses.keys()].every((s) => s === 202 || (s >= 400 && s < 500))).toBe(true);
  }, 600_000);
});
