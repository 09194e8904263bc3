/**
 * Fall detector evaluation on WEDA-FALL (`npm run eval:falls`; docs/detection.md).
 *
 *   node --import tsx eval/eval-falls.ts [--dataset DIR] [--cache DIR]
 *
 * 1. Every recording is converted to the `t,x,y,z` g CSV (cache dir) and parsed by the same code
 *    as `vigil detect-falls`, then cut into 5-s bursts and fed to the streaming detector.
 * 2. Held-out: leave-one-participant-out over the 14 participants with falls (U01–U14). In each
 *    fold the model (stillness threshold, score weights, score offset) is fitted and chosen on
 *    the 13 training participants only, then the held-out participant's recordings are scored
 *    by the streaming detector. The older participants' ADL (U21–U31) are never used for
 *    fitting: they are scored with the model fitted on all of U01–U14.
 * 3. Frozen: the constants in src/detectors/fall/fall-detector.ts (FALL_MODEL), scored on
 *    everything; the model fitted on all training participants is printed next to them.
 * 4. Rate independence: both again on the recordings resampled to 20 Hz (box-filtered, and
 *    point-sampled without a filter, half a bin off the detector's grid) and 100 Hz (linear and
 *    Catmull–Rom interpolation). Fitting only ever sees the native recordings.
 *
 * A fall recording counts as detected when a fall is decided with its impact within 2 s of the
 * labelled range; an ADL recording counts as a false alarm when any fall is decided in it.
 */
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { cpus } from 'node:os';
import { detectFallsInRecording, parseAccCsv, type AccRecording } from '../src/detectors/fall/fall-csv.js';
import { DEFAULT_FALL_SETTINGS, FALL_MODEL, type FallCandidateTrace, type FallDecision, type FallModel } from '../src/detectors/fall/fall-detector.js';
import { loadWeda, resampleCsv, type ResampleMethod, type WedaRecording } from './weda.js';
import { wedaFallDir } from '../src/testing/datasets.js';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const { values: opt } = parseArgs({
  options: {
    dataset: { type: 'string', default: wedaFallDir() ?? resolve(repo, '../shared/datasets/weda-fall') },
    cache: { type: 'string', default: resolve(repo, '.cache/weda-fall') },
  },
});

/** A detection within 2 s of the labelled range counts (the brief: "within a couple of seconds"). */
const MATCH_TOLERANCE_MS = 2000;
/** Grid searched in each fold (few parameters, physically meaningful): stillness sd threshold (g) and score offset. */
const STILL_SD_GRID = [0.06, 0.1, 0.14];
const OFFSET_GRID = [-1, -0.5, 0, 0.5, 1];
/** Logistic regression: class-balanced, L2 on standardized features, plain gradient descent. */
const L2 = 1e-2;
const ITERATIONS = 2000;
const LEARNING_RATE = 0.5;

type Variant = 'native' | '20 Hz box' | '20 Hz point' | '100 Hz linear' | '100 Hz cubic';
const VARIANTS: Variant[] = ['native', '20 Hz box', '20 Hz point', '100 Hz linear', '100 Hz cubic'];
/** How each variant is made from the native recording: rate, method, phase (see resampleCsv). */
const RESAMPLING: Record<Exclude<Variant, 'native'>, [number, ResampleMethod, number]> = {
  '20 Hz box': [20, 'box', 0.5],
  '20 Hz point': [20, 'linear', 0.5],
  '100 Hz linear': [100, 'linear', 0],
  '100 Hz cubic': [100, 'cubic', 0],
};

const t0 = Date.now();
const all = await loadWeda(opt.dataset as string, opt.cache as string);
const training = all.filter((r) => !r.older);
const users = [...new Set(training.map((r) => r.user))].sort();
const log = (s = '') => process.stdout.write(s + '\n');

log(`WEDA-FALL: ${all.length} recordings (${all.filter((r) => r.label).length} falls, ${all.filter((r) => !r.label && !r.older).length} ADL of U01–U14, ${all.filter((r) => r.older).length} ADL of older U21–U31)`);
const rates = all.map((r) => r.rec.hz);
log(`estimated rates (rows / duration): ${Math.min(...rates).toFixed(1)}–${Math.max(...rates).toFixed(1)} Hz (falls were recorded at ~40 Hz except U14, ADL at ~50 Hz)`);
log(`machine: ${cpus()[0]?.model ?? 'unknown'} × ${cpus().length}, Node ${process.version}`);

