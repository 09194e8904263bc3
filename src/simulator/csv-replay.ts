/**
 * `vigil simulate --from-csv FILE...`: replays recorded wrist accelerometer files through a
 * running Vigil, each as one freshly provisioned band, so the pipeline's detectors (the fall
 * detector above all) meet real recordings instead of synthetic bursts.
 *
 * A file's samples are cut into consecutive 5-s readings, seq 0, 1, 2, ..., timed so that the
 * recording ends about now (ts = now − duration + i·5 s), and posted at once, in order, one
 * reading per request. The other measurements are those of a resident sitting calmly at home
 * (worn, not charging, normal vitals); steps are left out: a recording does not say them.
 *
 * Formats (header line required):
 * - `t,x,y,z`: t in seconds, x/y/z in g;
 * - `accel_time_list,accel_x_list,accel_y_list,accel_z_list`: WEDA-FALL (../shared/datasets/
 *   weda-fall), acceleration in m/s² including gravity, converted to g.
 * Timestamps may come in bursts (phones and watches batch their sensor events), so the rate is
 * estimated from the row count over the duration and samples are indexed by row.
 */
import { readFile } from 'node:fs/promises';
import type { Vec3 } from './accelerometer.js';
import { FallCsvError, parseAccCsv, WEDA_HEADER, wedaToGCsv, type AccRecording } from '../detectors/fall/fall-csv.js';
import { postReadings } from './fleet.js';
import { Random, hashString } from './prng.js';
import { HttpAdminClient, provisionFleet, type AdminClient } from './provision.js';
import type { WireReading } from './resident-model.js';

export interface AccelerometerRecording {
  /** Estimated from the row count over the duration: (rows − 1) / (last t − first t), to 0.01 Hz. */
  hz: number;
  /** rows / hz, seconds. */
  durationS: number;
  /** In g, rounded to 1 mg. */
  samples: Vec3[];
}

/** A replayed reading: a wire reading without steps. */
export type CsvReading = Omit<WireReading, 'steps'>;

const READING_MS = 5000;
const MAX_ACC_SAMPLES = 2000; // what ingest takes per reading (DESIGN §3.1)
const MAX_ATTEMPTS = 8;

/** A recording that cannot be replayed: bad header, bad row, too short, rate out of range. */
export class CsvFormatError extends Error {
  override name = 'CsvFormatError';
}

/**
 * Parses a recording with the fall detector's own CSV front end (`t,x,y,z` in g, or WEDA-FALL's
 * m/s² columns converted first); throws a CsvFormatError naming the line of the first bad row.
 */
export function parseAccelerometerCsv(text: string, name = 'CSV'): AccelerometerRecording {
  const header = text.replace(/^\uFEFF/, '').split(/\r?\n/, 1)[0].trim().toLowerCase();
  let rec: AccRecording;
  try {
    rec = parseAccCsv(header === WEDA_HEADER ? wedaToGCsv(text) : text, name);
  } catch (err) {
    if (err instanceof FallCsvError) throw new CsvFormatError(err.message);
    throw err;
  }
  const hz = Math.round(rec.hz * 100) / 100;
  if ((hz * READING_MS) / 1000 > MAX_ACC_SAMPLES)
    throw new CsvFormatError(`${name}: estimated ${hz} Hz; a 5-s reading must hold at most ${MAX_ACC_SAMPLES} samples (${MAX_ACC_SAMPLES / 5} Hz)`);
  const r3 = (v: number) => Math.round(v * 1000) / 1000;
  const samples: Vec3[] = Array.from(rec.x, (x, i) => [r3(x), r3(rec.y[i]), r3(rec.z[i])]);
  return { hz, durationS: samples.length / hz, samples };
}

export interface RecordingReadingsOptions {
  deviceId: string;
  /** When the recording ends, epoch ms: the first reading is at endTs − duration. */
  endTs: number;
  /** The resident's home: the phone's location. */
  home: { lat: number; lon: number };
}

