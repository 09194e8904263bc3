import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { serviceUp } from '../../testing/services.js';
import { warehouseConformance } from '../testing/conformance.js';
import type { WarehouseReading } from '../types.js';
import { PostgresWarehouse } from './postgres-warehouse.js';

const SERVER = 'postgres://postgres@127.0.0.1:5432';
const up = await serviceUp('postgres');

const freshName = () => `vigil_wh_${randomBytes(6).toString('hex')}`;
/** A URL on database `test` whose tables go to `schema`; `settings` are more `-c name=value` options. */
const schemaUrl = (schema: string, settings = '') =>
  `${SERVER}/test?options=${encodeURIComponent(`-c search_path=${schema}${settings}`)}`;

describe.skipIf(!up)('postgres warehouse', () => {
  const admin = new pg.Client({ connectionString: `${SERVER}/test` });
  /** Each conformance storage name gets its own schema, dropped after the test. */
  const schemas = new Map<string, string>();
  const opened: PostgresWarehouse[] = [];

  beforeAll(() => admin.connect());
  afterAll(() => admin.end());
  // Runs after the conformance suite's own afterEach has closed its warehouses.
  afterEach(async () => {
    for (const wh of opened.splice(0)) await wh.close();
    for (const schema of schemas.values()) await admin.query(`DROP SCHEMA ${schema} CASCADE`);
    schemas.clear();
  });

  async function schemaFor(storage: string): Promise<string> {
    let schema = schemas.get(storage);
    if (schema === undefined) {
      schema = freshName();
      await admin.query(`CREATE SCHEMA ${schema}`);
      schemas.set(storage, schema);
    }
    return schema;
  }

  async function openFresh(settings = ''): Promise<PostgresWarehouse> {
    const wh = await PostgresWarehouse.open(schemaUrl(await schemaFor(freshName()), settings));
    opened.push(wh);
    return wh;
  }

  warehouseConformance('postgres', async (storage) => PostgresWarehouse.open(schemaUrl(await schemaFor(storage))));

  const reading = (seq: number, ts: number, extra: Partial<WarehouseReading> = {}): WarehouseReading => ({
    deviceId: 'band-a', seq, ts, receivedAt: ts + 1000, residentId: 'res-a', ...extra,
  });
  const everything = (wh: PostgresWarehouse, residentId: string) =>
    wh.readings({ residentId, from: 0, to: Date.UTC(2100, 0, 1), limit: 1000 });

  it('creates the database the URL names when the server does not have it', async () => {
    const database = freshName();
    try {
      const wh = await PostgresWarehouse.open(`${SERVER}/${database}`);
      opened.push(wh);
      expect(await wh.load([reading(1, Date.UTC(2024, 0, 15))])).toEqual({ inserted: 1 });
      expect(await everything(wh, 'res-a')).toHaveLength(1);
      await opened.pop()!.close();
    } finally {
      await admin.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
    }
  });

  it('stores text that COPY and array literals escape exactly as given', async () => {
    const wh = await openFresh();
    const residentId = 'res \t"tab"\n\\new line\r';
    const flags = ['quote"d', 'back\\slash', 'a,b', '{braces}', 'NULL', '', 'tab\there', 'ünï😀'];
    await wh.load([reading(1, Date.UTC(2024, 0, 15), { residentId, flags, events: [] })]);
    const [row] = await everything(wh, residentId);
    expect(row).toMatchObject({ residentId, flags, events: [] });
  });

  it('keeps minutes exact when loads from several processes share them without sharing keys', async () => {
    // Disjoint keys never make one load wait for another's rows: only the resident lock orders
    // their recomputations. Two warehouses on one schema stand for two processes.
    const url = schemaUrl(await schemaFor(freshName()));
    const [one, two] = [await PostgresWarehouse.open(url), await PostgresWarehouse.open(url)];
    opened.push(one, two);
    const loads = 8;
    const perLoad = 60;
    // A race shows only now and then: several rounds, each on minutes of its own.
    for (let round = 0; round < 5; round++) {
      const t0 = Date.UTC(2024, 0, 15, 10 + round);
      const seq0 = round * loads * perLoad;
      const batches = Array.from({ length: loads }, (_, k) =>
        Array.from({ length: perLoad }, (_, i) => reading(seq0 + i * loads + k, t0 + (i * loads + k) * 250, { hr: 60, steps: 1 })),
      );
      const results = await Promise.all(batches.map((b, k) => (k % 2 === 0 ? one : two).load(b)));
      expect(results.reduce((sum, r) => sum + r.inserted, 0)).toBe(loads * perLoad);
      const minutes = await one.vitals({ residentId: 'res-a', from: t0, to: t0 + 3_600_000, step: '1m' });
      // 480 readings, one every 250 ms: 240 a minute.
      expect(minutes.map((m) => [m.readings, m.steps])).toEqual([[240, 240], [240, 240]]);
    }
  });

  it('erases a resident while saves of their nights and days run, without deadlocking', async () => {
    // Saves lock rows in key order, (device_id, night); a DELETE by resident alone would lock
    // them in the order it finds them (the heap's: band-b's rows first, saved first here) without
    // the erasure's FOR UPDATE in key order.
    const wh = await openFresh();
    const nights = Array.from({ length: 10 }, (_, i) => `2024-01-${String(10 + i).padStart(2, '0')}`);
    const save = (k: number, devices = ['band-b', 'band-a']) =>
      wh.saveInsights({
        sleep: devices.flatMap((deviceId) =>
          nights.map((night) => ({
            deviceId, residentId: 'res-a', night, start: `${night}T22:00:00.000Z`, end: `${night}T23:00:00.000Z`,
            totalSleepMin: 60 + k, efficiency: 0.9, wasoMin: 1, awakenings: 1, onsetLatencyMin: null,
          })),
        ),
        activity: devices.flatMap((deviceId) =>
          nights.map((day) => ({ deviceId, residentId: 'res-a', day, steps: k, activeMinutes: 1, longestSedentaryMin: 2, wornMinutes: 3, final: true })),
        ),
      });
    for (let round = 0; round < 10; round++) {
      await save(0, ['band-b']);
      await save(0, ['band-a']);
      await Promise.all([save(1), wh.eraseResident('res-a'), save(2), save(3), wh.eraseResident('res-a'), save(4)]);
    }
    await wh.eraseResident('res-a');
    expect(await wh.sleepSessions({ residentId: 'res-a', from: '2024-01-01', to: '2024-12-31' })).toEqual([]);
  });

  it('keeps UTC times and buckets whatever the session time zone', async () => {
    // UTC+13:45 in January: a zone-dependent conversion would move every time and day boundary.
    const wh = await openFresh(' -c TimeZone=Pacific/Chatham');
    const late = Date.UTC(2024, 0, 15, 23, 59, 30, 123);
    const early = Date.UTC(2024, 0, 16, 0, 0, 30, 456);
    await wh.load([reading(1, late, { hr: 60 }), reading(2, early, { hr: 80 })]);
    expect((await everything(wh, 'res-a')).map((r) => [r.ts, r.receivedAt])).toEqual([
      ['2024-01-15T23:59:30.123Z', '2024-01-15T23:59:31.123Z'],
      ['2024-01-16T00:00:30.456Z', '2024-01-16T00:00:31.456Z'],
    ]);
    const days = await wh.vitals({ residentId: 'res-a', from: Date.UTC(2024, 0, 15), to: Date.UTC(2024, 0, 17), step: '1d' });
    expect(days.map((d) => [d.bucket, d.hrAvg])).toEqual([
      ['2024-01-15T00:00:00.000Z', 60],
      ['2024-01-16T00:00:00.000Z', 80],
    ]);
  });

  it('keeps the dates and times of insights whatever the session DateStyle and time zone', async () => {
    // A DateStyle that prints 15/01/2024, in UTC+13:45: neither may change a date or a time.
    const wh = await openFresh(' -c TimeZone=Pacific/Chatham -c DateStyle=SQL,DMY');
    const night = {
      deviceId: 'band-a', residentId: 'res-a', night: '2024-01-31', start: '2024-01-31T23:59:30.123Z', end: '2024-02-01T07:00:00.000Z',
      totalSleepMin: 400, efficiency: 0.9, wasoMin: 20, awakenings: 2, onsetLatencyMin: null,
    };
    const day = { deviceId: 'band-a', residentId: 'res-a', day: '2024-02-01', steps: 10, activeMinutes: 1, longestSedentaryMin: 2, wornMinutes: 3, final: false };
    await wh.saveInsights({ sleep: [night], activity: [day] });
    expect(await wh.sleepSessions({ residentId: 'res-a', from: '2024-01-31', to: '2024-01-31' })).toEqual([night]);
    expect(await wh.dailyActivity({ residentId: 'res-a', from: '2024-02-01', to: '2024-02-01' })).toEqual([day]);
  });
});
