/**
 * When the stream cannot accept (here: another process holds stream.db locked), ingest
 * answers 503 with Retry-After, writes nothing, and accepts the same readings as new once the
 * stream is back — a phone's retry loses nothing and is not mistaken for a duplicate.
 */
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Vigil } from '../src/app.js';
import { partitionOf } from '../src/stream/partitioner.js';
import { decodeRecord } from '../src/stream/types.js';
import { api, reading, registerResident, startTestVigil } from './helpers.js';

describe('stream unavailable', () => {
  let vigil: Vigil;
  beforeAll(async () => {
    vigil = await startTestVigil();
  });
  afterAll(async () => vigil?.stop());

  it('answers 503 with Retry-After, stores nothing, then accepts the retry', async () => {
    const band = await registerResident(vigil.url, 'band-locked');
    const t = Date.now() - 60_000;
    // Warm the writer up so the lock below is what fails, not start-up.
    expect((await api(vigil.url, 'POST', '/v1/readings', { token: band.token, body: reading('band-locked', 0, t) })).status).toBe(202);

    const locker = new Database(join(vigil.config.dataDir, 'stream.db'));
    locker.pragma('busy_timeout = 0');
    locker.exec('BEGIN EXCLUSIVE');
    let res;
    try {
      res = await api(vigil.url, 'POST', '/v1/readings', { token: band.token, body: { readings: [reading('band-locked', 1, t + 5000), reading('band-locked', 2, t + 10_000)] } });
    } finally {
      locker.exec('ROLLBACK');
      locker.close();
    }
    expect(res.status).toBe(503);
    expect(res.headers.get('content-type')).toMatch(/problem\+json/);
    expect(res.body.code).toBe('STREAM_UNAVAILABLE');
    expect(Number(res.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);

    const part = partitionOf('band-locked', vigil.stream.partitions);
    const stored = async () =>
      (await vigil.stream.read(part, null, 1000)).map(decodeRecord).filter((r) => r.deviceId === 'band-locked').flatMap((r) => r.readings.map((x) => x.seq));
    expect(await stored()).toEqual([0]);

    const retry = await api(vigil.url, 'POST', '/v1/readings', { token: band.token, body: { readings: [reading('band-locked', 1, t + 5000), reading('band-locked', 2, t + 10_000)] } });
    expect(retry.status).toBe(202);
    expect(retry.body).toEqual({ accepted: 2, duplicates: 0, rejected: [] });
    expect(await stored()).toEqual([0, 1, 2]);
  }, 30_000);
});
