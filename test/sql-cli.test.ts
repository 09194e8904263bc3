/**
 * `vigil sql` as a user runs it (a child process) against a warehouse file the DuckDB
 * warehouse wrote: table, CSV and JSON output; writes, several statements and bad SQL refused
 * with exit code 2; a file held by another process (a running Vigil) named as such.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { DuckDbWarehouse } from '../src/warehouse/duckdb/duckdb-warehouse.js';
import { tempDir } from './helpers.js';

// The TypeScript entry through tsx: the test does not depend on a fresh dist/ build.
const MAIN = new URL('../src/cli/main.ts', import.meta.url).pathname;
const vigilSql = (args: string[]) =>
  spawnSync(process.execPath, ['--import', 'tsx', MAIN, 'sql', ...args], { encoding: 'utf8', timeout: 60_000, env: { ...process.env, NO_COLOR: '1' } });

const t0 = Date.UTC(2026, 0, 1, 10, 0, 0);

describe('vigil sql', () => {
  let dataDir: string;

  beforeAll(async () => {
    dataDir = tempDir('vigil-sql-');
    const warehouse = await DuckDbWarehouse.open(dataDir);
    try {
      const rows = Array.from({ length: 5 }, (_, i) => ({
        deviceId: 'band-1',
        residentId: 'res_a',
        seq: i,
        ts: t0 + i * 20_000,
        receivedAt: t0 + i * 20_000 + 150,
        hr: 70 + i,
        spo2: 97,
        ...(i === 2 ? { events: ['SOS' as const] } : {}),
      }));
      expect((await warehouse.load(rows)).inserted).toBe(5);
    } finally {
      await warehouse.close();
    }
  });

  it('prints an aligned table, CSV or JSON', () => {
    const table = vigilSql(['--data-dir', dataDir, 'SELECT resident_id, minute, hr_avg, readings FROM vitals_1m ORDER BY minute']);
    expect(table.stderr).toBe('');
    expect(table.status).toBe(0);
    expect(table.stdout).toBe(
      [
        ' resident_id |       minute        | hr_avg | readings',
        '-------------+---------------------+--------+----------',
        ' res_a       | 2026-01-01 10:00:00 |     71 |        3',
        ' res_a       | 2026-01-01 10:01:00 |   73.5 |        2',
        '(2 rows)',
        '',
      ].join('\n'),
    );

    const csv = vigilSql(['--data-dir', dataDir, '--format', 'csv', "SELECT seq, ts, hr, events, 'a,\"b' AS quoted FROM readings WHERE seq < 3 ORDER BY seq"]);
    expect(csv.status).toBe(0);
    expect(csv.stdout).toBe(
      ['seq,ts,hr,events,quoted', '0,2026-01-01 10:00:00,70,,"a,""b"', '1,2026-01-01 10:00:20,71,,"a,""b"', `2,2026-01-01 10:00:40,72,['SOS'],"a,""b"`, ''].join('\n'),
    );

    const json = vigilSql(['--file', join(dataDir, 'warehouse.duckdb'), '--format', 'json', 'SELECT seq, hr, events, count(*) OVER () AS n FROM readings WHERE seq >= 2 ORDER BY seq']);
    expect(json.status).toBe(0);
    expect(JSON.parse(json.stdout)).toEqual([
      { seq: 2, hr: 72, events: ['SOS'], n: 3 },
      { seq: 3, hr: 73, events: null, n: 3 },
      { seq: 4, hr: 74, events: null, n: 3 },
    ]);

    const more = vigilSql(['--data-dir', dataDir, '--max-rows', '2', 'SELECT seq FROM readings ORDER BY seq']);
    expect(more.stdout).toContain('(first 2 rows shown');
  });

  it('refuses a write, several statements and bad SQL with exit code 2; the file is unchanged', () => {
    const write = vigilSql(['--data-dir', dataDir, 'DELETE FROM readings']);
    expect(write.status).toBe(2);
    expect(write.stderr).toContain('vigil: refused DELETE: vigil sql only reads');
    // A write hidden under EXPLAIN ANALYZE is refused by DuckDB's read-only mode.
    const hidden = vigilSql(['--data-dir', dataDir, 'EXPLAIN ANALYZE UPDATE readings SET hr = 0']);
    expect(hidden.status).toBe(2);
    expect(hidden.stderr).toContain('refused: the warehouse is open read-only');
    const two = vigilSql(['--data-dir', dataDir, 'SELECT 1; DROP TABLE readings']);
    expect(two.status).toBe(2);
    expect(two.stderr).toContain('exactly one statement; got 2');
    const files = vigilSql(['--data-dir', dataDir, "SELECT * FROM read_csv('/etc/hostname')"]);
    expect(files.status).toBe(2);
    expect(files.stderr).toContain('disabled by configuration');
    const typo = vigilSql(['--data-dir', dataDir, 'SELEC 1']);
    expect(typo.status).toBe(2);
    expect(typo.stderr).toContain('syntax error');
    expect(vigilSql(['--data-dir', dataDir, '--format', 'csv', 'SELECT count(*) AS n FROM readings']).stdout).toBe('n\n5\n');
  });

  it('says so when another process holds the file, when there is no file, and on a PostgreSQL warehouse', async () => {
    const running = await DuckDbWarehouse.open(dataDir); // as a running Vigil holds it
    try {
      const locked = vigilSql(['--data-dir', dataDir, 'SELECT 1']);
      expect(locked.status).toBe(2);
      expect(locked.stderr).toContain(`is open in another process (PID ${process.pid})`);
      expect(locked.stderr).toContain('Stop Vigil');
    } finally {
      await running.close();
    }
    const none = vigilSql(['--data-dir', tempDir('vigil-sql-none-'), 'SELECT 1']);
    expect(none.status).toBe(2);
    expect(none.stderr).toContain('no warehouse file at');
    const pg = vigilSql(['--warehouse-backend', 'postgres', 'SELECT 1']);
    expect(pg.status).toBe(2);
    expect(pg.stderr).toContain('docs/warehouse-postgres.md');
  });
});