/** The readings of a recording: consecutive 5-s windows (the last may be shorter), seq from 0. */
export function recordingReadings(rec: AccelerometerRecording, opts: RecordingReadingsOptions): CsvReading[] {
  const rng = new Random(hashString(opts.deviceId));
  const startTs = opts.endTs - rec.durationS * 1000;
  const perReading = (rec.hz * READING_MS) / 1000;
  const mPerDegLat = 111_320;
  const hr = rng.uniform(66, 76);
  const readings: CsvReading[] = [];
  for (let i = 0; ; i++) {
    const from = Math.round(i * perReading);
    if (from >= rec.samples.length) break;
    const to = Math.min(rec.samples.length, Math.round((i + 1) * perReading));
    readings.push({
      deviceId: opts.deviceId,
      seq: i,
      ts: new Date(Math.round(startTs + i * READING_MS)).toISOString(),
      hr: Math.round(rng.normal(hr, 2)),
      spo2: Math.min(99, Math.round(rng.normal(97, 0.6))),
      skinTemp: Math.round(rng.normal(33, 0.05) * 10) / 10,
      battery: 80,
      worn: true,
      charging: false,
      acc: { hz: rec.hz, samples: rec.samples.slice(from, to) },
      location: {
        lat: Math.round((opts.home.lat + rng.normal(0, 6) / mPerDegLat) * 1e6) / 1e6,
        lon: Math.round((opts.home.lon + rng.normal(0, 6) / (mPerDegLat * Math.cos((opts.home.lat * Math.PI) / 180))) * 1e6) / 1e6,
        accuracyM: Math.round(rng.uniform(10, 25)),
      },
    });
  }
  return readings;
}

export interface CsvReplayOptions {
  url: string;
  adminKey: string;
  files: string[];
  log?: (line: string) => void;
  /** Clock for the end of each recording. Default Date.now. */
  now?: () => number;
  /** How devices are created. Default: the admin API at `url` with `adminKey`. */
  admin?: AdminClient;
}

export interface CsvReplayResult {
  file: string;
  deviceId: string;
  residentId: string;
  hz: number;
  durationS: number;
  readings: number;
  accepted: number;
  duplicates: number;
  /** Readings ingest refused (per-reading rejections, 4xx answers, retries exhausted). */
  rejected: number;
  lastError?: string;
}

/**
 * Replays each file as a new band (`csv-0001`, ...; fresh each run, since seq restarts at 0)
 * and resolves with what ingest said, per file. Every file is parsed before anything is
 * provisioned, so a bad file changes nothing on the server.
 */
export async function replayCsvFiles(opts: CsvReplayOptions): Promise<CsvReplayResult[]> {
  if (opts.files.length === 0) throw new RangeError('--from-csv needs at least one file');
  const log = opts.log ?? (() => {});
  const now = opts.now ?? Date.now;
  const recordings = await Promise.all(opts.files.map(async (file) => parseAccelerometerCsv(await readFile(file, 'utf8'), file)));
  const admin = opts.admin ?? new HttpAdminClient(opts.url, opts.adminKey);
  const devices = await provisionFleet(admin, opts.files.length, { deviceIdPrefix: 'csv-' });
  const url = opts.url.replace(/\/+$/, '') + '/v1/readings';
  const results: CsvReplayResult[] = [];
  for (const [i, file] of opts.files.entries()) {
    const rec = recordings[i];
    const { deviceId, residentId, token, homeLocation } = devices[i];
    const readings = recordingReadings(rec, { deviceId, endTs: now(), home: homeLocation });
    const result: CsvReplayResult = { file, deviceId, residentId, hz: rec.hz, durationS: rec.durationS, readings: readings.length, accepted: 0, duplicates: 0, rejected: 0 };
    for (const reading of readings) await postOne(url, `Bearer ${token}`, JSON.stringify(reading), result);
    log(
      `${file}: ${deviceId} · ${result.accepted} of ${result.readings} readings accepted` +
        ` (${rec.hz} Hz, ${rec.durationS.toFixed(1)} s)` +
        (result.duplicates ? ` · ${result.duplicates} duplicates` : '') +
        (result.rejected ? ` · ${result.rejected} rejected${result.lastError ? `: ${result.lastError}` : ''}` : ''),
    );
    results.push(result);
  }
  return results;
}

/** One reading, retried while ingest says "not now" (429, 503, network), as the phone app would. */
async function postOne(url: string, auth: string, body: string, result: CsvReplayResult): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    const o = await postReadings(url, auth, body);
    if (o.ok) {
      result.accepted += o.accepted;
      result.duplicates += o.duplicates;
      result.rejected += o.rejected;
      return;
    }
    result.lastError = o.error;
    if (!o.retry || attempt >= MAX_ATTEMPTS) {
      result.rejected++;
      return;
    }
    await new Promise((resolve) => setTimeout(resolve, o.retryAfterMs ?? Math.min(10_000, 250 * 2 ** attempt)));
  }
}
