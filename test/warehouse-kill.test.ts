/**
 * The DuckDB warehouse through SIGKILLs: a process writing as the warehouse group does
 * (test/fixtures/warehouse-writer.mjs) is killed at a random moment, VIGIL_WAREHOUSE_KILLS
 * (20) times, each new one recovering the file and WAL the last one left. Each must come up and
 * write — DuckDB 1.5 crashed (SIGSEGV) replaying index deletes from such a WAL about once per
 * 130 restarts, which is why the replaced tables have no index (duckdb-warehouse.ts) — and at
 * the end every reading of a batch the writer was told was durable is there, each key is held
 * once (no reading twice, one row per (resident, minute), per (device, night), per (device,
 * day)) and each minute agrees with its readings, whatever the kills interrupted.
 */
import { spawn } from 'node:child_process';
import { rmSync } from 'node:fs';
import { DuckDBInstance } from '@duckdb/node-api';
import { afterAll, describe, expect, it } from 'vitest';
import { tempDir } from './helpers.js';

const KILLS = Number(process.env.VIGIL_WAREHOUSE_KILLS ?? 20);
const WRITER = new URL('./fixtures/warehouse-writer.mjs', import.meta.url).pathname;

const DEVICES = 20;
const PER_DEVICE = 40;

interface Ended {
  signal: NodeJS.Signals | null;
  code: number | null;
  stderr: string;
  opened: boolean;
  /** The last batch the writer reported durable, or -1. */
  lastLoaded: number;
}

/** Starts a writer at `firstBatch`, lets it write for `ms` after it opened the file, then SIGKILLs it. */
function writeUntilKilled(dataDir: string, firstBatch: number, ms: number): Promise<Ended> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [WRITER, dataDir, String(firstBatch)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    let stdout = '';
    let opened = false;
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString('utf8')));
    child.stdout.on('data', (c: Buffer) => {
      stdout += c.toString('utf8');
      if (opened) return;
      opened = true;
      setTimeout(() => child.kill('SIGKILL'), ms);
    });
    child.on('exit', (code, signal) => {
      const loaded = [...stdout.matchAll(/^loaded (\d+)$/gm)].map((m) => Number(m[1]));
      resolve({ code, signal, stderr, opened, lastLoaded: loaded.length ? Math.max(...loaded) : -1 });
    });
  });
}

describe('DuckDB warehouse under SIGKILL', () => {
  const dataDir = tempDir('vigil-wh-kill-');
  afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

  it(`recovers ${KILLS} times, keeps every durable reading, and every key once`, async () => {
    let durable = -1;
    for (let round = 1; round <= KILLS; round++) {
      // Like a group resuming from a checkpoint a little behind what its sink already holds.
      const end = await writeUntilKilled(dataDir, Math.max(0, durable + 1 - Math.floor(Math.random() * 4)), 100 + Math.random() * 900);
      expect(end, `round ${round}: the writer must live until killed\n${end.stderr}`).toMatchObject({ signal: 'SIGKILL', opened: true });
      durable = Math.max(durable, end.lastLoaded);
    }
    expect(durable).toBeGreaterThan(KILLS);
    const instance = await DuckDBInstance.create(`${dataDir}/warehouse.duckdb`);
    const db = await instance.connect();
    const count = async (sql: string) => Number((await db.runAndReadAll(sql)).getColumns()[0][0]);
    try {
      // Every reading of batches 0..durable, per device: PER_DEVICE × (durable + 1) seqs from 0.
      const perDevice = (await db.runAndReadAll(`SELECT device_id, count(DISTINCT seq) FILTER (WHERE seq < ${(durable + 1) * PER_DEVICE}) AS n FROM readings GROUP BY ALL ORDER BY ALL`)).getRowObjectsJS();
      expect(perDevice).toEqual(Array.from({ length: DEVICES }, (_, d) => ({ device_id: `band-${d}`, n: BigInt((durable + 1) * PER_DEVICE) })).sort((a, b) => a.device_id.localeCompare(b.device_id)));
      expect(await count('SELECT count(*) - count(DISTINCT (device_id, seq)) FROM readings')).toBe(0);
      expect(await count('SELECT count(*) - count(DISTINCT (resident_id, minute)) FROM vitals_1m')).toBe(0);
      expect(await count('SELECT count(*) - count(DISTINCT (device_id, night)) FROM sleep_sessions')).toBe(0);
      expect(await count('SELECT count(*) - count(DISTINCT (device_id, day)) FROM daily_activity')).toBe(0);
      // Every minute agrees with the readings stored (recomputed in the load's transaction).
      expect(
        await count(`SELECT count(*) FROM vitals_1m v FULL JOIN
          (SELECT resident_id, date_trunc('minute', ts) AS minute, count(*) AS n FROM readings GROUP BY ALL) r USING (resident_id, minute)
          WHERE v.readings IS DISTINCT FROM r.n`),
      ).toBe(0);
    } finally {
      db.closeSync();
      instance.closeSync();
    }
  }, 60_000 + KILLS * 5_000);
});
