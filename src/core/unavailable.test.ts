import { join } from 'node:path';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import Database from 'better-sqlite3';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { VigilError } from './errors.js';
import { isBackendUnavailable } from './unavailable.js';

/** The error a real client gives, not a hand-made look-alike. */
async function errorOf(fn: () => unknown): Promise<unknown> {
  try {
    await fn();
  } catch (err) {
    return err;
  }
  throw new Error('expected a failure');
}

describe('isBackendUnavailable', () => {
  it('recognises a database that is away or cannot take writes', async () => {
    // Nothing listens on port 1.
    const refused = await errorOf(() => new pg.Client({ host: '127.0.0.1', port: 1, connectionTimeoutMillis: 2000 }).connect());
    expect(isBackendUnavailable(refused)).toBe(true);

    const path = join(mkdtempSync(join(tmpdir(), 'vigil-unavail-')), 'x.db');
    const holder = new Database(path);
    holder.exec('CREATE TABLE t (x); BEGIN EXCLUSIVE');
    const other = new Database(path, { timeout: 0 });
    const busy = await errorOf(() => other.exec('INSERT INTO t VALUES (1)'));
    expect((busy as { code: string }).code).toBe('SQLITE_BUSY');
    expect(isBackendUnavailable(busy)).toBe(true);
    holder.exec('ROLLBACK');

    const shutdown = Object.assign(new Error('terminating connection due to administrator command'), { code: '57P01' });
    expect(isBackendUnavailable(shutdown)).toBe(true);
    expect(isBackendUnavailable(new Error('wrapped', { cause: refused }))).toBe(true);
  });

  it('leaves bugs and bad requests alone', async () => {
    expect(isBackendUnavailable(new TypeError("Cannot read properties of undefined (reading 'x')"))).toBe(false);
    expect(isBackendUnavailable(new VigilError('INVALID_BODY', 'nope'))).toBe(false);
    const syntax = Object.assign(new Error('syntax error at or near "SELEC"'), { code: '42601' });
    expect(isBackendUnavailable(syntax)).toBe(false);
    const constraint = await errorOf(() => {
      const db = new Database(':memory:');
      db.exec('CREATE TABLE t (x UNIQUE); INSERT INTO t VALUES (1); INSERT INTO t VALUES (1)');
    });
    expect(isBackendUnavailable(constraint)).toBe(false);
    expect(isBackendUnavailable('a string')).toBe(false);
  });
});
