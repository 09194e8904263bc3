import { gunzipSync, gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { GzipText } from './gzip-text.js';

const lines = Array.from({ length: 3000 }, (_, i) => JSON.stringify({ seq: i, samples: Array.from({ length: 20 }, (_, j) => [((i * j) % 97) / 7, j, -i]) }));

describe('GzipText', () => {
  it('gives the bytes of gzip(all the text) however the lines were cut into writes', async () => {
    const whole = gzipSync(`${lines.join('\n')}\n`);
    for (const step of [1, 7, 250, 3000]) {
      const body = new GzipText();
      for (let i = 0; i < lines.length; i += step) {
        body.writeLines(lines.slice(i, i + step));
        // Let zlib work between writes, as it does between a group's batches.
        if (i % (step * 3) === 0) await new Promise((r) => setImmediate(r));
      }
      const out = await body.finish();
      expect(out.equals(whole), `cut every ${step} lines`).toBe(true);
    }
  });

  it('finishes once: every call gives the same buffer, and writing after it is refused', async () => {
    const body = new GzipText();
    body.writeLines(['a', 'b']);
    body.writeLines([]);
    const first = await body.finish();
    expect(await body.finish()).toBe(first);
    expect(gunzipSync(first).toString()).toBe('a\nb\n');
    expect(() => body.writeLines(['c'])).toThrow(/after finish/);
  });
});
