/**
 * Authentication under fire (docs/api.md, Revocation): a device token writes only as its own
 * device; a rotated or revoked token is refused from the very next request; the admin key
 * reset by `vigil admin-key reset` (through the store, while Vigil runs) is refused within
 * 2 s; wrong admin keys of any length are refused. Real SQLite store.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Vigil } from '../src/app.js';
import { AdminAuth } from '../src/api/admin-auth.js';
import { alertId, hashSecret, newSecret } from '../src/core/ids.js';
import { ADMIN_KEY, api, reading, registerResident, startTestVigil, waitFor } from './helpers.js';

describe('auth', () => {
  let vigil: Vigil;
  let base: string;
  const t = Date.now() - 60_000;

  const post = (token: string, body: unknown) => api(base, 'POST', '/v1/readings', { token, body });
  const readingsOf = async (residentId: string) => {
    const res = await api(base, 'GET', `/v1/residents/${residentId}/readings?from=${t - 60_000}&to=${Date.now() + 60_000}`, { token: ADMIN_KEY });
    expect(res.status).toBe(200);
    return (res.body.readings as { deviceId: string; seq: number }[]).map((r) => `${r.deviceId}#${r.seq}`);
  };

  beforeAll(async () => {
    vigil = await startTestVigil();
    base = vigil.url;
  });
  afterAll(async () => vigil?.stop());

  it('a device token cannot post readings for another device: 403, nothing stored', async () => {
    const victim = await registerResident(base, 'band-victim');
    const attacker = await registerResident(base, 'band-attacker');

    // A forged SOS for the victim, alone and hidden in a batch of the attacker's own readings.
    const forged = await post(attacker.token, reading('band-victim', 1, t, { events: ['SOS'] }));
    expect(forged.status).toBe(403);
    expect(forged.body).toMatchObject({ code: 'WRONG_DEVICE' });
    const hidden = await post(attacker.token, { readings: [reading('band-attacker', 1, t), reading('band-victim', 1, t + 1000, { events: ['SOS'] })] });
    expect(hidden.status).toBe(403);

    // The victim's own SOS after it: once processed, anything appended before it would be too.
    expect((await post(victim.token, reading('band-victim', 2, t + 5000, { events: ['SOS'] }))).status).toBe(202);
    const sos = await waitFor('the victim’s SOS alert', async () => {
      const res = await api(base, 'GET', `/v1/alerts?residentId=${victim.residentId}&type=SOS`, { token: ADMIN_KEY });
      return res.body.alerts?.[0];
    });
    expect(sos).toMatchObject({ id: alertId(victim.residentId, 'SOS', 'band-victim', 2), occurrences: 1 });
    await waitFor('the victim’s reading in the warehouse', async () => (await readingsOf(victim.residentId)).length > 0);
    expect(await readingsOf(victim.residentId)).toEqual(['band-victim#2']);
    expect(await readingsOf(attacker.residentId)).toEqual([]);
  });

  it('rotate: the old token gets 401 on the very next request, the new one 202', async () => {
    const band = await registerResident(base, 'band-rotate');
    expect((await post(band.token, reading('band-rotate', 1, t))).status).toBe(202); // cached now

    const rotated = await api(base, 'POST', '/v1/devices/band-rotate/token', { token: ADMIN_KEY });
    expect(rotated.status).toBe(201);
    expect(rotated.body).toEqual({ deviceId: 'band-rotate', token: expect.stringMatching(/^vdev_/) });
    expect(rotated.body.token).not.toBe(band.token);

    const old = await post(band.token, reading('band-rotate', 2, t + 5000));
    expect(old.status).toBe(401);
    expect(old.body).toMatchObject({ code: 'INVALID_TOKEN' });
    expect((await post(rotated.body.token, reading('band-rotate', 3, t + 10_000))).status).toBe(202);

    // The device is still registered to its resident.
    const resident = await api(base, 'GET', `/v1/residents/${band.residentId}`, { token: ADMIN_KEY });
    expect(resident.body.devices.map((d: { deviceId: string }) => d.deviceId)).toEqual(['band-rotate']);
  });

  it('revoke: 401 at once; the device stays registered and can be given a new token', async () => {
    const band = await registerResident(base, 'band-revoke');
    expect((await post(band.token, reading('band-revoke', 1, t))).status).toBe(202);

    const revoked = await api(base, 'DELETE', '/v1/devices/band-revoke/token', { token: ADMIN_KEY });
    expect(revoked.status).toBe(204);
    expect((await post(band.token, reading('band-revoke', 2, t + 5000))).status).toBe(401);
    expect(await vigil.store.getDevice('band-revoke')).toMatchObject({ deviceId: 'band-revoke', residentId: band.residentId });

    const again = await api(base, 'POST', '/v1/devices/band-revoke/token', { token: ADMIN_KEY });
    expect(again.status).toBe(201);
    expect((await post(again.body.token, reading('band-revoke', 3, t + 10_000))).status).toBe(202);
    expect((await post(band.token, reading('band-revoke', 4, t + 15_000))).status).toBe(401);
  });

  it('token routes: 404 for an unknown device, 400 for a malformed id, 401 without the admin key', async () => {
    const band = await registerResident(base, 'band-routes');
    expect((await api(base, 'POST', '/v1/devices/band-nope/token', { token: ADMIN_KEY })).status).toBe(404);
    expect((await api(base, 'DELETE', '/v1/devices/band-nope/token', { token: ADMIN_KEY })).status).toBe(404);
    expect((await api(base, 'POST', '/v1/devices/bad%20id/token', { token: ADMIN_KEY })).status).toBe(400);
    // A device token is not an admin key.
    expect((await api(base, 'POST', '/v1/devices/band-routes/token', { token: band.token })).status).toBe(401);
    expect((await api(base, 'DELETE', '/v1/devices/band-routes/token')).status).toBe(401);
    expect((await post(band.token, reading('band-routes', 1, t))).status).toBe(202);
  });

  it('a rotation made by another process (straight in the store) is refused within 2 s', async () => {
    const band = await registerResident(base, 'band-elsewhere');
    expect((await post(band.token, reading('band-elsewhere', 1, t))).status).toBe(202);
    const token = newSecret('vdev');
    const rotatedAt = Date.now();
    await vigil.store.setDeviceToken('band-elsewhere', hashSecret(token));
    let seq = 2;
    await waitFor('the old token refused', async () => (await post(band.token, reading('band-elsewhere', seq++, t))).status === 401, 5000, 50);
    expect(Date.now() - rotatedAt).toBeLessThan(3_000); // 2 s, plus the requests on a busy machine
    expect((await post(token, reading('band-elsewhere', 100, t))).status).toBe(202);
  });

  it('a wrong admin key of the same length or of another length: 401', async () => {
    const sameLength = ADMIN_KEY.slice(0, -1) + (ADMIN_KEY.endsWith('x') ? 'y' : 'x');
    expect(sameLength).toHaveLength(ADMIN_KEY.length);
    for (const key of [sameLength, 'x'.repeat(ADMIN_KEY.length), ADMIN_KEY + 'x', ADMIN_KEY.slice(0, 8), 'x'.repeat(500)]) {
      const res = await api(base, 'GET', '/v1/residents', { token: key });
      expect(res.status).toBe(401);
      expect(res.body).toMatchObject({ code: 'INVALID_TOKEN' });
    }
    expect((await api(base, 'GET', '/v1/residents')).body).toMatchObject({ code: 'MISSING_TOKEN' });
    expect((await api(base, 'GET', '/v1/residents', { token: ADMIN_KEY })).status).toBe(200);
  });

  // Last: it changes the admin key.
  it('an admin key reset through the store (as `vigil admin-key reset`) revokes the old key within 2 s, no restart', async () => {
    expect((await api(base, 'GET', '/v1/residents', { token: ADMIN_KEY })).status).toBe(200);
    const resetAt = Date.now();
    const key = await AdminAuth.reset(vigil.store);
    await waitFor('the old admin key refused', async () => (await api(base, 'GET', '/v1/residents', { token: ADMIN_KEY })).status === 401, 5000, 50);
    expect(Date.now() - resetAt).toBeLessThan(3_000); // 2 s, plus the requests on a busy machine
    expect((await api(base, 'GET', '/v1/residents', { token: key })).status).toBe(200);
    expect((await api(base, 'POST', '/v1/devices/band-rotate/token', { token: ADMIN_KEY })).status).toBe(401);
    expect((await api(base, 'POST', '/v1/devices/band-rotate/token', { token: key })).status).toBe(201);
  });
});
