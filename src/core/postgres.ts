/**
 * What the PostgreSQL backends (store, warehouse) share: the SQLSTATE codes they react to and
 * creating the database a URL names when the server does not have it yet, so the default
 * `postgres://…/vigil` works on a fresh server. Imported only by those backends.
 */
import pg from 'pg';

export const UNIQUE_VIOLATION = '23505';
export const FOREIGN_KEY_VIOLATION = '23503';
export const INVALID_CATALOG_NAME = '3D000';
export const DUPLICATE_DATABASE = '42P04';

export const sqlState = (err: unknown): string | undefined => (err instanceof pg.DatabaseError ? err.code : undefined);

/** Connects to the server's `postgres` database to create the one the URL names. */
export async function createDatabase(url: string): Promise<void> {
  const admin = new URL(url);
  const name = decodeURIComponent(admin.pathname.slice(1));
  admin.pathname = '/postgres';
  const client = new pg.Client({ connectionString: admin.href });
  await client.connect();
  try {
    await client.query(`CREATE DATABASE ${pg.escapeIdentifier(name)}`);
  } catch (err) {
    // Another process opening the same URL created it first (which code depends on the timing).
    const state = sqlState(err);
    if (state !== DUPLICATE_DATABASE && state !== UNIQUE_VIOLATION) throw err;
  } finally {
    await client.end();
  }
}
