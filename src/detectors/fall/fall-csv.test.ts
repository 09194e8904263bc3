import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Random } from '../../simulator/prng.js';
import { fall, POSTURES, still, walking } from '../../simulator/accelerometer.js';
import { detectFallsInFile, detectFallsInRecording, FallCsvError, parseAccCsv } from './fall-csv.js';

/** A watch-like CSV: 50 Hz, timestamps in bunches of 5 rows (batching), a fall at ~21.6 s. */
function fallCsv(): string {
  const rng = new Random(11);
  const hz = 50;
  const rows: number[][] = [
    ...walking(rng, 4 * 5 * hz, hz, 1.8),
    ...fall(rng, 5 * hz, hz, POSTURES.fallen),
    ...still(rng, 3 * 5 * hz, POSTURES.fallen, 0.006),
  ];
  const lines = ['t,x,y,z'];
  rows.forEach((s, i) => {
    const t = Math.floor(i / 5) * 0.1 + (i % 5) * 0.002; // 5 rows within 10 ms, every 100 ms
    lines.push(`${t.toFixed(3)},${s[0]},${s[1]},${s[2]}`);
  });
  return lines.join('\n') + '\n';
}

function parseError(text: string): FallCsvError {
  try {
    parseAccCsv(text, 'rec.csv');
  } catch (err) {
    expect(err).toBeInstanceOf(FallCsvError);
    return err as FallCsvError;
  }
  throw new Error('expected a FallCsvError');
}

describe('fall CSV front end', () => {
  it('estimates the rate from rows over duration when timestamps come in bunches, and finds the fall', () => {
    const rec = parseAccCsv(fallCsv(), 'rec.csv');
    expect(rec.hz).toBeCloseTo(50, 0);
    const falls = detectFallsInRecording(rec).filter((d) => d.kind === 'fall');
    expect(falls).toHaveLength(1);
    // fall(): impact at ~30 % of its 5-s window + 0.4 s of free fall, i.e. ~21.9 s.
    expect(falls[0].impactTs / 1000).toBeGreaterThan(21);
    expect(falls[0].impactTs / 1000).toBeLessThan(23);
  });

  it('reports one line per file: impact time in seconds from the start, peak, confidence', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'vigil-falls-'));
    const file = join(dir, 'fall.csv');
    writeFileSync(file, fallCsv());
    const report = await detectFallsInFile(file);
    expect(report).toEqual({ file, falls: [{ t: expect.any(Number), peakG: expect.any(Number), confidence: expect.any(Number) }] });
    expect(report.falls[0].t).toBeGreaterThan(21);
    expect(report.falls[0].confidence).toBeGreaterThan(0.5);
    expect(report.falls[0].confidence).toBeLessThanOrEqual(1);
  });

  it('rejects a bad header, naming the file and line 1', () => {
    const err = parseError('time,ax,ay,az\n0,0,0,1\n');
    expect(err.message).toMatch(/^rec\.csv:1: expected the header "t,x,y,z"/);
    expect(err.line).toBe(1);
  });

  it('accepts a BOM, CRLF line ends, upper case and spaces in the header', () => {
    const rec = parseAccCsv('\uFEFFT, X, Y, Z\r\n0,0,0,1\r\n0.02,0,0,1\r\n0.04,0,0,1\r\n', 'rec.csv');
    expect(rec.x.length).toBe(3);
    expect(rec.hz).toBeCloseTo(50);
  });

  it.each([
    ['a non-number', 't,x,y,z\n0,0,0,1\n0.02,0,abc,1\n', 3, /not a number/],
    ['a missing field', 't,x,y,z\n0,0,0,1\n0.02,0,1\n', 3, /expected 4 fields/],
    ['an empty field', 't,x,y,z\n0,0,0,1\n0.02,,0,1\n', 3, /not a number/],
    ['one sample only', 't,x,y,z\n0,0,0,1\n', 2, /at least 2 samples/],
    ['a zero duration', 't,x,y,z\n0,0,0,1\n0,0,0,1\n', 3, /cannot estimate the rate/],
    ['values in m/s²', 't,x,y,z\n0,0.1,0.2,9.8\n0.02,0.1,0.2,9.7\n', 2, /must be in g/],
  ])('rejects %s with the line it is on', (_name, text, line, message) => {
    const err = parseError(text);
    expect(err.line).toBe(line);
    expect(err.message).toMatch(message);
    expect(err.message.startsWith(`rec.csv:${line}: `)).toBe(true);
  });

  it('rejects an empty or unreadable file', async () => {
    expect(parseError('').message).toMatch(/rec\.csv:1: empty file/);
    await expect(detectFallsInFile('/nonexistent/x.csv')).rejects.toThrow(/^\/nonexistent\/x\.csv: cannot read/);
  });
});
