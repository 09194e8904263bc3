/**
 * Movement counts from the raw wrist accelerometer: the activity measure that the sleep
 * detector (Cole–Kripke) and the daily-activity detector (sedentary minutes) share.
 *
 * Actigraphs do not store acceleration: they band-pass it, rectify it, drop what lies under a
 * dead band and add up the rest per epoch ("counts"). te Lindert & Van Someren (2013, Sleep
 * 36(5):781–789) showed that counts rebuilt this way from a MEMS accelerometer reproduce an
 * actigraph's sleep estimates once scaled to it; Brønd et al. (2017, MSSE 49(11):2351–2360)
 * did the same for ActiGraph counts. We follow that recipe with a filter suited to 20–100 Hz
 * bursts and to what a wrist does at night:
 *
 *   1. per axis, a first-order high-pass at 0.25 Hz removes gravity (and slow drift) but keeps
 *      the change of orientation of a turn in bed and the 0.5–3 Hz of gestures and gait;
 *   2. the vector magnitude of the three filtered axes, minus a 0.02 g dead band, floored at 0;
 *   3. integrated over time (g·s): a time integral, so the figure does not depend on the rate
 *      (a sum of samples would grow with it).
 *
 * The filter state carries over from one reading to the next when they are contiguous (the
 * phone sends a 5-s burst every 5 s), and restarts after a gap or a change of rate: it is
 * three inputs and three outputs, plain numbers, snapshotted with the detector state.
 */

/** High-pass corner: ActiGraph's band starts at 0.29 Hz (Brønd 2017); GGIR's HFEN high-pass is 0.2 Hz (van Hees 2013). */
export const HIGH_PASS_HZ = 0.25;
/**
 * Dead band: above the noise of a still wrist — a few mg RMS for a MEMS sensor, 4 mg in the
 * simulator (src/simulator/accelerometer.ts), 0.1 m/s² ≈ 10 mg quantization steps in the real
 * Fitbit recordings of WEDA-FALL (../shared/datasets/weda-fall) — and below the smallest
 * deliberate movement (a hand gesture is 0.15 g or more). Measured: a still wrist integrates
 * to 0.000 g·s/min with it, against 0.005–0.01 g·s/min with a 0.01 g band.
 */
export const DEAD_BAND_G = 0.02;
/** Two readings are one continuous signal when the second starts within its predecessor's window plus this slack. */
const CONTINUITY_SLACK_MS = 2000;

/** Filter memory between readings (plain numbers: it is part of the JSON-snapshotted state). */
export interface MoveFilter {
  /** ts and window length (ms) of the previous burst, and its rate. */
  t: number;
  d: number;
  hz: number;
  /** Previous input sample per axis. */
  px: number;
  py: number;
  pz: number;
  /** Previous high-pass output per axis. */
  ox: number;
  oy: number;
  oz: number;
}

export interface AccBurst {
  hz: number;
  samples: readonly (readonly number[])[];
}

/** Where a detector adds up movement: g·s of movement and seconds of usable signal. */
export interface MovementSum {
  g: number;
  c: number;
}

/**
 * Adds one burst to `into`: g += ∫ max(|hp(a)| − dead band, 0) dt (g·s), c += seconds of valid
 * samples; advances `holder.mv`. Samples that are not three finite numbers are skipped: they
 * neither count nor move the filter, and a burst without a valid sample changes nothing.
 */
export function accumulateMovement(holder: { mv: MoveFilter | null }, ts: number, acc: AccBurst, into: MovementSum): void {
  const samples = acc.samples;
  const hz = acc.hz;
  if (!Array.isArray(samples) || samples.length === 0 || !(hz >= 1 && hz <= 10_000)) return;
  const n = samples.length;
  const dt = 1 / hz;
  const rc = 1 / (2 * Math.PI * HIGH_PASS_HZ);
  const alpha = rc / (rc + dt);
  let f = holder.mv;
  const continuous = f !== null && f.hz === hz && ts >= f.t && ts - f.t <= f.d + CONTINUITY_SLACK_MS;
  let i = 0;
  let used = 0;
  if (!continuous) {
    // Restart on the first valid sample: output 0, so a restart adds no step of its own.
    while (i < n && !valid(samples[i])) i++;
    if (i === n) return;
    const s = samples[i];
    f = { t: ts, d: 0, hz, px: s[0], py: s[1], pz: s[2], ox: 0, oy: 0, oz: 0 };
    holder.mv = f;
    i++;
    used++;
  }
  const m = f as MoveFilter;
  let { px, py, pz, ox, oy, oz } = m;
  let sum = 0;
  for (; i < n; i++) {
    const s = samples[i];
    if (!valid(s)) continue;
    used++;
    const x = s[0];
    const y = s[1];
    const z = s[2];
    ox = alpha * (ox + x - px);
    oy = alpha * (oy + y - py);
    oz = alpha * (oz + z - pz);
    px = x;
    py = y;
    pz = z;
    const excess = Math.sqrt(ox * ox + oy * oy + oz * oz) - DEAD_BAND_G;
    if (excess > 0) sum += excess;
  }
  if (used === 0) return;
  m.px = px;
  m.py = py;
  m.pz = pz;
  m.ox = ox;
  m.oy = oy;
  m.oz = oz;
  m.t = ts;
  m.d = (n / hz) * 1000;
  into.g += sum * dt;
  into.c += used * dt;
}

const valid = (s: readonly number[] | undefined): s is readonly number[] =>
  Array.isArray(s) && s.length >= 3 && Number.isFinite(s[0]) && Number.isFinite(s[1]) && Number.isFinite(s[2]);
