/**
 * Offline front end of the fall detector: a CSV recording (`t,x,y,z`, t in seconds, x/y/z in g)
 * cut into 5-s bursts and fed through feedFall exactly as the pipeline feeds readings, then
 * settled at the end of the file.
 *
 * Watches batch their samples, so timestamps come in bunches (WEDA-FALL: a handful of rows
 * within a few ms, then a gap): the rate is estimated from the row count over the duration and
 * samples are indexed by row, never by their own timestamp.
 */
import { readFile } from 'node:fs/promises';
import {
  DEFAULT_FALL_SETTINGS,
  feedFallWith,
  FALL_MODEL,
  newFallState,
  settleFallWith,
  type FallDecision,
  type FallRunOptions,
  type FallSettings,
} from './fall-detector.js';

/** The pipeline receives one reading every 5 s (DESIGN §1), each with the burst of its window. */
export const BURST_MS = 5000;

/** A magnitude median above this cannot be g on a worn wrist (it is m/s²: gravity alone is 9.81). */
const MAX_MEDIAN_G = 4;

/** A recording that cannot be used; `line` is 1-based (0: the file as a whole, e.g. unreadable). */
export class FallCsvError extends Error {
  constructor(
    readonly file: string,
    readonly line: number,
    message: string,
  ) {
    super(line > 0 ? `${file}:${line}: ${message}` : `${file}: ${message}`);
    this.name = 'FallCsvError';
  }
}

/** A parsed recording: samples by row, at the estimated rate, from time 0 (the first row). */
export interface AccRecording {
  name: string;
  /** Estimated sampling rate: (rows − 1) / (last t − first t). */
  hz: number;
  x: Float64Array;
  y: Float64Array;
  z: Float64Array;
}

/** WEDA-FALL's header: time in s, acceleration in m/s² including gravity (../shared/datasets/weda-fall). */
export const WEDA_HEADER = 'accel_time_list,accel_x_list,accel_y_list,accel_z_list';
/** m/s² per g, as the dataset's README says to convert (the eval and the frozen model use it). */
const STANDARD_GRAVITY = 9.81;

/** A WEDA-FALL recording (m/s², its own header) as the `t,x,y,z` CSV in g this parser reads, row for row. */
export function wedaToGCsv(text: string): string {
  const lines = text.replace(/^\uFEFF/, '').split(/\r?\n/);
  const out: string[] = ['t,x,y,z'];
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i].trim();
    if (!line) continue;
    const f = line.split(',');
    // A malformed row stays malformed, so the parser reports it at the same line.
    out.push(f.length === 4 ? `${f[0]},${Number(f[1]) / STANDARD_GRAVITY},${Number(f[2]) / STANDARD_GRAVITY},${Number(f[3]) / STANDARD_GRAVITY}` : line);
  }
  return out.join('\n') + '\n';
}