const variantCache = new Map<Variant, AccRecording[]>();
function recordingsAt(v: Variant): AccRecording[] {
  let rs = variantCache.get(v);
  if (!rs) {
    rs = all.map((r) => {
      if (v === 'native') return r.rec;
      const [hz, method, phase] = RESAMPLING[v];
      return parseAccCsv(resampleCsv(r.rec, hz, method, phase), `${r.key}@${v}`);
    });
    variantCache.set(v, rs);
  }
  return rs;
}

// ---------------------------------------------------------------------------------------------
// Candidate evidence (trace mode) and the logistic fit.

interface Cand {
  rec: number;
  impactTs: number;
  /** 1 fall (impact within the labelled range), 0 ADL; fall-recording candidates outside the range are not used. */
  y: 0 | 1;
  f: number[];
}

const features = (c: FallCandidateTrace): number[] => [Math.log2(c.peakG), c.preActivityG, c.orientationChangeDeg / 90, Math.min(c.stillnessMs, 3000) / 1000];

function matches(r: WedaRecording, impactTs: number): boolean {
  return r.label !== null && impactTs >= r.label.start * 1000 - MATCH_TOLERANCE_MS && impactTs <= r.label.end * 1000 + MATCH_TOLERANCE_MS;
}

function traceCandidates(stillSdG: number): Cand[] {
  const out: Cand[] = [];
  const recs = recordingsAt('native');
  for (let i = 0; i < all.length; i++) {
    const r = all[i];
    detectFallsInRecording(recs[i], DEFAULT_FALL_SETTINGS, {
      model: { ...FALL_MODEL, stillSdG },
      trace: (c) => {
        if (c.stillnessMs <= 0) return; // never still: can never be a fall, carries no evidence
        if (r.label && !matches(r, c.impactTs)) return;
        out.push({ rec: i, impactTs: c.impactTs, y: r.label ? 1 : 0, f: features(c) });
      },
    });
  }
  return out;
}

function fit(cands: Cand[], stillSdG: number): FallModel {
  const d = 4;
  const mu = new Array(d).fill(0), sd = new Array(d).fill(0);
  for (const c of cands) for (let j = 0; j < d; j++) mu[j] += c.f[j] / cands.length;
  for (const c of cands) for (let j = 0; j < d; j++) sd[j] += (c.f[j] - mu[j]) ** 2 / cands.length;
  for (let j = 0; j < d; j++) sd[j] = Math.sqrt(sd[j]) || 1;
  const pos = cands.filter((c) => c.y === 1).length;
  const wPos = 0.5 / (pos / cands.length), wNeg = 0.5 / (1 - pos / cands.length);
  const w = new Array(d + 1).fill(0);
  const xs = cands.map((c) => c.f.map((v, j) => (v - mu[j]) / sd[j]));
  for (let it = 0; it < ITERATIONS; it++) {
    const g = new Array(d + 1).fill(0);
    for (let i = 0; i < cands.length; i++) {
      let s = w[d];
      for (let j = 0; j < d; j++) s += w[j] * xs[i][j];
      const p = 1 / (1 + Math.exp(-s));
      const e = (p - cands[i].y) * (cands[i].y ? wPos : wNeg);
      for (let j = 0; j < d; j++) g[j] += e * xs[i][j];
      g[d] += e;
    }
    for (let j = 0; j < d; j++) w[j] -= LEARNING_RATE * (g[j] / cands.length + L2 * w[j]);
    w[d] -= (LEARNING_RATE * g[d]) / cands.length;
  }
  // Back to raw units.
  const raw = w.slice(0, d).map((v, j) => v / sd[j]);
  const bias = w[d] - raw.reduce((s, v, j) => s + v * mu[j], 0);
  return { stillSdG, wPeak: raw[0], wPreActivity: raw[1], wOrientation: raw[2], wStillness: raw[3], bias };
}

const scoreOf = (m: FallModel, f: number[]) => m.wPeak * f[0] + m.wPreActivity * f[1] + m.wOrientation * f[2] + m.wStillness * f[3] + m.bias;

