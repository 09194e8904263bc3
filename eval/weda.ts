/**
 * WEDA-FALL (Marques & Moreno, "Online Fall Detection Using Wrist Devices", Sensors 2023,
 * 23(3), 1146): loading, conversion to the `t,x,y,z` g CSV that `vigil detect-falls` reads, and
 * resampling to other rates.
 *
 * Cache invariant: `.cache/weda-fall/<activity>/<user>_<trial>.csv` is the recording's own
 * rows (bunched timestamps kept, so the CSV front end estimates the rate as for any watch) with
 * x/y/z divided by 9.81; a file is rewritten whenever it is missing.
 */
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseAccCsv, wedaToGCsv, type AccRecording } from '../src/detectors/fall/fall-csv.js';


export interface WedaRecording {
  /** e.g. "F01/U01_R01". */
  key: string;
  activity: string;
  user: string;
  /** Users U21–U31 are the older participants (77–95 years), ADL only. */
  older: boolean;
  /** Labelled fall range (s from the start), for F* recordings. */
  label: { start: number; end: number } | null;
  /** The converted CSV in the cache (what detect-falls reads). */
  csvPath: string;
  rec: AccRecording;
}

export async function loadWeda(datasetDir: string, cacheDir: string): Promise<WedaRecording[]> {
  const labels = new Map<string, { start: number; end: number }>();
  const labelText = (await readFile(join(datasetDir, 'fall_timestamps.csv'), 'utf8')).replace(/^\uFEFF/, '');
  for (const line of labelText.split('\n').slice(1)) {
    const [file, s, e] = line.trim().split(',');
    if (file) labels.set(file, { start: Number(s), end: Number(e) });
  }
  const out: WedaRecording[] = [];
  const root = join(datasetDir, '50Hz');
  for (const activity of (await readdir(root)).sort()) {
    await mkdir(join(cacheDir, activity), { recursive: true });
    for (const file of (await readdir(join(root, activity))).sort()) {
      if (!file.endsWith('_accel.csv')) continue;
      const base = file.replace('_accel.csv', '');
      const key = `${activity}/${base}`;
      const csvPath = join(cacheDir, activity, `${base}.csv`);
      if (!existsSync(csvPath)) await writeFile(csvPath, toGCsv(await readFile(join(root, activity, file), 'utf8')));
      const rec = parseAccCsv(await readFile(csvPath, 'utf8'), csvPath);
      const user = base.slice(0, 3);
      const label = activity.startsWith('F') ? labels.get(key) ?? null : null;
      if (activity.startsWith('F') && !label) throw new Error(`no label for ${key}`);
      out.push({ key, activity, user, older: Number(user.slice(1)) > 20, label, csvPath, rec });
    }
  }
  return out;
}

/** WEDA-FALL's `accel_time_list,accel_x_list,...` in m/s² → `t,x,y,z` in g, same rows. */
export const toGCsv = wedaToGCsv;

export type ResampleMethod = 'box' | 'linear' | 'cubic';

/**
 * Resamples a recording to `hz`, returned as `t,x,y,z` CSV text (so it goes through the same
 * parser as any file). Output samples are at (j + phase)/hz s, phase in [0, 1): a phase of 0.5
 * puts the 20-Hz samples half a bin off the detector's own grid, so its binning cannot simply
 * undo the resampling.
 * - 'box' averages the input over each output period: the anti-aliasing low-pass an
 *   accelerometer applies before a lower output rate;
 * - 'linear' interpolates between neighbouring samples: point sampling with no filter when
 *   downsampling (short spikes are caught at full height or missed), a smoothing one when
 *   upsampling (peaks between samples are cut);
 * - 'cubic' is Catmull–Rom interpolation: passes through the samples with a continuous slope,
 *   closer to the band-limited signal a faster sensor would have seen.
 */
export function resampleCsv(rec: AccRecording, hz: number, method: ResampleMethod, phase = 0): string {
  const n = rec.x.length;
  const duration = (n - 1) / rec.hz;
  const m = Math.floor(duration * hz - phase) + 1;
  const lines: string[] = new Array(m + 1);
  lines[0] = 't,x,y,z';
  const v = [0, 0, 0];
  for (let j = 0; j < m; j++) {
    const t = (j + phase) / hz;
    if (method === 'box') {
      const lo = Math.max(0, Math.ceil((t - 0.5 / hz) * rec.hz));
      const hi = Math.min(n - 1, Math.floor((t + 0.5 / hz) * rec.hz - 1e-9));
      if (hi >= lo) {
        let sx = 0, sy = 0, sz = 0;
        for (let i = lo; i <= hi; i++) {
          sx += rec.x[i];
          sy += rec.y[i];
          sz += rec.z[i];
        }
        const c = hi - lo + 1;
        v[0] = sx / c;
        v[1] = sy / c;
        v[2] = sz / c;
      } else interpolate(rec, t, v, false);
    } else interpolate(rec, t, v, method === 'cubic');
    lines[j + 1] = `${t.toFixed(5)},${v[0].toFixed(5)},${v[1].toFixed(5)},${v[2].toFixed(5)}`;
  }
  return lines.join('\n') + '\n';
}

function interpolate(rec: AccRecording, t: number, v: number[], cubic: boolean): void {
  const n = rec.x.length;
  const p = t * rec.hz;
  const i = Math.min(n - 2, Math.max(0, Math.floor(p)));
  const f = Math.min(1, Math.max(0, p - i));
  const axes = [rec.x, rec.y, rec.z];
  for (let a = 0; a < 3; a++) {
    const s = axes[a];
    const p1 = s[i], p2 = s[i + 1];
    if (!cubic) {
      v[a] = p1 + f * (p2 - p1);
      continue;
    }
    const p0 = i > 0 ? s[i - 1] : p1;
    const p3 = i + 2 < n ? s[i + 2] : p2;
    v[a] = 0.5 * (2 * p1 + (-p0 + p2) * f + (2 * p0 - 5 * p1 + 4 * p2 - p3) * f * f + (-p0 + 3 * p1 - 3 * p2 + p3) * f * f * f);
  }
}
