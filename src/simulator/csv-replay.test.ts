import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { sanitizeReading } from '../ingest/sanitize.js';
import { CsvFormatError, parseAccelerometerCsv, recordingReadings, replayCsvFiles } from './csv-replay.js';
import { ADMIN_KEY, fakeVigil, type FakeVigil } from './testing/fake-vigil.js';
import { wedaFallDir } from '../testing/datasets.js';

/**
 * `seconds` of a 50-Hz recording in g: standing still, then a fall (an impact of ~3 g) and
 * lying still. Timestamps come in bursts of 10 rows, as a watch batches its sensor events.
 */
function recordingCsv(seconds: number, header = 't,x,y,z', scale = 1): string {
  const rows = [header];
  const n = seconds * 50;
  for (let i = 0; i < n; i++) {
    const t = Math.floor(i / 10) * 0.2 + (i % 10) * 0.001; // bunched
    const fallen = i > n / 2;
    const v = i === Math.floor(n / 2) ? [0.5, -1, -2.8] : fallen ? [0.15, -0.25, -0.95] : [-0.95, 0.15, 0.25];
    rows.push([t.toFixed(3), ...v.map((x) => (x * scale + 0.001 * (i % 3)).toFixed(3))].join(','));
  }
  return rows.join('\n') + '\n';
}

describe('parseAccelerometerCsv', () => {
  it('estimates the rate from the row count over the duration and indexes by row', () => {
    const rec = parseAccelerometerCsv(recordingCsv(23));
    expect(rec.samples).toHaveLength(1150);
    expect(rec.hz).toBeGreaterThan(49);
    expect(rec.hz).toBeLessThan(51.5); // bunched timestamps end a little early: 1149 rows over 22.8 s
    expect(rec.durationS).toBeCloseTo(1150 / rec.hz, 6);
    expect(rec.samples[0]).toEqual([-0.95, 0.15, 0.25]);
  });

  it('reads WEDA-FALL files (m/s², BOM) and refuses what it cannot replay', () => {
    const weda = parseAccelerometerCsv('\uFEFF' + recordingCsv(6, 'accel_time_list,accel_x_list,accel_y_list,accel_z_list', 9.80665));
    expect(weda.samples[0]).toEqual([-0.95, 0.15, 0.25]);
    expect(() => parseAccelerometerCsv('time,ax,ay,az\n0,0,0,1\n')).toThrow(CsvFormatError);
    expect(() => parseAccelerometerCsv('t,x,y,z\n0,0,0,1\n0.02,0,zero,1\n')).toThrow(/:3: not a number/);
    expect(() => parseAccelerometerCsv('t,x,y,z\n0,0,0,1\n')).toThrow(/at least 2 samples/);
    expect(() => parseAccelerometerCsv('t,x,y,z\n0,0,0,1\n0.001,0,0,1\n0.002,0,0,1\n')).toThrow(/Hz/); // 1000 Hz
  });

  const dataset = wedaFallDir();
  const weda = dataset ? join(dataset, '50Hz/F01/U01_R01_accel.csv') : '';
  it.skipIf(!dataset)('reads a real WEDA-FALL recording', () => {
    const file = weda;
    const rec = parseAccelerometerCsv(readFileSync(file, 'utf8'), 'U01_R01');
    expect(rec.hz).toBeGreaterThan(30);
    expect(rec.hz).toBeLessThan(60);
    const g = rec.samples.map(([x, y, z]) => Math.hypot(x, y, z)).sort((a, b) => a - b);
    expect(g[g.length >> 1]).toBeGreaterThan(0.8); // converted to g: about 1 g at rest
    expect(g[g.length >> 1]).toBeLessThan(1.2);
  });
});

