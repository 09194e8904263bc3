/**
 * `vigil sql "SELECT …"`: one read-only query against the DuckDB warehouse file, printed as an
 * aligned table (default), CSV or JSON.
 *
 * Read-only three times over: the file is opened with `access_mode=READ_ONLY` (DuckDB refuses
 * any write to it), external access is disabled (no reading or writing other files, no
 * ATTACH, no extension install), and the statement must be exactly one SELECT-like statement
 * (SELECT, WITH, FROM, VALUES, DESCRIBE, SHOW, SUMMARIZE, EXPLAIN) — anything else is refused
 * before it runs, exit code 2.
 *
 * DuckDB locks its file: a process that opened it read-write (a running Vigil's warehouse
 * group) excludes every other process, read-only ones included, and while `vigil sql` holds it
 * read-only Vigil cannot open it. So this runs while Vigil is stopped, or on a copy (see
 * docs/api.md, "vigil sql"); a lock held elsewhere is reported as such, exit code 2.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { DuckDBInstance, DuckDBTypeId, StatementType, type DuckDBConnection, type DuckDBResult, type Json } from '@duckdb/node-api';
import { ConfigError } from '../core/config.js';

export type SqlFormat = 'table' | 'csv' | 'json';

export interface SqlOptions {
  sql: string;
  /** The DuckDB file. */
  file: string;
  format: SqlFormat;
  /** Rows shown by the table format (csv and json print every row). */
  maxRows: number;
  write: (text: string) => Promise<void> | void;
}

/** What a query reads: SELECT covers DESCRIBE, SHOW, SUMMARIZE, VALUES, FROM-first and PRAGMA show_tables. */
const READ_STATEMENTS = new Set<StatementType>([StatementType.SELECT, StatementType.EXPLAIN]);

const NUMERIC_TYPES = new Set<DuckDBTypeId>([
  DuckDBTypeId.TINYINT, DuckDBTypeId.SMALLINT, DuckDBTypeId.INTEGER, DuckDBTypeId.BIGINT, DuckDBTypeId.HUGEINT,
  DuckDBTypeId.UTINYINT, DuckDBTypeId.USMALLINT, DuckDBTypeId.UINTEGER, DuckDBTypeId.UBIGINT, DuckDBTypeId.UHUGEINT,
  DuckDBTypeId.FLOAT, DuckDBTypeId.DOUBLE, DuckDBTypeId.DECIMAL,
]);

const WIDE_INTEGERS = new Set<DuckDBTypeId>([DuckDBTypeId.BIGINT, DuckDBTypeId.HUGEINT, DuckDBTypeId.UBIGINT, DuckDBTypeId.UHUGEINT]);

/** The warehouse file of a data directory (DuckDbWarehouse.open puts it there). */
export const warehouseFile = (dataDir: string) => join(dataDir, 'warehouse.duckdb');

export async function runSql(opts: SqlOptions): Promise<{ rows: number }> {
  if (opts.sql.trim() === '') throw new ConfigError('usage: vigil sql "SELECT …" [--format table|csv|json] [--data-dir DIR | --file FILE]');
  if (!existsSync(opts.file)) {
    throw new ConfigError(`no warehouse file at ${opts.file}: pass the --data-dir Vigil runs with (the file is <dataDir>/warehouse.duckdb), or --file`);
  }
  const instance = await openReadOnly(opts.file);
  try {
    const connection = await instance.connect();
    try {
      return await query(connection, opts);
    } finally {
      connection.closeSync();
    }
  } finally {
    instance.closeSync();
  }
}

async function openReadOnly(file: string): Promise<DuckDBInstance> {
  try {
    return await DuckDBInstance.create(file, {
      access_mode: 'READ_ONLY',
      enable_external_access: 'false',
      autoinstall_known_extensions: 'false',
      autoload_known_extensions: 'false',
    });
  } catch (err) {
    const message = (err as Error).message;
    if (/Could not set lock|Conflicting lock/i.test(message)) {
      const pid = /PID (\d+)/.exec(message)?.[1];
      throw new ConfigError(
        `${file} is open in another process${pid ? ` (PID ${pid})` : ''} — a running Vigil, most likely. DuckDB lets a single ` +
          'process write its file and no other process open it meanwhile, even read-only. Stop Vigil and run this again, or query ' +
          'a copy: see "vigil sql" in docs/api.md.',
      );
    }
    throw new ConfigError(`cannot open ${file} read-only: ${message}`);
  }
}

