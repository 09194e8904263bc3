import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { afterAll, describe, expect, it } from 'vitest';
import { warehouseConformance } from '../testing/conformance.js';
import { DuckDbWarehouse } from './duckdb-warehouse.js';

const root = mkdtempSync(join(tmpdir(), 'vigil-wh-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

warehouseConformance('duckdb', (storage) => DuckDbWarehouse.open(join(root, storage)));

describe('DuckDbWarehouse on a file from before its tables lost their keys', () => {
  it('rebuilds readings, vitals_1m, sleep_sessions and daily_activity without key or index, keeping their rows and their dedupe', async () => {
    const dir = join(root, 'keyed');
    mkdirSync(dir);
    // The schema of earlier versions: keys on every table, and indexes on resident_id.
    const old = await DuckDBInstance.create(join(dir, 'warehouse.duckdb'));
    const db = await old.connect();
    await db.run(`
      CREATE TABLE readings (device_id VARCHAR NOT NULL, seq BIGINT NOT NULL, resident_id VARCHAR NOT NULL, ts TIMESTAMP NOT NULL,
        received_at TIMESTAMP NOT NULL, hr DOUBLE, spo2 DOUBLE, skin_temp DOUBLE, steps INTEGER, battery DOUBLE, worn BOOLEAN,
        charging BOOLEAN, events VARCHAR[], lat DOUBLE, lon DOUBLE, accuracy_m DOUBLE, acc_hz DOUBLE, acc_samples INTEGER,
        flags VARCHAR[], PRIMARY KEY (device_id, seq));
      INSERT INTO readings (device_id, seq, resident_id, ts, received_at, hr)
        SELECT 'band-1', i, 'res-1', TIMESTAMP '2026-11-01 08:00:00' + to_seconds(i * 20), TIMESTAMP '2026-11-01 08:00:01' + to_seconds(i * 20), 60 + i
        FROM range(3) t(i);
      CREATE TABLE vitals_1m (resident_id VARCHAR NOT NULL, minute TIMESTAMP NOT NULL, hr_avg DOUBLE, hr_min DOUBLE, hr_max DOUBLE,
        hr_count BIGINT NOT NULL, spo2_avg DOUBLE, spo2_min DOUBLE, spo2_count BIGINT NOT NULL, skin_temp_avg DOUBLE,
        skin_temp_count BIGINT NOT NULL, steps BIGINT, readings BIGINT NOT NULL, PRIMARY KEY (resident_id, minute));
      CREATE TABLE sleep_sessions (device_id VARCHAR NOT NULL, night DATE NOT NULL, resident_id VARCHAR NOT NULL, start_ts TIMESTAMP NOT NULL,
        end_ts TIMESTAMP NOT NULL, total_sleep_min DOUBLE NOT NULL, efficiency DOUBLE NOT NULL, waso_min DOUBLE NOT NULL,
        awakenings INTEGER NOT NULL, onset_latency_min DOUBLE, PRIMARY KEY (device_id, night));
      CREATE INDEX sleep_sessions_resident ON sleep_sessions (resident_id);
      CREATE TABLE daily_activity (device_id VARCHAR NOT NULL, day DATE NOT NULL, resident_id VARCHAR NOT NULL, steps INTEGER NOT NULL,
        active_minutes DOUBLE NOT NULL, longest_sedentary_min DOUBLE NOT NULL, worn_minutes DOUBLE NOT NULL, final BOOLEAN NOT NULL,
        PRIMARY KEY (device_id, day));
      CREATE INDEX daily_activity_resident ON daily_activity (resident_id);
      INSERT INTO vitals_1m VALUES ('res-1', TIMESTAMP '2026-11-01 08:00:00', 70, 60, 80, 3, 97, 96, 3, NULL, 0, 12, 3);
      INSERT INTO sleep_sessions VALUES ('band-1', DATE '2026-11-01', 'res-1', TIMESTAMP '2026-11-01 22:00:00', TIMESTAMP '2026-11-02 06:00:00', 420, 0.9, 20, 2, 15);
      INSERT INTO daily_activity VALUES ('band-1', DATE '2026-11-01', 'res-1', 4200, 35, 90, 900, true);`);
    db.closeSync();
    old.closeSync();

    const wh = await DuckDbWarehouse.open(dir);
    try {
      const days = { residentId: 'res-1', from: '2026-11-01', to: '2026-11-02' };
      expect(await wh.sleepSessions(days)).toMatchObject([{ deviceId: 'band-1', night: '2026-11-01', totalSleepMin: 420, onsetLatencyMin: 15 }]);
      expect(await wh.dailyActivity(days)).toMatchObject([{ deviceId: 'band-1', day: '2026-11-01', steps: 4200, final: true }]);
      const T = Date.UTC(2026, 10, 1, 8);
      expect(await wh.vitals({ residentId: 'res-1', from: T, to: T + 60_000, step: '1m' })).toMatchObject([{ hrAvg: 70, readings: 3 }]);
      // A save replaces the day's row, as the key did.
      await wh.saveInsights({ sleep: [], activity: [{ deviceId: 'band-1', residentId: 'res-1', day: '2026-11-01', steps: 5000, activeMinutes: 40, longestSedentaryMin: 80, wornMinutes: 950, final: true }] });
      expect(await wh.dailyActivity(days)).toMatchObject([{ steps: 5000 }]);
      // The readings stay, and a replay of one of them (same device, seq and ts) is still skipped.
      const stored = await wh.readings({ residentId: 'res-1', from: T, to: T + 60_000, limit: 10 });
      expect(stored.map((r) => [r.seq, r.hr])).toEqual([[0, 60], [1, 61], [2, 62]]);
      expect(await wh.load([{ deviceId: 'band-1', seq: 1, residentId: 'res-1', ts: T + 20_000, receivedAt: T + 21_000, hr: 99 }])).toEqual({ inserted: 0 });
      expect(await wh.load([{ deviceId: 'band-1', seq: 3, residentId: 'res-1', ts: T + 60_000, receivedAt: T + 61_000, hr: 63 }])).toEqual({ inserted: 1 });
    } finally {
      await wh.close();
    }
    const after = await DuckDBInstance.create(join(dir, 'warehouse.duckdb'));
    const check = await after.connect();
    const rows = async (sql: string) => (await check.runAndReadAll(sql)).getRowObjectsJS();
    expect(await rows(`SELECT table_name, constraint_type FROM duckdb_constraints() WHERE constraint_type IN ('PRIMARY KEY', 'UNIQUE') ORDER BY 1`)).toEqual([]);
    expect(await rows(`SELECT count(*)::INTEGER AS n FROM readings`)).toEqual([{ n: 4 }]);
    expect(await rows(`SELECT index_name FROM duckdb_indexes()`)).toEqual([]);
    check.closeSync();
    after.closeSync();
  });
});

describe('DuckDbWarehouse memory', () => {
  it('caps DuckDB at warehouse.duckdbMemoryMB instead of its default of 80% of RAM', async () => {
    const wh = await DuckDbWarehouse.open(join(root, 'capped'), { memoryMB: 200 });
    try {
      // The setting as DuckDB reports it, read on the warehouse's own connection.
      const reader = (wh as unknown as { reader: import('@duckdb/node-api').DuckDBConnection }).reader;
      const limit = (await reader.runAndReadAll("SELECT current_setting('memory_limit') AS v")).getRowObjectsJS()[0].v as string;
      expect(limit).toMatch(/^(190\.7 MiB|200\.0 MB|200 MB)$/);
    } finally {
      await wh.close();
    }
  });

  it('counts what DuckDB holds (memoryBytes, for vigil_group_sink_memory_bytes), which grows as rows are loaded', async () => {
    const wh = await DuckDbWarehouse.open(join(root, 'counted'), { memoryMB: 200 });
    try {
      const before = await wh.memoryBytes();
      const t0 = Date.parse('2026-11-01T00:00:00Z');
      for (let batch = 0; batch < 10; batch++) {
        const rows = Array.from({ length: 1000 }, (_, i) => {
          const seq = batch * 1000 + i;
          return { deviceId: `band-${seq % 50}`, seq, residentId: `res-${seq % 50}`, ts: t0 + seq * 1000, receivedAt: t0 + seq * 1000, hr: 60 + (seq % 40) };
        });
        await wh.load(rows);
      }
      const after = await wh.memoryBytes();
      // A fresh file holds nothing in memory yet: 0 is a valid count there.
      expect(before).toBeGreaterThanOrEqual(0);
      expect(after).toBeGreaterThan(before);
    } finally {
      await wh.close();
    }
  });
});