describe('recordingReadings', () => {
  it('cuts the samples into 5-s readings ending about now, with calm vitals, worn', () => {
    const rec = parseAccelerometerCsv(recordingCsv(23));
    const endTs = Date.parse('2024-06-10T12:00:00Z');
    const readings = recordingReadings(rec, { deviceId: 'csv-0001', endTs, home: { lat: 48.85, lon: 2.35 } });
    expect(readings).toHaveLength(Math.ceil(1150 / (rec.hz * 5)));
    expect(readings.map((r) => r.seq)).toEqual(readings.map((_, i) => i));
    readings.forEach((r, i) => expect(Date.parse(r.ts)).toBe(Math.round(endTs - rec.durationS * 1000 + i * 5000)));
    expect(endTs - Date.parse(readings.at(-1)!.ts)).toBeLessThanOrEqual(5000);
    expect(readings.flatMap((r) => r.acc.samples)).toEqual(rec.samples);
    for (const r of readings.slice(0, -1)) expect(Math.abs(r.acc.samples.length - rec.hz * 5)).toBeLessThanOrEqual(1);
    for (const r of readings) {
      expect(r).toMatchObject({ worn: true, charging: false, acc: { hz: rec.hz } });
      expect('steps' in r).toBe(false);
      const result = sanitizeReading(JSON.parse(JSON.stringify(r)), { now: endTs, maxFutureSkewMs: 300_000 });
      expect(result.reading?.flags).toBeUndefined();
      expect(result.error).toBeUndefined();
    }
  });
});

describe('replayCsvFiles', () => {
  let vigil: FakeVigil;
  let dir: string;
  beforeEach(async () => {
    vigil = await fakeVigil();
    dir = await mkdtemp(join(tmpdir(), 'vigil-csv-'));
  });
  afterEach(async () => {
    await vigil.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('replays each file as a new band, one reading per request, in order, and reports what was accepted', async () => {
    const files = [join(dir, 'fall.csv'), join(dir, 'short.csv')];
    await writeFile(files[0], recordingCsv(23));
    await writeFile(files[1], recordingCsv(7));
    const lines: string[] = [];
    const before = Date.now();
    const results = await replayCsvFiles({ url: vigil.url, adminKey: ADMIN_KEY, files, log: (l) => lines.push(l) });

    expect(results.map((r) => [r.deviceId, r.readings, r.accepted, r.rejected])).toEqual([
      ['csv-0001', 5, 5, 0],
      ['csv-0002', 2, 2, 0],
    ]);
    expect(vigil.requests.every((batch) => batch.length === 1)).toBe(true);
    expect(vigil.readings.map((r) => `${r.deviceId}:${r.seq}`)).toEqual(['csv-0001:0', 'csv-0001:1', 'csv-0001:2', 'csv-0001:3', 'csv-0001:4', 'csv-0002:0', 'csv-0002:1']);
    const last = Date.parse(vigil.readings[4].ts);
    expect(last).toBeGreaterThan(before - 5000);
    expect(last).toBeLessThanOrEqual(Date.now());
    for (const r of results) expect(vigil.devices.get(r.deviceId)?.residentId).toBe(r.residentId);
    expect(lines).toEqual([expect.stringMatching(/fall\.csv: csv-0001 · 5 of 5 readings accepted/), expect.stringMatching(/short\.csv: csv-0002 · 2 of 2 /)]);

    // A second run makes new bands: seq starts again at 0 and must not be taken for duplicates.
    const again = await replayCsvFiles({ url: vigil.url, adminKey: ADMIN_KEY, files: files.slice(0, 1) });
    expect(again).toMatchObject([{ deviceId: 'csv-0003', accepted: 5, duplicates: 0 }]);
  });

  it('changes nothing on the server when a file is bad', async () => {
    const good = join(dir, 'good.csv');
    await writeFile(good, recordingCsv(6));
    await writeFile(join(dir, 'bad.csv'), 'a,b\n1,2\n');
    await expect(replayCsvFiles({ url: vigil.url, adminKey: ADMIN_KEY, files: [good, join(dir, 'bad.csv')] })).rejects.toThrow(CsvFormatError);
    await expect(replayCsvFiles({ url: vigil.url, adminKey: ADMIN_KEY, files: [join(dir, 'missing.csv')] })).rejects.toMatchObject({ code: 'ENOENT' });
    expect(vigil.residents.size).toBe(0);
  });
});
