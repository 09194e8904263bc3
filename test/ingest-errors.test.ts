/**
 * Bad input at the front door: each gets its status and a problem+json body, and nothing
 * partial reaches the stream (checked by reading the stream itself).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gzipSync } from 'node:zlib';
import type { Vigil } from '../src/app.js';
import { partitionOf } from '../src/stream/partitioner.js';
import { decodeRecord } from '../src/stream/types.js';
import { ADMIN_KEY, api, gzip, reading, registerResident, startTestVigil } from './helpers.js';

describe('ingest rejects bad input cleanly', () => {
  let vigil: Vigil;
  let base: string;
  let band: Awaited<ReturnType<typeof registerResident>>;
  let other: Awaited<ReturnType<typeof registerResident>>;
  const t = Date.now() - 60_000;

  async function storedSeqs(deviceId: string): Promise<number[]> {
    const part = partitionOf(deviceId, vigil.stream.partitions);
    const out: number[] = [];
    let after: string | null = null;
    for (;;) {
      const records = await vigil.stream.read(part, after, 100);
      if (!records.length) return out;
      for (const r of records) {
        const batch = decodeRecord(r);
        if (batch.deviceId === deviceId) out.push(...batch.readings.map((x) => x.seq));
      }
      after = records[records.length - 1].sequence;
    }
  }

  const expectProblem = (res: { status: number; headers: Headers; body: any }, status: number, code: string) => {
    expect(res.status).toBe(status);
    expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(res.body).toMatchObject({ status, code });
    expect(typeof res.body.detail).toBe('string');
  };

  beforeAll(async () => {
    vigil = await startTestVigil({ 'ingest.rateLimitPerSecond': 5, 'ingest.rateLimitBurst': 40, 'ingest.maxBodyBytes': 5 * 1024 * 1024 });
    base = vigil.url;
    band = await registerResident(base, 'band-bad');
    other = await registerResident(base, 'band-other');
  });
  afterAll(async () => vigil?.stop());

  it('401 without a token or with an unknown one, 403 for another device’s reading', async () => {
    expectProblem(await api(base, 'POST', '/v1/readings', { body: reading('band-bad', 900, t) }), 401, 'MISSING_TOKEN');
    expectProblem(await api(base, 'POST', '/v1/readings', { token: 'vdev_nope', body: reading('band-bad', 900, t) }), 401, 'INVALID_TOKEN');
    expectProblem(await api(base, 'POST', '/v1/readings', { token: ADMIN_KEY, body: reading('band-bad', 900, t) }), 401, 'INVALID_TOKEN');
    const mixed = { readings: [reading('band-bad', 901, t), reading('band-other', 901, t)] };
    expectProblem(await api(base, 'POST', '/v1/readings', { token: band.token, body: mixed }), 403, 'WRONG_DEVICE');
    expect(await storedSeqs('band-bad')).toEqual([]);
    expect(await storedSeqs('band-other')).toEqual([]);
  });

  it('400 for malformed JSON, wrong shapes and types', async () => {
    const t1 = other.token;
    expectProblem(await api(base, 'POST', '/v1/readings', { token: t1, raw: '{"deviceId": "band-other", "seq": 1,' }), 400, 'MALFORMED_JSON');
    expectProblem(await api(base, 'POST', '/v1/readings', { token: t1, raw: '[1,2,3]' }), 400, 'INVALID_BODY');
    expectProblem(await api(base, 'POST', '/v1/readings', { token: t1, raw: '"hello"' }), 400, 'INVALID_BODY');
    expectProblem(await api(base, 'POST', '/v1/readings', { token: t1, body: { readings: 'many' } }), 400, 'INVALID_BODY');
    expectProblem(await api(base, 'POST', '/v1/readings', { token: t1, body: { readings: [] } }), 400, 'INVALID_BODY');
    const wrongType = await api(base, 'POST', '/v1/readings', { token: t1, body: reading('band-other', 1, t, { hr: 'fast' }) });
    expectProblem(wrongType, 400, 'INVALID_BODY');
    expect(wrongType.body.detail).toBe('hr must be a number');
    expectProblem(await api(base, 'POST', '/v1/readings', { token: t1, body: reading('band-other', -1, t) }), 400, 'INVALID_BODY');
    expectProblem(await api(base, 'POST', '/v1/readings', { token: t1, body: reading('band-other', 2, t, { ts: 'yesterday' }) }), 400, 'INVALID_BODY');
    expectProblem(await api(base, 'POST', '/v1/readings', { token: t1, raw: 'x'.repeat(10), headers: { 'content-type': 'text/plain' } }), 415, 'UNSUPPORTED_MEDIA_TYPE');
    expectProblem(await api(base, 'POST', '/v1/readings', { token: t1, raw: 'not gzip at all', headers: { 'content-encoding': 'gzip' } }), 400, 'BAD_GZIP');
    expectProblem(await api(base, 'POST', '/v1/readings', { token: t1, raw: '{}', headers: { 'content-encoding': 'br' } }), 415, 'UNSUPPORTED_ENCODING');
    expect(await storedSeqs('band-other')).toEqual([]);
  });

  it('accepts a partly valid batch: keeps the good readings, lists the bad, drops impossible values with a flag', async () => {
    const batch = {
      readings: [
        reading('band-bad', 10, t),
        reading('band-bad', 11, t + 5000, { spo2: 'low' }),
        reading('band-bad', 12, t + 10_000, { hr: 400, spo2: 30, unknownField: 'dropped', __proto__x: 1 }),
        { deviceId: 'band-bad' },
        reading('band-bad', 13, Date.now() + 3_600_000),
      ],
    };
    const res = await api(base, 'POST', '/v1/readings', { token: band.token, body: batch });
    expect(res.status).toBe(202);
    expect(res.body.accepted).toBe(3);
    expect(res.body.rejected).toEqual([
      { index: 1, error: 'spo2 must be a number' },
      { index: 3, error: 'seq must be an integer from 0 to 2^53-1' },
    ]);
    const part = partitionOf('band-bad', vigil.stream.partitions);
    const [record] = (await vigil.stream.read(part, null, 1000)).map(decodeRecord).filter((r) => r.deviceId === 'band-bad');
    const [r10, r12, r13] = record.readings;
    expect(r10.flags).toBeUndefined();
    expect(r12.hr).toBeUndefined();
    expect(r12.spo2).toBeUndefined();
    expect(r12.flags).toEqual(['hr:out_of_range', 'spo2:out_of_range']);
    expect(r12).not.toHaveProperty('unknownField');
    expect(r13.flags).toEqual(['ts:future']);
    expect(Math.abs(r13.ts - r13.receivedAt)).toBe(0);
    const metrics = await api(base, 'GET', '/metrics');
    expect(metrics.body).toMatch(/vigil_readings_sanitized_total\{flag="hr:out_of_range"\} 1/);
  });

  it('413 for 501 readings and for a body over the limit; a gzip bomb stops at the limit', async () => {
    const many = { readings: Array.from({ length: 501 }, (_, i) => reading('band-other', 100 + i, t)) };
    expectProblem(await api(base, 'POST', '/v1/readings', { token: other.token, body: many }), 413, 'TOO_MANY_READINGS');
    const huge = JSON.stringify({ ...reading('band-other', 700, t), pad: 'x'.repeat(6 * 1024 * 1024) });
    expectProblem(await api(base, 'POST', '/v1/readings', { token: other.token, raw: huge }), 413, 'BODY_TOO_LARGE');
    // 256 MiB of digits inside a JSON string compresses to about 256 KiB.
    const bomb = gzipSync(Buffer.concat([Buffer.from('{"deviceId":"band-other","seq":701,"ts":1,"pad":"'), Buffer.alloc(256 * 1024 * 1024, 0x30), Buffer.from('"}')]));
    expect(bomb.length).toBeLessThan(5 * 1024 * 1024);
    const before = process.memoryUsage().rss;
    expectProblem(await api(base, 'POST', '/v1/readings', { token: other.token, raw: bomb, headers: { 'content-encoding': 'gzip' } }), 413, 'BODY_TOO_LARGE');
    expect(process.memoryUsage().rss - before).toBeLessThan(200 * 1024 * 1024);
    expect(await storedSeqs('band-other')).toEqual([]);
  }, 120_000);

  it('accepts gzip bodies and a full 500-reading batch with 5 s of 50 Hz accelerometer each', async () => {
    const acc = { hz: 50, samples: Array.from({ length: 250 }, (_, i) => [0.012 * (i % 7), -0.981, 0.05]) };
    const big = { readings: Array.from({ length: 500 }, (_, i) => reading('band-other', 1000 + i, t + i * 5000 - 3_000_000, { acc })) };
    const body = gzip(big);
    const res = await api(base, 'POST', '/v1/readings', { token: other.token, raw: body, headers: { 'content-encoding': 'gzip' } });
    expect(res.status).toBe(202);
    expect(res.body).toEqual({ accepted: 500, duplicates: 0, rejected: [] });
  });

  it('answers a replayed batch with duplicates and stores nothing twice', async () => {
    const batch = { readings: [reading('band-bad', 20, t), reading('band-bad', 21, t + 5000)] };
    expect((await api(base, 'POST', '/v1/readings', { token: band.token, body: batch })).body).toEqual({ accepted: 2, duplicates: 0, rejected: [] });
    expect((await api(base, 'POST', '/v1/readings', { token: band.token, body: batch })).body).toEqual({ accepted: 0, duplicates: 2, rejected: [] });
    const seqs = await storedSeqs('band-bad');
    expect(seqs.filter((s) => s === 20 || s === 21)).toEqual([20, 21]);
  });

  it('429 with Retry-After when a device exceeds its rate', async () => {
    const dev = await registerResident(base, 'band-fast');
    const statuses: number[] = [];
    let retryAfter: string | null = null;
    for (let i = 0; i < 60; i++) {
      const res = await api(base, 'POST', '/v1/readings', { token: dev.token, body: reading('band-fast', i, t + i * 5000) });
      statuses.push(res.status);
      if (res.status === 429) {
        retryAfter = res.headers.get('retry-after');
        expectProblem(res, 429, 'RATE_LIMITED');
      }
    }
    expect(statuses.filter((s) => s === 202).length).toBeGreaterThanOrEqual(40);
    expect(statuses).toContain(429);
    expect(Number(retryAfter)).toBeGreaterThanOrEqual(1);
  });

  it('admin endpoints want the admin key and valid bodies', async () => {
    expectProblem(await api(base, 'GET', '/v1/residents'), 401, 'MISSING_TOKEN');
    expectProblem(await api(base, 'GET', '/v1/residents', { token: band.token }), 401, 'INVALID_TOKEN');
    expectProblem(await api(base, 'POST', '/v1/residents', { token: ADMIN_KEY, body: { name: '' } }), 400, 'INVALID_BODY');
    expectProblem(await api(base, 'POST', '/v1/residents', { token: ADMIN_KEY, body: { name: 'A', timezone: 'Mars/Olympus' } }), 400, 'INVALID_BODY');
    expectProblem(await api(base, 'POST', '/v1/devices', { token: ADMIN_KEY, body: { deviceId: 'band-bad', residentId: band.residentId } }), 409, 'CONFLICT');
    expectProblem(await api(base, 'POST', '/v1/devices', { token: ADMIN_KEY, body: { deviceId: 'bad id!', residentId: band.residentId } }), 400, 'INVALID_BODY');
    expectProblem(await api(base, 'POST', '/v1/devices', { token: ADMIN_KEY, body: { deviceId: 'band-x', residentId: 'res_nope' } }), 404, 'NOT_FOUND');
    expectProblem(await api(base, 'GET', '/v1/residents/res_nope', { token: ADMIN_KEY }), 404, 'NOT_FOUND');
    expectProblem(await api(base, 'POST', '/v1/alerts/alr_nope/ack', { token: ADMIN_KEY, body: { by: 'x' } }), 404, 'NOT_FOUND');
    expectProblem(await api(base, 'GET', '/v1/nothing-here', { token: ADMIN_KEY }), 404, 'NOT_FOUND');
    const r = await api(base, 'GET', `/v1/residents/${band.residentId}`, { token: ADMIN_KEY });
    expect(r.body).toMatchObject({ id: band.residentId, timezone: 'Europe/Paris', devices: [{ deviceId: 'band-bad' }] });
  });
});