/** Parses `t,x,y,z` CSV text; throws FallCsvError naming the file and line. */
export function parseAccCsv(text: string, name: string): AccRecording {
  let pos = 0;
  let lineNo = 0;
  const nextLine = (): string | null => {
    if (pos >= text.length) return null;
    let end = text.indexOf('\n', pos);
    if (end < 0) end = text.length;
    let line = text.slice(pos, end);
    pos = end + 1;
    lineNo++;
    if (line.endsWith('\r')) line = line.slice(0, -1);
    return line;
  };
  let header = nextLine();
  if (header === null) throw new FallCsvError(name, 1, 'empty file; expected a header "t,x,y,z"');
  if (header.charCodeAt(0) === 0xfeff) header = header.slice(1);
  const cols = header.split(',').map((c) => c.trim().toLowerCase());
  if (cols.length !== 4 || cols[0] !== 't' || cols[1] !== 'x' || cols[2] !== 'y' || cols[3] !== 'z') {
    throw new FallCsvError(name, 1, `expected the header "t,x,y,z" (t in s, x/y/z in g), got "${header.slice(0, 80)}"`);
  }
  // Rough capacity from the text length; grown by doubling.
  let cap = Math.max(16, Math.ceil(text.length / 20));
  let t: Float64Array = new Float64Array(cap), x: Float64Array = new Float64Array(cap), y: Float64Array = new Float64Array(cap), z: Float64Array = new Float64Array(cap);
  let n = 0;
  for (let line = nextLine(); line !== null; line = nextLine()) {
    if (line.trim() === '') continue;
    const f = line.split(',');
    if (f.length !== 4) throw new FallCsvError(name, lineNo, `expected 4 fields t,x,y,z, got ${f.length}`);
    const tv = Number(f[0]), xv = Number(f[1]), yv = Number(f[2]), zv = Number(f[3]);
    if (f.some((s) => s.trim() === '') || !Number.isFinite(tv) || !Number.isFinite(xv) || !Number.isFinite(yv) || !Number.isFinite(zv)) {
      throw new FallCsvError(name, lineNo, `not a number in "${line.slice(0, 80)}"`);
    }
    if (n === cap) {
      cap *= 2;
      t = grow(t, cap);
      x = grow(x, cap);
      y = grow(y, cap);
      z = grow(z, cap);
    }
    t[n] = tv;
    x[n] = xv;
    y[n] = yv;
    z[n] = zv;
    n++;
  }
  if (n < 2) throw new FallCsvError(name, lineNo, `need at least 2 samples, got ${n}`);
  const duration = t[n - 1] - t[0];
  if (!(duration > 0)) throw new FallCsvError(name, lineNo, `the last timestamp (${t[n - 1]}) is not after the first (${t[0]}): cannot estimate the rate`);
  const hz = (n - 1) / duration;
  if (hz < 1 || hz > 2000) throw new FallCsvError(name, lineNo, `estimated rate ${hz.toFixed(1)} Hz (${n} rows over ${duration} s) is not an accelerometer rate: is t in seconds?`);
  const rec: AccRecording = { name, hz, x: x.subarray(0, n), y: y.subarray(0, n), z: z.subarray(0, n) };
  const median = medianMagnitude(rec);
  if (median > MAX_MEDIAN_G) throw new FallCsvError(name, 2, `median |a| is ${median.toFixed(2)}: x/y/z must be in g (divide m/s² by 9.81)`);
  return rec;
}

function grow(a: Float64Array, cap: number): Float64Array {
  const b = new Float64Array(cap);
  b.set(a);
  return b;
}

function medianMagnitude(r: AccRecording): number {
  const n = r.x.length;
  const step = Math.max(1, Math.floor(n / 1000));
  const mags: number[] = [];
  for (let i = 0; i < n; i += step) mags.push(Math.hypot(r.x[i], r.y[i], r.z[i]));
  mags.sort((a, b) => a - b);
  return mags[mags.length >> 1];
}

/**
 * Runs the detector over a recording as the pipeline would: 5-s bursts (sample i at
 * i·1000/hz ms), each fed with feedFall, then settleFall(Infinity).
 */
export function detectFallsInRecording(
  rec: AccRecording,
  settings: FallSettings = DEFAULT_FALL_SETTINGS,
  opts: FallRunOptions = { model: FALL_MODEL },
): FallDecision[] {
  const st = newFallState();
  const out: FallDecision[] = [];
  const n = rec.x.length;
  const perBurst = (BURST_MS / 1000) * rec.hz;
  for (let b = 0; ; b++) {
    const i0 = Math.round(b * perBurst);
    if (i0 >= n) break;
    const i1 = Math.min(n, Math.round((b + 1) * perBurst));
    const samples: [number, number, number][] = new Array(i1 - i0);
    for (let i = i0; i < i1; i++) samples[i - i0] = [rec.x[i], rec.y[i], rec.z[i]];
    out.push(...feedFallWith(st, { hz: rec.hz, samples }, (i0 * 1000) / rec.hz, settings, opts));
  }
  out.push(...settleFallWith(st, Infinity, settings, opts));
  return out;
}

/** One line of `vigil detect-falls`: impact times in seconds from the file's first row. */
export interface FileFalls {
  file: string;
  falls: { t: number; peakG: number; confidence: number }[];
}

export function fallsReport(file: string, decisions: readonly FallDecision[]): FileFalls {
  const falls: FileFalls['falls'] = [];
  for (const d of decisions) if (d.kind === 'fall') falls.push({ t: Math.round(d.impactTs / 10) / 100, peakG: d.peakG, confidence: d.confidence });
  return { file, falls };
}

export async function detectFallsInFile(path: string, settings: FallSettings = DEFAULT_FALL_SETTINGS): Promise<FileFalls> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new FallCsvError(path, 0, `cannot read: ${(err as Error).message}`);
  }
  return fallsReport(path, detectFallsInRecording(parseAccCsv(text, path), settings));
}
