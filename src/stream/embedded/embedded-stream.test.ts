import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EmbeddedStream } from './embedded-stream.js';
import { streamConformance } from '../testing/conformance.js';

let dir = '';
let retentionMs = 7 * 86_400_000;
const make = () => new EmbeddedStream({ dataDir: dir, partitions: 4, retentionMs, retentionCheckMs: 100 });

streamConformance('embedded (SQLite)', {
  async open(opts = {}) {
    dir = mkdtempSync(join(tmpdir(), 'vigil-stream-'));
    retentionMs = opts.retentionMs ?? 7 * 86_400_000;
    return make();
  },
  async reopen() {
    return make();
  },
  retentionSlackMs: 700,
});
