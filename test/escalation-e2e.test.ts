/**
 * Escalation end to end over HTTP (embedded backends, webhook contacts): every step of a
 * resident's policy reaches its contacts in order and once; an acknowledgement stops what is
 * not sent yet; quiet hours hold a non-critical alert; an alert replayed from the far past pages
 * nobody; a person can resolve an alert.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Vigil } from '../src/app.js';
import { ADMIN_KEY, api, reading, registerResident, startTestVigil, tempDir, waitFor, webhookReceiver } from './helpers.js';

type Hooks = Awaited<ReturnType<typeof webhookReceiver>>;

describe('escalation end to end', () => {
  let vigil: Vigil;
  let base: string;
  let primary: Hooks;
  let secondary: Hooks;

  beforeAll(async () => {
    primary = await webhookReceiver();
    secondary = await webhookReceiver();
    vigil = await startTestVigil();
    base = vigil.url;
  });
  afterAll(async () => {
    await vigil?.stop();
    await primary?.close();
    await secondary?.close();
  });

  /** A resident whose primary and secondary contacts receive webhooks; returns ids and the device token. */
  async function household(deviceId: string, prefs: { primary?: object; secondary?: object } = {}) {
    const r = await registerResident(base, deviceId);
    const add = async (name: string, url: string, preferences: object) => {
      const res = await api(base, 'POST', `/v1/residents/${r.residentId}/contacts`, { token: ADMIN_KEY, body: { name, webhookUrl: url, preferences } });
      expect(res.status).toBe(201);
      return res.body.id as string;
    };
    const p = await add('Daughter', primary.url, { priority: 1, ...prefs.primary });
    const s = await add('Neighbour', secondary.url, { priority: 2, ...prefs.secondary });
    return { ...r, primaryId: p, secondaryId: s };
  }

  const deliveriesFor = (hooks: Hooks, alertId: string) => hooks.deliveries.map((d) => String(d.headers['x-vigil-delivery'])).filter((id) => id.startsWith(alertId));
  const notifications = async (alertId: string) => (await api(base, 'GET', `/v1/alerts/${alertId}/notifications`, { token: ADMIN_KEY })).body.notifications as any[];

  async function raiseSos(h: { residentId: string; token: string; deviceId: string }, ts = Date.now()) {
    const res = await api(base, 'POST', '/v1/readings', { token: h.token, body: reading(h.deviceId, 1, ts, { events: ['SOS'] }) });
    expect(res.status).toBe(202);
    return waitFor('SOS alert', async () => (await api(base, 'GET', `/v1/alerts?residentId=${h.residentId}&type=SOS`, { token: ADMIN_KEY })).body.alerts[0]);
  }

  it('reaches each step’s contacts in order, once each, and shows every delivery', async () => {
    const h = await household('band-esc-1');
    const put = await api(base, 'PUT', `/v1/residents/${h.residentId}/escalation`, {
      token: ADMIN_KEY,
      body: { critical: { steps: [{ afterS: 0, contacts: 'all', channels: ['webhook'] }, { afterS: 1, contacts: 'primary', channels: ['webhook'] }, { afterS: 2, contacts: 'secondary', channels: ['webhook'] }] } },
    });
    expect(put.status).toBe(200);
    expect(put.body.effective.critical.source).toBe('resident');
    expect(put.body.effective.high.source).toBe('default');
    const alert = await raiseSos(h);
    await waitFor('all steps', async () => deliveriesFor(primary, alert.id).length + deliveriesFor(secondary, alert.id).length >= 4, 10_000);
    await new Promise((r) => setTimeout(r, 500));
    expect(deliveriesFor(primary, alert.id).sort()).toEqual([`${alert.id}:0:${h.primaryId}:webhook`, `${alert.id}:1:${h.primaryId}:webhook`]);
    expect(deliveriesFor(secondary, alert.id).sort()).toEqual([`${alert.id}:0:${h.secondaryId}:webhook`, `${alert.id}:2:${h.secondaryId}:webhook`]);
    const rows = await notifications(alert.id);
    expect(rows.map((n) => [n.step, n.status])).toEqual([[0, 'sent'], [0, 'sent'], [1, 'sent'], [2, 'sent']]);
  });

  it('stops escalating the moment someone acknowledges', async () => {
    const h = await household('band-esc-2');
    await api(base, 'PUT', `/v1/residents/${h.residentId}/escalation`, {
      token: ADMIN_KEY,
      body: { all: { steps: [{ afterS: 0, contacts: 'primary', channels: ['webhook'] }, { afterS: 3, contacts: 'secondary', channels: ['webhook'] }], repeatEveryS: 60 } },
    });
    const alert = await raiseSos(h);
    await waitFor('first step', async () => deliveriesFor(primary, alert.id).length === 1);
    const ack = await api(base, 'POST', `/v1/alerts/${alert.id}/ack`, { token: ADMIN_KEY, body: { by: 'daughter' } });
    expect(ack.status).toBe(200);
    await new Promise((r) => setTimeout(r, 4000));
    expect(deliveriesFor(secondary, alert.id)).toEqual([]);
    expect((await notifications(alert.id)).map((n) => [n.step, n.status])).toEqual([[0, 'sent'], [1, 'cancelled']]);
  });

  it('stops when the resident says they are OK (SOS_CANCEL)', async () => {
    const h = await household('band-esc-7');
    await api(base, 'PUT', `/v1/residents/${h.residentId}/escalation`, {
      token: ADMIN_KEY,
      body: { critical: { steps: [{ afterS: 0, contacts: 'primary', channels: ['webhook'] }, { afterS: 3, contacts: 'all', channels: ['webhook'] }] } },
    });
    const alert = await raiseSos(h);
    await waitFor('first step', async () => deliveriesFor(primary, alert.id).length === 1);
    const cancel = await api(base, 'POST', '/v1/readings', { token: h.token, body: reading(h.deviceId, 2, Date.now(), { events: ['SOS_CANCEL'] }) });
    expect(cancel.status).toBe(202);
    await waitFor('resolved by the resident', async () => (await api(base, 'GET', `/v1/alerts/${alert.id}`, { token: ADMIN_KEY })).body.state === 'resolved');
    await new Promise((r) => setTimeout(r, 3500));
    expect(deliveriesFor(secondary, alert.id)).toEqual([]);
    expect((await notifications(alert.id)).filter((n) => n.step === 1).map((n) => n.status)).toEqual(['cancelled', 'cancelled']);
  });

  it('holds a non-critical alert during a contact’s quiet hours, but not a critical one', async () => {
    const h = await household('band-esc-3', { primary: { quietHours: { start: '00:00', end: '23:59' } } });
    const t0 = Date.now() - 60_000;
    await api(base, 'POST', '/v1/readings', { token: h.token, body: { readings: Array.from({ length: 10 }, (_, i) => reading('band-esc-3', i, t0 + i * 5000, { hr: 150 })) } });
    const hr = await waitFor('HR_HIGH', async () => (await api(base, 'GET', `/v1/alerts?residentId=${h.residentId}&type=HR_HIGH`, { token: ADMIN_KEY })).body.alerts[0]);
    const rows = await waitFor('rows', async () => {
      const n = await notifications(hr.id);
      return n.length > 0 && n;
    });
    const toPrimary = rows.find((n: any) => n.contactId === h.primaryId);
    expect(toPrimary.status).toBe('queued');
    expect(Date.parse(toPrimary.nextAttemptAt)).toBeGreaterThan(Date.now() + 1000); // held until 23:59 local
    expect(rows.find((n: any) => n.contactId === h.secondaryId).status).not.toBe('queued');
  });

  it('records an alert replayed from the far past without paging anyone', async () => {
    const h = await household('band-esc-4');
    const alert = await raiseSos(h, Date.now() - 13 * 3_600_000);
    expect(alert.delayMs).toBeGreaterThan(12 * 3_600_000);
    await new Promise((r) => setTimeout(r, 500));
    expect(await notifications(alert.id)).toEqual([]);
  });

  it('lets a person resolve an alert, which cancels what is not sent', async () => {
    const h = await household('band-esc-5');
    await api(base, 'PUT', `/v1/residents/${h.residentId}/escalation`, {
      token: ADMIN_KEY,
      body: { critical: { steps: [{ afterS: 0, contacts: 'primary', channels: ['webhook'] }, { afterS: 30, contacts: 'all', channels: ['webhook'] }] } },
    });
    const alert = await raiseSos(h);
    const res = await api(base, 'POST', `/v1/alerts/${alert.id}/resolve`, { token: ADMIN_KEY, body: { by: 'nurse', note: 'false alarm, button pressed by mistake' } });
    expect(res.body).toMatchObject({ state: 'resolved', acknowledgedBy: 'nurse' });
    const rows = await notifications(alert.id);
    expect(rows.filter((n) => n.step === 1).every((n) => n.status === 'cancelled')).toBe(true);
    const bad = await api(base, 'PUT', `/v1/residents/${h.residentId}/escalation`, { token: ADMIN_KEY, body: { critical: { steps: [{ afterS: 0, contacts: 'all', channels: ['pigeon'] }] } } });
    expect(bad.status).toBe(400);
  });

  it('reads and changes the site’s default policy per severity', async () => {
    const before = await api(base, 'GET', '/v1/escalation/defaults', { token: ADMIN_KEY });
    expect(before.body.medium.source).toBe('default');
    const put = await api(base, 'PUT', '/v1/escalation/defaults', { token: ADMIN_KEY, body: { medium: { steps: [{ afterS: 60, contacts: 'all', channels: ['webhook'] }] } } });
    expect(put.status).toBe(200);
    expect(put.body.medium).toEqual({ source: 'site', policy: { steps: [{ afterS: 60, contacts: 'all', channels: ['webhook'] }], repeatEveryS: null, maxRepeats: 0 } });
    const h = await household('band-esc-8');
    expect((await api(base, 'GET', `/v1/residents/${h.residentId}/escalation`, { token: ADMIN_KEY })).body.effective.medium.source).toBe('site');
    expect((await api(base, 'PUT', '/v1/escalation/defaults', { token: ADMIN_KEY, body: { urgent: {} } })).status).toBe(400);
  });

  it('updates a contact’s preferences and addresses, and deletes a contact', async () => {
    const h = await household('band-esc-6');
    const patched = await api(base, 'PATCH', `/v1/contacts/${h.primaryId}`, { token: ADMIN_KEY, body: { phone: '+33 6 11 22 33 44', preferences: { priority: 3, channels: ['sms'] } } });
    expect(patched.status).toBe(200);
    expect(patched.body).toMatchObject({ phone: '+33 6 11 22 33 44', preferences: { priority: 3, channels: ['sms'] } });
    expect((await api(base, 'PATCH', `/v1/contacts/${h.primaryId}`, { token: ADMIN_KEY, body: { preferences: { quietHours: { start: '25:00', end: '07:00' } } } })).status).toBe(400);
    expect((await api(base, 'DELETE', `/v1/contacts/${h.secondaryId}`, { token: ADMIN_KEY })).status).toBe(204);
    expect((await api(base, 'DELETE', `/v1/contacts/${h.secondaryId}`, { token: ADMIN_KEY })).status).toBe(404);
    const resident = await api(base, 'GET', `/v1/residents/${h.residentId}`, { token: ADMIN_KEY });
    expect(resident.body.contacts.map((c: any) => c.id)).toEqual([h.primaryId]);
  });
});

