// Exploration only: dumps 20-Hz bins and traced candidates of every WEDA-FALL recording (native rate) to JSON.
import { writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { detectFallsInRecording, parseAccCsv } from '../src/detectors/fall/fall-csv.js';
import { DEFAULT_FALL_SETTINGS, FALL_MODEL, type FallCandidateTrace } from '../src/detectors/fall/fall-detector.js';
import { loadWeda, resampleCsv } from './weda.js';
const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const all = await loadWeda(resolve(repo, '../shared/datasets/weda-fall'), resolve(repo, '.cache/weda-fall'));
const variant = process.argv[2] ?? 'native';
const out = all.map((r) => {
  let rec = r.rec;
  if (variant === 'box20') rec = parseAccCsv(resampleCsv(rec, 20, 'box', 0.5), 'x');
  if (variant === 'point20') rec = parseAccCsv(resampleCsv(rec, 20, 'linear', 0.5), 'x');
  if (variant === 'lin100') rec = parseAccCsv(resampleCsv(rec, 100, 'linear', 0), 'x');
  const n = rec.x.length;
  const nb = Math.floor(((n - 1) * 1000) / rec.hz / 50 + 0.5) + 1;
  const bx = new Array(nb).fill(0), by = new Array(nb).fill(0), bz = new Array(nb).fill(0), bn = new Array(nb).fill(0);
  for (let i = 0; i < n; i++) {
    const k = Math.floor(((i * 1000) / rec.hz + 25) / 50);
    bx[k] += rec.x[i]; by[k] += rec.y[i]; bz[k] += rec.z[i]; bn[k]++;
  }
  const bins = bx.map((_, k) => (bn[k] ? [bx[k] / bn[k], by[k] / bn[k], bz[k] / bn[k]] : [NaN, NaN, NaN]));
  const cands: FallCandidateTrace[] = [];
  detectFallsInRecording(rec, DEFAULT_FALL_SETTINGS, { model: FALL_MODEL, trace: (c) => cands.push(c) });
  return { key: r.key, activity: r.activity, user: r.user, older: r.older, label: r.label, hz: rec.hz, bins, cands };
});
writeFileSync(`/tmp/fv/dump-${variant}.json`, JSON.stringify(out));
