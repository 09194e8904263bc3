/**
 * The history backfill's past (history.ts): one reading a minute with a 15-s, 10-Hz burst.
 * Through every detector, as the alerts and warehouse groups run it at first start — the past
 * received within a minute of "now", then the live readings — it raises no alert and gives
 * the nights and days that 5-s live readings of the same residents give. And the backfill
 * loads each device in seq order, ahead of its live readings, paced on the groups.
 */
import { describe, expect, it } from 'vitest';
import type { Reading } from '../core/reading.js';
import { DEFAULT_DETECTION_SETTINGS } from '../detectors/detection-settings.js';
import { admitReading, newDeviceState, tickDevice, type ResidentContext } from '../detectors/device-detector.js';
import { newSummaryState, summarizeReading, tickSummaries, type Summaries } from '../detectors/device-summaries.js';
import type { SleepSession } from '../detectors/sleep/sleep-detector.js';
import type { AlertChange } from '../store/types.js';
import { HISTORY_BATCH, HISTORY_INTERVAL_MS, HistoryBackfill, historyModel, historyReadings, type AppendedAt, type HistoryDevice } from './history.js';
import { hashString, mixSeeds } from './prng.js';
import { deviceIdFor, homeLocationFor } from './provision.js';
import { ResidentModel, type WireReading } from './resident-model.js';

const TZ = 'Europe/Paris';
const HOUR = 3_600_000;
/** A Wednesday at 10:17 local: the live fleet starts here. */
const NOW = Date.parse('2024-06-12T10:17:00+02:00');
const device = (n: number): HistoryDevice => ({ deviceId: deviceIdFor(n), residentId: `res-${n}`, timezone: TZ, homeLocation: homeLocationFor(n) });
/** The fleet's live model of device n, starting at `origin` as Fleet.start() makes it. */
const liveModel = (d: HistoryDevice, origin: { ts: number; seq: number }, accHz = 25) =>
  new ResidentModel({ deviceId: d.deviceId, seed: mixSeeds(0, hashString(d.deviceId)), timezone: TZ, home: d.homeLocation, accHz, startTs: origin.ts, startSeq: origin.seq });
const toReading = (w: WireReading, receivedAt: number): Reading => ({ ...w, ts: Date.parse(w.ts), receivedAt }) as unknown as Reading;
const raised = (changes: AlertChange[]) => changes.flatMap((c) => (c.kind === 'raise' ? [`${c.alert.deviceId} ${c.alert.type} ${new Date(c.alert.openedAt).toISOString()}`] : []));

