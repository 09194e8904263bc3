/**
 * Crafted wristband readings for the sleep and activity tests: a schedule of behaviours, each
 * rendered with the simulator's accelerometer shapes (src/simulator/accelerometer.ts) so the
 * tests and the simulator agree on what "asleep", "seated" and "walking" look like.
 */
import * as acc from '../../../simulator/accelerometer.js';
import { Random } from '../../../simulator/prng.js';

export type Behaviour =
  /** Lying still, turning over now and then. */
  | 'sleep'
  /** Seated, awake: forearm resting, small tremor, a hand gesture now and then (an evening of TV). */
  | 'seated'
  | 'walking'
  /** On the charger: not worn, charging, perfectly still. */
  | 'charger'
  /** Taken off and left on a table: not worn, not charging. */
  | 'table';

export interface Segment {
  /** Epoch ms, inclusive. */
  from: number;
  /** Epoch ms, exclusive. */
  to: number;
  what: Behaviour;
}

export interface TestReading {
  ts: number;
  acc: { hz: number; samples: [number, number, number][] };
  worn: boolean;
  charging: boolean;
  hr?: number;
  steps: number;
}

export interface SignalOptions {
  hz?: number;
  seed?: number;
  intervalMs?: number;
  /** Time between turns in bed. Default 60 min. */
  turnEveryMs?: number;
  /** Turns at regular times (default: every turnEveryMs into the segment, reproducible) or at random (a Poisson process of that mean). */
  turns?: 'regular' | 'random';
}

/** Readings every intervalMs (default 5 s) through the segments, in order; gaps between segments stay silent. */
export function readingsFor(segments: readonly Segment[], o: SignalOptions = {}): TestReading[] {
  const hz = o.hz ?? 20;
  const interval = o.intervalMs ?? 5000;
  const turnEvery = o.turnEveryMs ?? 60 * 60_000;
  const r = new Random(o.seed ?? 1);
  const n = Math.round((hz * interval) / 1000);
  const lying = acc.POSTURES.lying;
  let posture = 0;
  let i = 0;
  const out: TestReading[] = [];
  for (const seg of segments) {
    for (let ts = seg.from; ts < seg.to; ts += interval, i++) {
      let samples: acc.Vec3[];
      let worn = true;
      let charging = false;
      let hr: number | undefined;
      let steps = 0;
      switch (seg.what) {
        case 'sleep': {
          hr = 56 + r.int(0, 3);
          const turn =
            o.turns === 'random'
              ? r.chance(1 - Math.exp(-interval / turnEvery))
              : ts - seg.from >= turnEvery / 2 && (ts - seg.from - turnEvery / 2) % turnEvery < interval;
          if (turn) {
            const from = lying[posture];
            posture = (posture + r.int(1, lying.length - 1)) % lying.length;
            samples = acc.turnOver(r, n, hz, from, lying[posture]);
          } else {
            samples = acc.still(r, n, lying[posture], 0.004);
          }
          break;
        }
        case 'seated':
          hr = 68 + r.int(0, 5);
          samples = acc.seated(r, n, hz, acc.POSTURES.forearmOnTable);
          break;
        case 'walking':
          hr = 85 + r.int(0, 5);
          samples = acc.walking(r, n, hz, 1.7);
          steps = 8 + (i % 2); // 1.7 steps/s × 5 s
          break;
        case 'charger':
          worn = false;
          charging = true;
          samples = acc.still(r, n, acc.POSTURES.charger, 0.002);
          break;
        case 'table':
          worn = false;
          samples = acc.still(r, n, acc.POSTURES.charger, 0.002);
          break;
      }
      out.push({ ts, acc: { hz, samples }, worn, charging, hr, steps });
    }
  }
  return out;
}

/** Epoch ms of a local wall-clock time written with its offset, e.g. at('2026-06-10T23:00:00+02:00'). */
export const at = (iso: string): number => {
  const t = Date.parse(iso);
  if (Number.isNaN(t)) throw new Error(`bad time ${iso}`);
  return t;
};

export const MIN = 60_000;
export const HOUR = 3_600_000;