/** Youden index (sensitivity + specificity − 1) on the given recordings, from traced evidence. */
function youden(m: FallModel, cands: Cand[], recIdx: Set<number>): number {
  const hit = new Set<number>();
  for (const c of cands) if (recIdx.has(c.rec) && scoreOf(m, c.f) >= 0) hit.add(c.rec);
  let falls = 0, tp = 0, adl = 0, fp = 0;
  for (const i of recIdx) {
    if (all[i].label) {
      falls++;
      if (hit.has(i)) tp++;
    } else {
      adl++;
      if (hit.has(i)) fp++;
    }
  }
  return tp / falls - fp / adl;
}

const traces = new Map<number, Cand[]>(STILL_SD_GRID.map((s) => [s, traceCandidates(s)]));

/** Fits and chooses (stillness threshold, offset) on the training recordings. */
function choose(trainRecs: Set<number>): { model: FallModel; offset: number; trainYouden: number } {
  let best: { model: FallModel; offset: number; trainYouden: number } | null = null;
  for (const s of STILL_SD_GRID) {
    const cands = traces.get(s)!.filter((c) => trainRecs.has(c.rec));
    const base = fit(cands, s);
    for (const off of OFFSET_GRID) {
      const model = { ...base, bias: base.bias + off };
      const j = youden(model, cands, trainRecs);
      if (!best || j > best.trainYouden + 1e-9) best = { model, offset: off, trainYouden: j };
    }
  }
  return best!;
}

const idx = (pred: (r: WedaRecording) => boolean) => new Set(all.flatMap((r, i) => (pred(r) ? [i] : [])));
const foldModels = new Map<string, FallModel>();
log('');
log('Leave-one-participant-out (fitted and chosen on the other 13 participants):');
log(pad(['held out', 'still sd', 'wPeak', 'wPre', 'wOri', 'wStill', 'bias', 'offset', 'train Youden'], [12, 9, 7, 7, 7, 7, 7, 7, 12]));
for (const u of users) {
  const { model, offset, trainYouden } = choose(idx((r) => !r.older && r.user !== u));
  foldModels.set(u, model);
  log(pad([u, model.stillSdG, model.wPeak, model.wPreActivity, model.wOrientation, model.wStillness, model.bias, offset, trainYouden].map(fmt), [12, 9, 7, 7, 7, 7, 7, 7, 12]));
}
const finalChoice = choose(idx((r) => !r.older));
const finalModel = finalChoice.model;
log(pad(['all U01–U14', ...[finalModel.stillSdG, finalModel.wPeak, finalModel.wPreActivity, finalModel.wOrientation, finalModel.wStillness, finalModel.bias, finalChoice.offset, finalChoice.trainYouden].map(fmt)], [12, 9, 7, 7, 7, 7, 7, 7, 12]));
log(`frozen FALL_MODEL in the code: ${JSON.stringify(FALL_MODEL)}`);
const rounded = roundModel(finalModel);
if (JSON.stringify(rounded) !== JSON.stringify(FALL_MODEL)) log(`  NOTE: differs from the model fitted on all training participants, rounded: ${JSON.stringify(rounded)}`);