describe('history', () => {
  it('ends right before the live readings, in time and in seq', () => {
    const d = device(1);
    const origin = { ts: NOW + 1234, seq: NOW + 1234 };
    const m = historyModel(d, origin, 36);
    const all: WireReading[] = [];
    while (m.nextSeq < origin.seq) all.push(m.next());
    expect(all).toHaveLength(historyReadings(36));
    expect(all).toHaveLength(36 * 60);
    expect(all[0].seq).toBe(origin.seq - 36 * 60);
    expect(Date.parse(all.at(-1)!.ts)).toBe(origin.ts - HISTORY_INTERVAL_MS);
    expect(all.at(-1)!.seq).toBe(origin.seq - 1);
    expect(all.every((r, i) => i === 0 || (r.seq === all[i - 1].seq + 1 && Date.parse(r.ts) - Date.parse(all[i - 1].ts) === HISTORY_INTERVAL_MS))).toBe(true);
    // A 15-s burst at 10 Hz, whatever the resident does.
    expect(new Set(all.map((r) => `${r.acc.hz}/${r.acc.samples.length}`))).toEqual(new Set(['10/150']));
  });

  it('loaded at first start, then live: no alert, a night of sleep and today’s activity per resident', () => {
    const RESIDENTS = 8;
    const problems: string[] = [];
    for (let n = 1; n <= RESIDENTS; n++) {
      const d = device(n);
      const origin = { ts: NOW + n * 100, seq: NOW + n * 100 };
      const rc: ResidentContext = { residentId: d.residentId, timezone: TZ, home: d.homeLocation!, settings: DEFAULT_DETECTION_SETTINGS };
      const alerts = newDeviceState();
      const summary = newSummaryState();
      const changes: AlertChange[] = [];
      const out: Summaries = { sleep: [], days: [] };
      // The past arrives within the first minute (received "now"), in batches; the groups tick each second.
      const past = historyModel(d, origin, 36);
      let now = NOW;
      while (past.nextSeq < origin.seq) {
        for (let i = 0; i < HISTORY_BATCH && past.nextSeq < origin.seq; i++) {
          const r = toReading(past.next(), now);
          admitReading(alerts, r, rc, now, changes);
          summarizeReading(summary, r, TZ, out);
        }
        now += 25;
        tickDevice(alerts, d.deviceId, rc, now, NOW, changes);
        tickSummaries(summary, TZ, now, out);
      }
      // Then the live readings, from the origin, for two hours: each received at the end of its window.
      const live = liveModel(d, origin, 20);
      let nextTick = now + 1000;
      while (live.nextTs < origin.ts + 2 * HOUR) {
        const at = Math.max(now, live.nextTs + live.intervalMs);
        for (; nextTick <= at; nextTick += 1000) {
          tickDevice(alerts, d.deviceId, rc, nextTick, NOW, changes);
          tickSummaries(summary, TZ, nextTick, out);
        }
        const r = toReading(live.next(), at);
        admitReading(alerts, r, rc, at, changes);
        summarizeReading(summary, r, TZ, out);
      }
      problems.push(...raised(changes));
      // Last night (the 11th, local), whole, and yesterday's and today's steps.
      const night = out.sleep.find((s) => s.night === '2024-06-11');
      if (!night || night.totalSleepMin < 300) problems.push(`${d.deviceId}: last night ${JSON.stringify(night)}`);
      const yesterday = out.days.find((x) => x.day === '2024-06-11');
      if (!yesterday || yesterday.steps < 2000 || yesterday.activeMinutes < 20) problems.push(`${d.deviceId}: yesterday ${JSON.stringify(yesterday)}`);
      expect(summary.activity.day, d.deviceId).not.toBeNull();
    }
    expect(problems).toEqual([]);
  });

  it('gives the nights that live readings of the same residents give', () => {
    const started = NOW - 24 * HOUR; // yesterday 10:17: a whole evening, night and morning
    const night = (readings: Iterable<WireReading>) => {
      const st = newSummaryState();
      const out: Summaries = { sleep: [], days: [] };
      for (const w of readings) summarizeReading(st, toReading(w, Date.parse(w.ts)), TZ, out);
      return out.sleep.find((s) => s.night === '2024-06-11');
    };
    function* until(m: ResidentModel, end: number) {
      while (m.nextTs < end) yield m.next();
    }
    const lines: string[] = [];
    for (let n = 1; n <= 3; n++) {
      const d = device(n);
      const origin = { ts: NOW, seq: 1e9 };
      const past = night(until(historyModel(d, origin, 24), NOW)) as SleepSession;
      const live = night(until(liveModel(d, { ts: started, seq: 0 }, 20), NOW)) as SleepSession;
      expect(past, d.deviceId).toBeDefined();
      expect(live, d.deviceId).toBeDefined();
      lines.push(`${d.deviceId} live ${fmt(live)} | history ${fmt(past)}`);
      // Same resident, same plan for the day: the same night within minutes.
      expect(Math.abs(past.start - live.start), d.deviceId).toBeLessThan(20 * 60_000);
      expect(Math.abs(past.end - live.end), d.deviceId).toBeLessThan(20 * 60_000);
      expect(past.totalSleepMin / live.totalSleepMin, d.deviceId).toBeGreaterThan(0.85);
      expect(past.totalSleepMin / live.totalSleepMin, d.deviceId).toBeLessThan(1.15);
    }
    console.log(lines.join('\n'));
  });

  describe('backfill', () => {
    const devices = [device(1), device(2), device(3)];
    const origins = new Map(devices.map((d, i) => [d.deviceId, { ts: NOW + i * 1000, seq: NOW + i * 1000 }]));

    it('loads each device in seq order, releases it after its last batch, and ends once the groups have it', async () => {
      const appended: { deviceId: string; seqs: number[] }[] = [];
      const released: string[] = [];
      let seq = 0;
      let handledUpTo = 0;
      const backfill = new HistoryBackfill({
        devices,
        hours: 3,
        origin: (id) => origins.get(id)!,
        append: async (d, readings) => {
          await new Promise((r) => setTimeout(r, 1));
          expect(released).not.toContain(d.deviceId);
          appended.push({ deviceId: d.deviceId, seqs: readings.map((r) => r.seq) });
          return { partition: 0, sequence: String(++seq) };
        },
        // A group that handles one record every 2 ms behind the appends.
        handled: (at: AppendedAt) => Number(at.sequence) <= handledUpTo,
        onDeviceDone: (id) => released.push(id),
        maxAhead: 2,
      });
      const timer = setInterval(() => (handledUpTo = Math.min(seq, handledUpTo + 1)), 2);
      const result = await backfill.start();
      clearInterval(timer);
      expect(result).toMatchObject({ readings: 3 * 180, devices: 3, complete: true });
      expect(backfill.loaded).toBe(backfill.total);
      expect(handledUpTo).toBe(seq);
      expect(released.sort()).toEqual(devices.map((d) => d.deviceId));
      for (const d of devices) {
        const seqs = appended.filter((a) => a.deviceId === d.deviceId).flatMap((a) => a.seqs);
        const end = origins.get(d.deviceId)!.seq;
        expect(seqs).toEqual(Array.from({ length: 180 }, (_, i) => end - 180 + i));
      }
      expect(Math.max(...appended.map((a) => a.seqs.length))).toBe(HISTORY_BATCH);
    });

    it('stops between batches, and retries a busy stream', async () => {
      let calls = 0;
      const errors: boolean[] = [];
      const backfill = new HistoryBackfill({
        devices,
        hours: 36,
        origin: (id) => origins.get(id)!,
        append: async () => {
          if (++calls === 2) throw new Error('stream busy');
          await new Promise((r) => setTimeout(r, 20));
          return null;
        },
        onError: (_id, _err, willRetry) => errors.push(willRetry),
      });
      const run = backfill.start();
      await new Promise((r) => setTimeout(r, 300));
      const stopping = Date.now();
      await backfill.stop();
      expect(Date.now() - stopping).toBeLessThan(100); // the retry's back-off wait ends at once
      const result = await run;
      expect(errors).toEqual([true]);
      expect(result.complete).toBe(false);
      expect(result.readings).toBeGreaterThan(0);
      expect(result.readings).toBeLessThan(backfill.total);
      const after = calls;
      await new Promise((r) => setTimeout(r, 50));
      expect(calls).toBe(after);
    });
  });
});

const fmt = (s: SleepSession) => `${new Date(s.start).toISOString().slice(11, 16)}–${new Date(s.end).toISOString().slice(11, 16)} ${s.totalSleepMin} min, ${s.awakenings} awakenings`;