describe('escalation across a restart', () => {
  it('sends the steps still due after a restart, each once', async () => {
    const hooks = await webhookReceiver();
    const dataDir = tempDir();
    let vigil = await startTestVigil({}, dataDir);
    try {
      const r = await registerResident(vigil.url, 'band-restart', hooks.url);
      await api(vigil.url, 'PUT', `/v1/residents/${r.residentId}/escalation`, {
        token: ADMIN_KEY,
        body: { critical: { steps: [{ afterS: 0, contacts: 'all', channels: ['webhook'] }, { afterS: 4, contacts: 'all', channels: ['webhook'] }] } },
      });
      expect((await api(vigil.url, 'POST', '/v1/readings', { token: r.token, body: reading('band-restart', 1, Date.now(), { events: ['SOS'] }) })).status).toBe(202);
      await waitFor('step 0', async () => hooks.deliveries.length === 1);
      await vigil.stop();
      vigil = await startTestVigil({}, dataDir);
      await waitFor('step 1 after the restart', async () => hooks.deliveries.length === 2, 15_000);
      await new Promise((res) => setTimeout(res, 1500));
      const ids = hooks.deliveries.map((d) => String(d.headers['x-vigil-delivery']));
      expect(ids.map((id) => id.split(':')[1])).toEqual(['0', '1']);
      expect(new Set(ids).size).toBe(2);
    } finally {
      await vigil.stop();
      await hooks.close();
    }
  });
});
