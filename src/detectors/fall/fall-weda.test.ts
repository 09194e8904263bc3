/**
 * A handful of real WEDA-FALL recordings (Marques & Moreno, Sensors 2023, 23(3), 1146) through
 * the same path as `vigil detect-falls`. These are regression checks on files the frozen model
 * was fitted on, not an evaluation: `npm run eval:falls` is (docs/detection.md).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { wedaFallDir } from '../../testing/datasets.js';
import { detectFallsInRecording, parseAccCsv, wedaToGCsv } from './fall-csv.js';

const DATASET = wedaFallDir() ?? '';

const load = (key: string) => parseAccCsv(wedaToGCsv(readFileSync(join(DATASET, '50Hz', `${key}_accel.csv`), 'utf8')), key);

function labelOf(key: string): [number, number] {
  const line = readFileSync(join(DATASET, 'fall_timestamps.csv'), 'utf8').split('\n').find((l) => l.replace(/^\uFEFF/, '').startsWith(key + ','));
  if (!line) throw new Error(`no label for ${key}`);
  const [, s, e] = line.trim().split(',');
  return [Number(s), Number(e)];
}

const fallsIn = (key: string) => detectFallsInRecording(load(key)).filter((d) => d.kind === 'fall');

describe.skipIf(!DATASET)('WEDA-FALL recordings', () => {
  it.each([
    ['F01/U01_R01', 'forward slip while walking'],
    ['F03/U01_R01', 'backward slip while walking'],
    ['F06/U01_R01', 'fainting forward from a chair'],
  ])('detects the fall in %s (%s) within the labelled range', (key) => {
    const [start, end] = labelOf(key);
    const falls = fallsIn(key);
    expect(falls.length).toBeGreaterThanOrEqual(1);
    expect(falls.some((f) => f.impactTs >= start * 1000 - 2000 && f.impactTs <= end * 1000 + 2000)).toBe(true);
    for (const f of falls) expect(f.decidedTs - f.impactTs).toBeLessThan(5000);
  });

  it.each([
    ['D02/U01_R01', 'jogging, peaks 5.5 g'],
    ['D10/U01_R01', 'clapping, peaks 5.3 g'],
    ['D09/U23_R03', 'older participant hitting a table, peaks 6.1 g'],
  ])('raises nothing on %s (%s)', (key) => {
    expect(fallsIn(key)).toEqual([]);
  });
});
