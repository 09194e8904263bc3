import { describe, expect, it } from 'vitest';
import { Random } from '../../simulator/prng.js';
import { fall as simulatedFall, POSTURES, still, walking as simulatedWalking } from '../../simulator/accelerometer.js';
import { DEFAULT_FALL_SETTINGS, feedFall, newFallState, settleFall, type FallDecision, type FallState } from './fall-detector.js';

type V3 = [number, number, number];
/** A continuous wrist signal: acceleration (g) at time t (s). */
type Signal = (t: number) => V3;

const unit = (v: V3): V3 => {
  const n = Math.hypot(...v);
  return [v[0] / n, v[1] / n, v[2] / n];
};
const scale = (v: V3, k: number): V3 => [v[0] * k, v[1] * k, v[2] * k];
const add = (a: V3, b: V3): V3 => [a[0] + b[0], a[1] + b[1], a[2] + b[2]];

/** Arm hanging while standing, and the wrist lying on the floor afterwards (~110° apart). */
const STANDING = unit([-0.95, 0.15, 0.25]);
const LYING = unit([0.15, -0.25, -0.95]);
const LAP = unit([-0.45, 0.1, 0.89]);

/** Deterministic sensor noise: a hash of the time, so every rate sees the same noise process. */
function noise(t: number, sd: number, axis: number): number {
  const s = Math.sin(t * 12_989.8 + axis * 78.233) * 43_758.5453;
  return (s - Math.floor(s) - 0.5) * sd * 3.46; // uniform with the given sd
}
const noisy = (g: V3, t: number, sd: number): V3 => [g[0] + noise(t, sd, 0), g[1] + noise(t, sd, 1), g[2] + noise(t, sd, 2)];

/**
 * A fall with its impact at `at` s: calm standing, 0.4 s of free fall (|a| ≈ 0.3 g), a 150-ms
 * half-sine impact peaking at `peakG`, 0.3 s of damped rebound, then lying still.
 */
function fallSignal(at: number, peakG = 3, before: Signal = (t) => noisy(STANDING, t, 0.02), after = LYING): Signal {
  const dir = unit(add(after, scale(STANDING, -1)));
  return (t) => {
    const d = t - at;
    if (d < -0.475) return before(t);
    if (d < -0.075) return noisy(scale(STANDING, 0.3), t, 0.03);
    if (d < 0.075) {
      const m = 0.3 + (peakG - 0.3) * Math.sin((Math.PI * (d + 0.075)) / 0.15);
      return scale(dir, m);
    }
    if (d < 0.375) return noisy(scale(after, 1 + 0.5 * Math.exp(-(d - 0.075) / 0.1) * Math.cos(2 * Math.PI * 6 * d)), t, 0.05);
    return noisy(after, t, 0.005);
  };
}

/** Walking at ~1.8 steps/s: a vertical bounce at the step frequency and an arm swing at half. */
const walkingSignal: Signal = (t) =>
  noisy(add(STANDING, [0.25 * Math.sin(2 * Math.PI * 1.8 * t), 0.2 * Math.sin(Math.PI * 1.8 * t), 0.06 * Math.sin(Math.PI * 1.8 * t)]), t, 0.03);

/** Samples `signal` at `hz` over [from, to) s and feeds it in 5-s bursts (as the pipeline does). */
function feedSignal(st: FallState, signal: Signal, hz: number, from: number, to: number, roundTrip = false): { st: FallState; decisions: FallDecision[] } {
  const decisions: FallDecision[] = [];
  const n = Math.round((to - from) * hz);
  const per = 5 * hz;
  for (let i0 = 0; i0 < n; i0 += per) {
    const samples: V3[] = [];
    for (let i = i0; i < Math.min(n, i0 + per); i++) samples.push(signal(from + i / hz));
    decisions.push(...feedFall(st, { hz, samples }, (from + i0 / hz) * 1000, DEFAULT_FALL_SETTINGS));
    if (roundTrip) st = JSON.parse(JSON.stringify(st)) as FallState;
  }
  return { st, decisions };
}