async function query(connection: DuckDBConnection, opts: SqlOptions): Promise<{ rows: number }> {
  let result: DuckDBResult;
  try {
    const statements = await connection.extractStatements(opts.sql);
    if (statements.count !== 1) {
      throw new ConfigError(`vigil sql runs exactly one statement; got ${statements.count}${statements.count > 1 ? ' (separated by ;)' : ''}`);
    }
    const prepared = await statements.prepare(0);
    try {
      const type = prepared.statementType;
      if (!READ_STATEMENTS.has(type)) {
        throw new ConfigError(
          `refused ${StatementType[type] ?? type}: vigil sql only reads (one SELECT, WITH, FROM, VALUES, DESCRIBE, SHOW, SUMMARIZE or EXPLAIN)`,
        );
      }
      result = await prepared.stream();
    } finally {
      prepared.destroySync();
    }
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    const message = (err as Error).message;
    // DuckDB's own refusal of a write (e.g. under EXPLAIN ANALYZE) in read-only mode.
    if (/read-only mode/i.test(message)) throw new ConfigError(`refused: the warehouse is open read-only (${message})`);
    throw new ConfigError(message); // parser, binder, catalog errors: the user's to fix
  }
  try {
    return await print(result, opts);
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    throw new ConfigError((err as Error).message); // raised while the rows are computed
  }
}

async function print(result: DuckDBResult, opts: SqlOptions): Promise<{ rows: number }> {
  const names = result.deduplicatedColumnNames();
  const types = names.map((_, i) => result.columnTypeId(i));
  let count = 0;
  if (opts.format === 'table') {
    const rows: string[][] = [];
    let more = false;
    for await (const chunk of result.yieldRows()) {
      for (const row of chunk) {
        if (rows.length >= opts.maxRows) {
          more = true;
          break;
        }
        rows.push(row.map((v) => oneLine(v === null ? 'NULL' : String(v))));
      }
      if (more) break;
    }
    await opts.write(formatTable(names, rows, types.map((t) => NUMERIC_TYPES.has(t)), more));
    return { rows: rows.length };
  }
  if (opts.format === 'csv') {
    await opts.write(names.map(csvField).join(',') + '\n');
    for await (const chunk of result.yieldRows()) {
      let text = '';
      for (const row of chunk) text += row.map((v) => (v === null ? '' : csvField(String(v)))).join(',') + '\n';
      count += chunk.length;
      if (text) await opts.write(text);
    }
    return { rows: count };
  }
  // JSON: an array of objects, one a line. Lists, structs, maps are JSON; times are DuckDB's text.
  await opts.write('[');
  for await (const chunk of result.yieldRowsJson()) {
    let text = '';
    for (const row of chunk) {
      const object = Object.fromEntries(names.map((n, i) => [n, jsonNumber(row[i], types[i])]));
      text += (count === 0 ? '\n' : ',\n') + JSON.stringify(object);
      count++;
    }
    if (text) await opts.write(text);
  }
  await opts.write(count === 0 ? ']\n' : '\n]\n');
  return { rows: count };
}

/** 64- and 128-bit integers and decimals come as exact strings: numbers when a double holds the integer exactly, or for decimals. */
function jsonNumber(v: Json, type: DuckDBTypeId): Json {
  if (typeof v !== 'string') return v;
  if (type === DuckDBTypeId.DECIMAL) return Number(v);
  if (WIDE_INTEGERS.has(type) && Number.isSafeInteger(Number(v))) return Number(v);
  return v;
}

function oneLine(text: string): string {
  return text.replace(/\r\n|\r|\n/g, '\\n').replace(/\t/g, ' ');
}

function csvField(text: string): string {
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

/** psql's aligned format: a header, a rule, right-aligned numbers, the row count. */
export function formatTable(names: string[], rows: string[][], numeric: boolean[], more: boolean): string {
  const widths = names.map((n, i) => Math.max(n.length, ...rows.map((r) => r[i].length)));
  const pad = (text: string, i: number, right: boolean) => (right ? text.padStart(widths[i]) : text.padEnd(widths[i]));
  const line = (cells: string[], header: boolean) => ' ' + cells.map((c, i) => pad(c, i, !header && numeric[i])).join(' | ').trimEnd();
  const out = [line(names.map((n, i) => center(n, widths[i])), true), widths.map((w) => '-'.repeat(w + 2)).join('+'), ...rows.map((r) => line(r, false))];
  const n = rows.length;
  out.push(more ? `(first ${n} rows shown: raise --max-rows, or use --format csv or json for every row)` : `(${n} row${n === 1 ? '' : 's'})`);
  return out.join('\n') + '\n';
}

function center(text: string, width: number): string {
  const left = Math.floor((width - text.length) / 2);
  return ' '.repeat(left) + text + ' '.repeat(width - text.length - left);
}