// Evidence of the candidates that reached stillness (native rate, the chosen stillness threshold).
{
  const cands = traces.get(finalModel.stillSdG)!;
  const recs = recordingsAt('native');
  /** Free-fall dip: min |a| of the 50-ms bins in the second before the impact, from the recording itself. */
  const dip = (c: Cand) => {
    const r = recs[c.rec];
    const per = Math.max(1, Math.round(r.hz / 20));
    const end = Math.round((c.impactTs / 1000) * r.hz) - Math.floor(per / 2);
    let min = Infinity;
    for (let i = Math.max(0, end - Math.round(r.hz)); i + per <= end; i += per) {
      let x = 0, y = 0, z = 0;
      for (let j = i; j < i + per; j++) {
        x += r.x[j];
        y += r.y[j];
        z += r.z[j];
      }
      min = Math.min(min, Math.hypot(x, y, z) / per);
    }
    return min;
  };
  const rows: [string, (c: Cand) => number][] = [
    ['peak |a| (g)', (c) => 2 ** c.f[0]],
    ['pre-impact activity (g)', (c) => c.f[1]],
    ['orientation change (°)', (c) => c.f[2] * 90],
    ['stillness (s, ≤ 3)', (c) => c.f[3]],
    ['free-fall dip, min |a| (g; not used)', dip],
  ];
  log('');
  log(`Evidence of candidates that reached stillness (native rate, still sd ${finalModel.stillSdG} g), p10 / p50 / p90:`);
  log(pad(['', `falls (n=${cands.filter((c) => c.y).length})`, `ADL U01–U14 (n=${cands.filter((c) => !c.y && !all[c.rec].older).length})`, `ADL older (n=${cands.filter((c) => all[c.rec].older).length})`], [38, 22, 22, 22]));
  for (const [name, f] of rows) {
    const q = (sel: (c: Cand) => boolean) => {
      const v = cands.filter(sel).map(f).sort((a, b) => a - b);
      const at = (p: number) => v[Math.min(v.length - 1, Math.floor(p * v.length))];
      return v.length ? `${fmt2(at(0.1))} / ${fmt2(at(0.5))} / ${fmt2(at(0.9))}` : '-';
    };
    log(pad([name, q((c) => c.y === 1), q((c) => c.y === 0 && !all[c.rec].older), q((c) => all[c.rec].older)], [38, 22, 22, 22]));
  }
}

// ---------------------------------------------------------------------------------------------
// Scoring.

interface Result {
  decisions: FallDecision[][];
  ms: number;
}

function run(v: Variant, modelFor: (r: WedaRecording) => FallModel): Result {
  const recs = recordingsAt(v);
  const start = performance.now();
  const decisions = all.map((r, i) => detectFallsInRecording(recs[i], DEFAULT_FALL_SETTINGS, { model: modelFor(r) }));
  return { decisions, ms: performance.now() - start };
}

interface Metrics {
  sens: string;
  specYoung: string;
  specOlder: string;
  specAll: string;
  faPerHour: string;
  /** Fall recordings in which a detected fall was later downgraded by "recovered". */
  recovered: number;
  latImpact: number[];
  latLabelEnd: number[];
  byActivity: Map<string, { n: number; det: number }>;
}

function metrics(res: Result): Metrics {
  let falls = 0, tp = 0, young = 0, fpYoung = 0, older = 0, fpOlder = 0, adlMs = 0, adlAlarms = 0, recovered = 0;
  const latImpact: number[] = [], latLabelEnd: number[] = [];
  const byActivity = new Map<string, { n: number; det: number }>();
  all.forEach((r, i) => {
    const fallsDecided = res.decisions[i].filter((d): d is Extract<FallDecision, { kind: 'fall' }> => d.kind === 'fall');
    const a = byActivity.get(r.activity) ?? { n: 0, det: 0 };
    a.n++;
    byActivity.set(r.activity, a);
    if (r.label) {
      falls++;
      const hit = fallsDecided.find((d) => matches(r, d.impactTs));
      if (hit) {
        tp++;
        if (res.decisions[i].some((d) => d.kind === 'recovered' && d.impactTs === hit.impactTs)) recovered++;
        a.det++;
        latImpact.push(hit.decidedTs - hit.impactTs);
        latLabelEnd.push(hit.decidedTs - r.label.end * 1000);
      }
    } else {
      adlMs += ((r.rec.x.length - 1) / r.rec.hz) * 1000;
      adlAlarms += fallsDecided.length;
      if (fallsDecided.length) a.det++;
      if (r.older) {
        older++;
        if (fallsDecided.length) fpOlder++;
      } else {
        young++;
        if (fallsDecided.length) fpYoung++;
      }
    }
  });
  return {
    sens: ratio(tp, falls),
    specYoung: ratio(young - fpYoung, young),
    specOlder: ratio(older - fpOlder, older),
    specAll: ratio(young + older - fpYoung - fpOlder, young + older),
    faPerHour: `${adlAlarms} in ${(adlMs / 3_600_000).toFixed(2)} h = ${(adlAlarms / (adlMs / 3_600_000)).toFixed(1)}/h`,
    recovered,
    latImpact,
    latLabelEnd,
    byActivity,
  };
}

