/**
 * The right to erasure end to end: `vigil residents erase` against a running Vigil removes the
 * resident's personal data from the store (and contacts), the warehouse and the archive, leaves
 * other residents alone, and records what it did.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Vigil } from '../src/app.js';
import { runEraseResident } from '../src/cli/residents-command.js';
import { ADMIN_KEY, api, reading, registerResident, startTestVigil, tempDir, waitFor } from './helpers.js';

const files = (dir: string): string[] =>
  readdirSync(dir).flatMap((n) => (statSync(join(dir, n)).isDirectory() ? files(join(dir, n)) : n.endsWith('.gz') ? [join(dir, n)] : []));

describe('erasing a resident', () => {
  let vigil: Vigil;
  let base: string;
  const dataDir = tempDir();

  beforeAll(async () => {
    vigil = await startTestVigil({}, dataDir);
    base = vigil.url;
  });
  afterAll(async () => {
    await vigil?.stop();
  });

  it('removes their personal data from the store, warehouse and archive, and records it', async () => {
    const gone = await registerResident(base, 'band-erase', 'http://127.0.0.1:9/hook');
    const kept = await registerResident(base, 'band-keep');
    const t0 = Date.now() - 120_000;
    for (const r of [gone, kept]) {
      const res = await api(base, 'POST', '/v1/readings', { token: r.token, body: { readings: Array.from({ length: 10 }, (_, i) => reading(r.deviceId, i, t0 + i * 5000)) } });
      expect(res.status).toBe(202);
    }
    const count = async (id: string) => (await api(base, 'GET', `/v1/residents/${id}/readings?from=${t0 - 1}`, { token: ADMIN_KEY })).body.readings.length;
    await waitFor('warehouse rows', async () => (await count(gone.residentId)) === 10 && (await count(kept.residentId)) === 10);
    const archived = () => files(join(dataDir, 'archive')).map((f) => gunzipSync(readFileSync(f)).toString('utf8')).join('\n');
    await waitFor('archived', async () => archived().includes(gone.residentId) && archived().includes(kept.residentId));

    const record = await runEraseResident({ url: base, adminKey: ADMIN_KEY, residentId: gone.residentId, by: 'dpo@example.org' });
    expect(record).toMatchObject({ residentId: gone.residentId, by: 'dpo@example.org', store: { contacts: 1 }, warehouse: { readings: 10 }, archive: { lines: 10 } });

    const resident = (await api(base, 'GET', `/v1/residents/${gone.residentId}`, { token: ADMIN_KEY })).body;
    expect(resident).toMatchObject({ name: '(erased)', birthDate: null, homeLocation: null, medicalNotes: null, contacts: [] });
    expect(await count(gone.residentId)).toBe(0);
    expect(await count(kept.residentId)).toBe(10);
    expect(archived()).not.toContain(gone.residentId);
    expect(archived()).toContain(kept.residentId);
    expect((await api(base, 'GET', `/v1/residents/${gone.residentId}/erasure`, { token: ADMIN_KEY })).body).toEqual(record);
    expect((await api(base, 'GET', `/v1/residents/${kept.residentId}/erasure`, { token: ADMIN_KEY })).status).toBe(404);
    await expect(runEraseResident({ url: base, adminKey: ADMIN_KEY, residentId: 'res_nobody', by: 'x' })).rejects.toThrow(/404/);
  });
});
