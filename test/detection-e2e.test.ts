/**
 * Detection end to end over HTTP on the embedded backends: a fall found in the raw
 * accelerometer (no on-device event) pages the contact; a resident's threshold override;
 * an hour of buffered readings arriving late and shuffled; sleep sessions and daily activity
 * in the warehouse; real wrist recordings replayed as 5-s readings raise the same falls as
 * `vigil detect-falls` finds in the files.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Vigil } from '../src/app.js';
import { ResidentModel, type WireReading } from '../src/simulator/resident-model.js';
import { generateReadings } from '../src/simulator/offline.js';
import { replayCsvFiles } from '../src/simulator/csv-replay.js';
import { detectFallsInFile, wedaToGCsv } from '../src/detectors/fall/fall-csv.js';
import { wedaFallDir } from '../src/testing/datasets.js';
import { ADMIN_KEY, api, reading, registerResident, startTestVigil, tempDir, waitFor, webhookReceiver } from './helpers.js';

const DATASET = wedaFallDir();

async function post(base: string, token: string, readings: unknown[]) {
  for (let i = 0; i < readings.length; i += 500) {
    const res = await api(base, 'POST', '/v1/readings', { token, body: { readings: readings.slice(i, i + 500) } });
    expect(res.status, JSON.stringify(res.body)).toBe(202);
  }
}

const alertsOf = async (base: string, residentId: string, type?: string) =>
  (await api(base, 'GET', `/v1/alerts?residentId=${residentId}${type ? `&type=${type}` : ''}`, { token: ADMIN_KEY })).body.alerts as any[];

describe('detection end to end', () => {
  let vigil: Vigil;
  let base: string;
  let hooks: Awaited<ReturnType<typeof webhookReceiver>>;

  beforeAll(async () => {
    hooks = await webhookReceiver();
    vigil = await startTestVigil();
    base = vigil.url;
  });
  afterAll(async () => {
    await vigil?.stop();
    await hooks?.close();
  });

  it('finds a fall in the raw accelerometer, without the band’s FALL event, and pages the contact', async () => {
    const r = await registerResident(base, 'band-fall', hooks.url);
    const startTs = Date.now() - 3 * 60_000;
    const model = new ResidentModel({ deviceId: 'band-fall', seed: 11, startTs, accHz: 25 });
    model.inject('FALL_SILENT', startTs + 60_000, 10 * 60_000);
    const readings = [...generateReadings(model, startTs, Date.now() - 5000)];
    expect(readings.some((x) => x.events)).toBe(false);
    await post(base, r.token, readings);
    const [fall] = await waitFor('FALL alert', async () => {
      const alerts = await alertsOf(base, r.residentId, 'FALL');
      return alerts.length > 0 && alerts;
    });
    expect(fall).toMatchObject({ type: 'FALL', severity: 'critical', evidence: { source: 'accelerometer' } });
    expect(Math.abs(Date.parse(fall.openedAt) - (startTs + 60_000))).toBeLessThan(10_000);
    expect(fall.evidence.peakG).toBeGreaterThan(2);
    const delivery = await waitFor('webhook', async () => hooks.deliveries.find((d) => JSON.parse(d.body).alert?.id === fall.id));
    expect(JSON.parse(delivery.body).alert.type).toBe('FALL');
  });

  it('applies a resident’s own threshold, and rejects an override out of range', async () => {
    const r = await registerResident(base, 'band-override');
    const bad = await api(base, 'PUT', `/v1/residents/${r.residentId}/detection`, { token: ADMIN_KEY, body: { hrHigh: 5000 } });
    expect(bad.status).toBe(400);
    expect(bad.headers.get('content-type')).toContain('application/problem+json');
    const unknown = await api(base, 'PUT', `/v1/residents/${r.residentId}/detection`, { token: ADMIN_KEY, body: { hrHihg: 100 } });
    expect(unknown.status).toBe(400);
    const put = await api(base, 'PUT', `/v1/residents/${r.residentId}/detection`, { token: ADMIN_KEY, body: { hrHigh: 100, hrHighClear: 90 } });
    expect(put.status).toBe(200);
    expect(put.body).toMatchObject({ overrides: { hrHigh: 100 }, effective: { hrHigh: 100, hrLow: 40 } });
    expect((await api(base, 'GET', `/v1/residents/${r.residentId}/detection`, { token: ADMIN_KEY })).body.effective.hrHighClear).toBe(90);

    const t0 = Date.now() - 120_000;
    await post(base, r.token, Array.from({ length: 12 }, (_, i) => reading('band-override', i, t0 + i * 5000, { hr: 105 })));
    const [alert] = await waitFor('HR_HIGH', async () => {
      const alerts = await alertsOf(base, r.residentId, 'HR_HIGH');
      return alerts.length > 0 && alerts;
    });
    expect(alert.evidence.threshold).toBe(100);
  });

  it('takes an hour of buffered readings, late and shuffled: records a tachycardia that is already over without paging', async () => {
    const r = await registerResident(base, 'band-late', hooks.url);
    const t0 = Date.now() - 2 * 3_600_000;
    const readings = Array.from({ length: 720 }, (_, i) => reading('band-late', i, t0 + i * 5000, { hr: i >= 100 && i < 140 ? 145 : 72 }));
    const shuffled = readings.map((x, i) => ({ x, k: (i * 7919) % 720 })).sort((a, b) => a.k - b.k).map((p) => p.x);
    await post(base, r.token, shuffled);
    const [alert] = await waitFor('late HR_HIGH', async () => {
      const alerts = await alertsOf(base, r.residentId, 'HR_HIGH');
      return alerts.length > 0 && alerts[0].state === 'resolved' && alerts;
    });
    expect(alert.delayMs).toBeGreaterThan(3_600_000);
    expect(Date.parse(alert.openedAt)).toBe(t0 + 100 * 5000);
    const notifications = await api(base, 'GET', `/v1/alerts/${alert.id}/notifications`, { token: ADMIN_KEY });
    expect(notifications.body.notifications).toEqual([]);
  });

  it('writes a night of sleep and the day’s activity to the warehouse', async () => {
    const r = await registerResident(base, 'band-night');
    const startTs = Date.parse('2024-06-10T18:00:00+02:00');
    const model = new ResidentModel({ deviceId: 'band-night', seed: 5, startTs, accHz: 20, timezone: 'Europe/Paris' });
    const readings: WireReading[] = [...generateReadings(model, startTs, Date.parse('2024-06-11T11:00:00+02:00'))];
    await post(base, r.token, readings);
    const sleep = await waitFor('sleep session', async () => {
      const res = await api(base, 'GET', `/v1/residents/${r.residentId}/sleep?from=2024-06-10&to=2024-06-10`, { token: ADMIN_KEY });
      return res.body.sessions?.length > 0 && res.body.sessions;
    }, 60_000);
    expect(sleep).toHaveLength(1);
    expect(sleep[0]).toMatchObject({ deviceId: 'band-night', night: '2024-06-10' });
    expect(sleep[0].totalSleepMin).toBeGreaterThan(300);
    const stepsOn = (day: string) => readings.filter((x) => new Date(x.ts).toLocaleDateString('sv-SE', { timeZone: 'Europe/Paris' }) === day).reduce((a, x) => a + x.steps, 0);
    // The running day is rewritten at each flush: wait until the last readings are in.
    const expected = stepsOn('2024-06-11');
    const days = await waitFor('activity', async () => {
      const res = await api(base, 'GET', `/v1/residents/${r.residentId}/activity?from=2024-06-10&to=2024-06-11`, { token: ADMIN_KEY });
      return res.body.days?.length === 2 && res.body.days[1].steps === expected && res.body.days;
    }, 30_000);
    expect(days.map((d: any) => [d.day, d.steps, d.final])).toEqual([
      ['2024-06-10', stepsOn('2024-06-10'), true],
      ['2024-06-11', stepsOn('2024-06-11'), false],
    ]);
    const bad = await api(base, 'GET', `/v1/residents/${r.residentId}/sleep?from=yesterday`, { token: ADMIN_KEY });
    expect(bad.status).toBe(400);
  });

  const sources = ['F01/U01_R01', 'F04/U05_R02', 'F02/U03_R01', 'D04/U02_R01', 'D10/U21_R01'].map((f) => join(DATASET ?? '', '50Hz', `${f}_accel.csv`));
  /** A WEDA-FALL recording as the `t,x,y,z` CSV in g that detect-falls and --from-csv read. */
  const toGCsv = (file: string) => {
    const out = join(tempDir('vigil-weda-'), 'recording.csv');
    writeFileSync(out, wedaToGCsv(readFileSync(file, 'utf8')));
    return out;
  };
  it.skipIf(!DATASET)(
    'replays real wrist recordings as 5-s readings and raises the falls `vigil detect-falls` finds in them',
    { timeout: 120_000 },
    async () => {
      const recordings = sources.map(toGCsv);
      const expected = await Promise.all(recordings.map(async (f) => (await detectFallsInFile(f)).falls.length));
      expect(expected.slice(0, 3).every((n) => n > 0)).toBe(true);
      const results = await replayCsvFiles({ url: base, adminKey: ADMIN_KEY, files: recordings });
      for (const res of results) expect(res.accepted).toBe(res.readings);
      // A recording ends a few seconds after the fall: the pipeline decides on the silence.
      const found = await waitFor('falls of the replayed recordings', async () => {
        const counts = await Promise.all(results.map(async (res) => (await alertsOf(base, res.residentId, 'FALL')).length));
        return counts.slice(0, 3).every((n) => n > 0) && counts;
      }, 60_000);
      await new Promise((r) => setTimeout(r, 2000));
      const settled = await Promise.all(results.map(async (res) => (await alertsOf(base, res.residentId, 'FALL')).length));
      expect(settled.map((n) => Math.min(n, 1))).toEqual(expected.map((n) => Math.min(n, 1)));
      expect(found.slice(0, 3)).toEqual([1, 1, 1]);
    },
  );
});