const heldOut = new Map<Variant, Metrics>();
const frozen = new Map<Variant, Metrics>();
let frozenMs = 0, frozenSamples = 0;
for (const v of VARIANTS) {
  heldOut.set(v, metrics(run(v, (r) => (r.older ? finalModel : foldModels.get(r.user)!))));
  const fr = run(v, () => FALL_MODEL);
  frozen.set(v, metrics(fr));
  if (v === 'native') {
    frozenMs = fr.ms;
    frozenSamples = recordingsAt(v).reduce((s, r) => s + r.x.length, 0);
  }
}

for (const [title, table] of [
  ['Held-out (leave-one-participant-out; older participants scored by the model of all U01–U14)', heldOut],
  ['Frozen detector (FALL_MODEL constants in the code)', frozen],
] as const) {
  log('');
  log(title + ':');
  log(pad(['rate', 'sensitivity', 'specificity U01–U14', 'specificity older', 'specificity all ADL', 'false alarms in ADL'], [14, 18, 20, 18, 20, 26]));
  for (const v of VARIANTS) {
    const m = table.get(v)!;
    log(pad([v, m.sens, m.specYoung, m.specOlder, m.specAll, m.faPerHour], [14, 18, 20, 18, 20, 26]));
  }
}

for (const [title, table] of [
  ['held-out', heldOut],
  ['frozen', frozen],
] as const) {
  log('');
  log(`Detected / recordings by activity (${title}; F* = falls detected, D* = false alarms):`);
  const acts = [...table.get('native')!.byActivity.keys()];
  log(pad(['code', ...VARIANTS], [6, 12, 12, 12, 14, 14]));
  for (const a of acts) {
    log(pad([a, ...VARIANTS.map((v) => {
      const c = table.get(v)!.byActivity.get(a)!;
      return `${c.det}/${c.n}`;
    })], [6, 12, 12, 12, 14, 14]));
  }
}

log('');
log('Latency of detected falls, decidedTs − impact and decidedTs − end of the labelled range (s):');
log(pad(['run', 'after impact p50/p90/max', 'after labelled end p50/p90/max'], [25, 28, 32]));
for (const [name, table] of [
  ['held-out', heldOut],
  ['frozen', frozen],
] as const) {
  for (const v of VARIANTS) {
    const m = table.get(v)!;
    log(pad([`${name} ${v}`, pct(m.latImpact), pct(m.latLabelEnd)], [25, 28, 32]));
  }
}
log('');
log(`"recovered" (walking-like movement within the I'm-OK window) after a detected fall, frozen, native: ${frozen.get('native')!.recovered} of ${frozen.get('native')!.latImpact.length} fall recordings (they end a few seconds after the fall).`);
log('');
log(`frozen detector speed: ${frozenSamples} samples in ${frozenMs.toFixed(0)} ms (${(frozenSamples / frozenMs / 1000).toFixed(1)} M samples/s, CSV parsing excluded); eval total ${((Date.now() - t0) / 1000).toFixed(1)} s`);

// ---------------------------------------------------------------------------------------------

function ratio(a: number, b: number): string {
  return `${((100 * a) / b).toFixed(1)} % (${a}/${b})`;
}

function pct(xs: number[]): string {
  if (xs.length === 0) return '-';
  const s = [...xs].sort((a, b) => a - b);
  const q = (p: number) => s[Math.min(s.length - 1, Math.ceil(p * s.length) - 1)] / 1000;
  return `${q(0.5).toFixed(2)} / ${q(0.9).toFixed(2)} / ${(s[s.length - 1] / 1000).toFixed(2)}`;
}

function fmt2(v: number): string {
  return Math.abs(v) >= 10 ? v.toFixed(0) : v.toFixed(2);
}

function fmt(v: number | string): string {
  return typeof v === 'number' ? (Number.isInteger(v) ? String(v) : v.toFixed(2)) : v;
}

function pad(cells: (string | number)[], widths: number[]): string {
  return cells.map((c, i) => String(c).padEnd(widths[i] ?? 10)).join(' ').trimEnd();
}

function roundModel(m: FallModel): FallModel {
  const r = (v: number) => Math.round(v * 100) / 100;
  return { stillSdG: m.stillSdG, wPeak: r(m.wPeak), wPreActivity: r(m.wPreActivity), wOrientation: r(m.wOrientation), wStillness: r(m.wStillness), bias: r(m.bias) };
}
