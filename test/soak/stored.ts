/**
 * What the soak's Vigil stored, read straight from its files once it has stopped. Unlike
 * test/helpers.ts readArchive, which holds every object and line at once, this keeps only the
 * keys: an hour of readings is millions of lines of several KB each.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';

function walk(dir: string): string[] {
  try {
    return readdirSync(dir).flatMap((n) => (statSync(join(dir, n)).isDirectory() ? walk(join(dir, n)) : n.startsWith('.') ? [] : [join(dir, n)]));
  } catch {
    return [];
  }
}

/** `deviceId:seq` of every reading line in a local archive (duplicates kept: callers count them). */
export function archivedKeys(dir: string): string[] {
  const keys: string[] = [];
  for (const f of walk(dir)) {
    for (const line of gunzipSync(readFileSync(f)).toString('utf8').split('\n')) {
      if (!line) continue;
      const { reading: r } = JSON.parse(line) as { reading: { deviceId: string; seq: number } };
      keys.push(`${r.deviceId}:${r.seq}`);
    }
  }
  return keys;
}

/**
 * Rows of the DuckDB warehouse's readings table and distinct (device_id, seq) among them. DuckDB
 * lets one process open its file: call this only once Vigil has stopped.
 */
export async function warehouseCounts(dataDir: string): Promise<{ rows: number; distinct: number }> {
  const { DuckDBInstance } = await import('@duckdb/node-api');
  const instance = await DuckDBInstance.create(join(dataDir, 'warehouse.duckdb'), { access_mode: 'READ_ONLY' });
  try {
    const conn = await instance.connect();
    const result = await conn.runAndReadAll('SELECT count(*)::BIGINT, (SELECT count(*) FROM (SELECT DISTINCT device_id, seq FROM readings))::BIGINT FROM readings');
    const [rows, distinct] = result.getRows()[0] as [bigint, bigint];
    conn.closeSync();
    return { rows: Number(rows), distinct: Number(distinct) };
  } finally {
    instance.closeSync();
  }
}