function run(signal: Signal, hz: number, seconds: number, opts: { roundTrip?: boolean; from?: number } = {}): FallDecision[] {
  const { st, decisions } = feedSignal(newFallState(), signal, hz, opts.from ?? 0, seconds, opts.roundTrip);
  return [...decisions, ...settleFall(st, Infinity, DEFAULT_FALL_SETTINGS)];
}

const falls = (ds: FallDecision[]) => ds.filter((d): d is Extract<FallDecision, { kind: 'fall' }> => d.kind === 'fall');

describe('fall detector', () => {
  describe.each([20, 50, 100])('at %i Hz', (hz) => {
    it('detects a fall (dip, 3 g impact, lying still in a new orientation) within a few seconds', () => {
      const ds = falls(run(fallSignal(12), hz, 30));
      expect(ds).toHaveLength(1);
      expect(Math.abs(ds[0].impactTs - 12_000)).toBeLessThanOrEqual(50);
      expect(ds[0].decidedTs - ds[0].impactTs).toBeLessThan(3000);
      expect(ds[0].peakG).toBeGreaterThan(2.5);
      expect(ds[0].orientationChangeDeg).toBeGreaterThan(90);
      expect(ds[0].confidence).toBeGreaterThan(0.5);
    });

    it('detects a fall that straddles two 5-s bursts', () => {
      // Impact 0.1 s before the burst boundary at 15 s: the free fall in one burst, the lying in the next.
      const ds = falls(run(fallSignal(14.9), hz, 30));
      expect(ds).toHaveLength(1);
      expect(Math.abs(ds[0].impactTs - 14_900)).toBeLessThanOrEqual(50);
    });

    it('decides a fall when the stream stops 2 s after the impact', () => {
      const ds = falls(run(fallSignal(12), hz, 14));
      expect(ds).toHaveLength(1);
      expect(ds[0].decidedTs).toBeLessThanOrEqual(14_000);
    });

    it('does not take clapping (4–5 g spikes, no stillness in between) for a fall', () => {
      // 8 s of clapping at ~2.2 claps/s (hands swinging in front of the chest, a 40-ms 4.5-g
      // pulse at each clap), then walking off.
      const clap: Signal = (t) => {
        if (t < 10) return noisy(STANDING, t, 0.02);
        if (t >= 18) return walkingSignal(t);
        const ph = ((t - 10) % 0.45) / 0.45;
        const base = add(LAP, [0.5 * Math.sin(2 * Math.PI * ph), 0.4 * Math.cos(2 * Math.PI * ph), 0]);
        const pulse = ph * 0.45 < 0.04 ? Math.sin((Math.PI * ph * 0.45) / 0.04) : 0;
        return pulse > 0 ? scale(unit(base), 1 + 3.5 * pulse) : noisy(base, t, 0.1);
      };
      expect(falls(run(clap, hz, 30))).toEqual([]);
    });

    it('does not take sitting down hard (2.6 g, forearm to the lap) for a fall', () => {
      const sit = fallSignal(12, 2.6, (t) => noisy(STANDING, t, 0.02), unit([-0.6, 0.5, 0.62])); // ~37° from standing
      expect(falls(run(sit, hz, 30))).toEqual([]);
    });

    it('does not take walking for a fall', () => {
      expect(falls(run(walkingSignal, hz, 60))).toEqual([]);
    });
  });

  it('stays silent on the same fall without stillness (the person gets straight back up and walks)', () => {
    const base = fallSignal(12);
    const signal: Signal = (t) => (t < 12.4 ? base(t) : walkingSignal(t));
    expect(falls(run(signal, 50, 30))).toEqual([]);
  });

  it('decides a pending fall only at settle when the data ends right after the impact', () => {
    // Data ends 0.66 s after the impact: the last 50-ms bin of the first stillness window is
    // still open when feeding stops, so only settleFall can decide.
    const st = newFallState();
    const signal: Signal = (t) => (t < 12.075 ? fallSignal(12)(t) : noisy(LYING, t, 0.005)); // no rebound
    const { st: s2, decisions } = feedSignal(st, signal, 50, 0, 12.66);
    expect(falls(decisions)).toEqual([]);
    const settled = settleFall(s2, 17_000, DEFAULT_FALL_SETTINGS);
    expect(falls(settled)).toHaveLength(1);
    expect(falls(settled)[0].decidedTs).toBeLessThanOrEqual(12_700); // on the signal up to its end
    expect(settleFall(s2, Infinity, DEFAULT_FALL_SETTINGS)).toEqual([]);
  });

  it('settles a pending fall at a discontinuity (the next burst comes 10 s later)', () => {
    const signal: Signal = (t) => (t < 12.075 ? fallSignal(12)(t) : noisy(LYING, t, 0.005));
    const { st, decisions } = feedSignal(newFallState(), signal, 50, 0, 12.66);
    expect(falls(decisions)).toEqual([]);
    const later = feedFall(st, { hz: 50, samples: still(new Random(1), 250, POSTURES.fallen, 0.005) }, 22_660, DEFAULT_FALL_SETTINGS);
    expect(falls(later)).toHaveLength(1);
    expect(falls(later)[0].decidedTs).toBeLessThanOrEqual(12_700);
  });

  it('ignores overlapping bursts (each resending the last 2.5 s) and late duplicates', () => {
    const signal = fallSignal(12);
    const once = run(signal, 50, 30);
    const st = newFallState();
    const decisions: FallDecision[] = [];
    for (let b = 0; b < 6; b++) {
      const from = Math.max(0, b * 5 - 2.5);
      const samples: V3[] = [];
      for (let t = from; t < b * 5 + 5 - 1e-9; t += 1 / 50) samples.push(signal(t));
      decisions.push(...feedFall(st, { hz: 50, samples }, from * 1000, DEFAULT_FALL_SETTINGS));
      decisions.push(...feedFall(st, { hz: 50, samples }, from * 1000, DEFAULT_FALL_SETTINGS)); // duplicate
    }
    decisions.push(...settleFall(st, Infinity, DEFAULT_FALL_SETTINGS));
    expect(decisions).toEqual(once);
  });

  it('gives the same decisions whatever the burst lengths (contiguous bursts of 0.3–7 s)', () => {
    const signal = fallSignal(12);
    const once = run(signal, 50, 30);
    const st = newFallState();
    const decisions: FallDecision[] = [];
    const lengths = [0.3, 7, 1.1, 4.4, 2, 6.2, 0.5, 5, 3.5];
    for (let i = 0, t = 0; t < 30; i++) {
      const len = Math.min(lengths[i % lengths.length], 30 - t);
      const samples: V3[] = [];
      for (let j = 0; j < Math.round(len * 50); j++) samples.push(signal(t + j / 50));
      decisions.push(...feedFall(st, { hz: 50, samples }, t * 1000, DEFAULT_FALL_SETTINGS));
      t += samples.length / 50;
    }
    decisions.push(...settleFall(st, Infinity, DEFAULT_FALL_SETTINGS));
    expect(decisions).toEqual(once);
  });

  it('keeps going when settled mid-stream and fed the rest of the signal', () => {
    const signal = fallSignal(12);
    const { st, decisions } = feedSignal(newFallState(), signal, 50, 0, 10);
    decisions.push(...settleFall(st, 10_010, DEFAULT_FALL_SETTINGS)); // a reading without acc, same time
    decisions.push(...feedSignal(st, signal, 50, 10, 30).decisions, ...settleFall(st, Infinity, DEFAULT_FALL_SETTINGS));
    expect(falls(decisions)).toHaveLength(1);
    expect(Math.abs(falls(decisions)[0].impactTs - 12_000)).toBeLessThanOrEqual(50);
  });

  describe('"I\'m OK" window', () => {
    const fallThenWalk = (walkFrom: number): Signal => {
      const f = fallSignal(12);
      return (t) => (t < walkFrom ? f(t) : walkingSignal(t));
    };

    it('reports "recovered" when the person walks within the window', () => {
      const ds = run(fallThenWalk(25), 50, 45);
      const fall = falls(ds)[0];
      expect(fall).toBeDefined();
      const rec = ds.find((d) => d.kind === 'recovered');
      expect(rec).toEqual({ kind: 'recovered', impactTs: fall.impactTs, at: expect.any(Number) });
      expect((rec as { at: number }).at).toBeGreaterThan(25_000 + 3_000);
      expect((rec as { at: number }).at).toBeLessThan(25_000 + 7_000);
    });

    it('does not when the person stays down, or walks only after the window', () => {
      expect(run(fallSignal(12), 50, 60).filter((d) => d.kind === 'recovered')).toEqual([]);
      const ds = run(fallThenWalk(50), 50, 70); // window: decision (~13 s) + 30 s
      expect(falls(ds)).toHaveLength(1);
      expect(ds.filter((d) => d.kind === 'recovered')).toEqual([]);
    });
  });

  describe('state', () => {
    const scenario: Signal = (t) => (t < 20 ? walkingSignal(t) : t < 40 ? fallSignal(30, 3.2, walkingSignal)(t) : walkingSignal(t));

    it.each([20, 50, 100])('survives a JSON round-trip between every burst with identical decisions (%i Hz)', (hz) => {
      const plain = run(scenario, hz, 60);
      expect(falls(plain)).toHaveLength(1);
      expect(plain.some((d) => d.kind === 'recovered')).toBe(true);
      expect(run(scenario, hz, 60, { roundTrip: true })).toEqual(plain);
    });

    it('is plain JSON and stays small (< 2 KB serialized) at every step', () => {
      let st = newFallState();
      const n = 100 * 5;
      let max = 0;
      for (let b = 0; b < 12; b++) {
        const samples: V3[] = [];
        for (let i = 0; i < n; i++) samples.push(scenario(b * 5 + i / 100));
        feedFall(st, { hz: 100, samples }, b * 5000, DEFAULT_FALL_SETTINGS);
        const json = JSON.stringify(st);
        max = Math.max(max, json.length);
        expect(JSON.parse(json)).toEqual(st); // no Infinity/NaN/undefined hiding in it
        st = JSON.parse(json) as FallState;
      }
      expect(max).toBeLessThan(2048);
    });
  });

  describe('the simulator', () => {
    it.each([20, 25, 50, 100])("detects the demo's simulated fall at %i Hz", (hz) => {
      const rng = new Random(7);
      const n = 5 * hz;
      const st = newFallState();
      const out: FallDecision[] = [];
      let ts = 0;
      const burst = (samples: V3[]) => {
        out.push(...feedFall(st, { hz, samples }, ts, DEFAULT_FALL_SETTINGS));
        ts += 5000;
      };
      for (let b = 0; b < 4; b++) burst(simulatedWalking(rng, n, hz, 1.8));
      burst(simulatedFall(rng, n, hz, POSTURES.fallen));
      for (let b = 0; b < 4; b++) burst(still(rng, n, POSTURES.fallen, 0.006));
      out.push(...settleFall(st, Infinity, DEFAULT_FALL_SETTINGS));
      const ds = falls(out);
      expect(ds).toHaveLength(1);
      expect(ds[0].impactTs).toBeGreaterThan(20_000);
      expect(ds[0].impactTs).toBeLessThan(25_000);
      expect(ds[0].decidedTs - ds[0].impactTs).toBeLessThan(3000);
    });
  });
});
