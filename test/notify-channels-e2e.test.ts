/**
 * SMS and voice escalation end to end through the running app and a local server speaking
 * Twilio's protocol: the SMS goes out, the provider's delivery report marks it delivered, the
 * contact's "OK" reply acknowledges the alert and cancels the calls still to come; a call's
 * keypress acknowledges too. Every callback is signed as Twilio signs them.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Vigil } from '../src/app.js';
import { startFakeTwilio, type FakeTwilio } from '../src/notify/channels/twilio/testing/fake-twilio.js';
import { ADMIN_KEY, api, freePort, reading, registerResident, startTestVigil, waitFor } from './helpers.js';

describe('SMS and voice escalation through a Twilio-compatible provider', () => {
  let vigil: Vigil;
  let twilio: FakeTwilio;
  let base: string;

  beforeAll(async () => {
    twilio = await startFakeTwilio();
    const port = await freePort();
    vigil = await startTestVigil({
      port,
      'notify.publicUrl': `http://127.0.0.1:${port}`,
      'twilio.accountSid': twilio.accountSid,
      'twilio.authToken': twilio.authToken,
      'twilio.baseUrl': twilio.url,
      'twilio.fromNumber': '+15005550006',
    });
    base = vigil.url;
  });
  afterAll(async () => {
    await vigil?.stop();
    await twilio?.close();
  });

  async function household(deviceId: string, phone: string, policy: object) {
    const r = await registerResident(base, deviceId);
    const c = await api(base, 'POST', `/v1/residents/${r.residentId}/contacts`, { token: ADMIN_KEY, body: { name: 'Daughter', phone } });
    await api(base, 'PUT', `/v1/residents/${r.residentId}/escalation`, { token: ADMIN_KEY, body: { critical: policy } });
    const sos = await api(base, 'POST', '/v1/readings', { token: r.token, body: reading(deviceId, 1, Date.now(), { events: ['SOS'] }) });
    expect(sos.status).toBe(202);
    const alert = await waitFor('SOS', async () => (await api(base, 'GET', `/v1/alerts?residentId=${r.residentId}&type=SOS`, { token: ADMIN_KEY })).body.alerts[0]);
    return { ...r, contactId: c.body.id as string, alert };
  }
  const rows = async (alertId: string) => (await api(base, 'GET', `/v1/alerts/${alertId}/notifications`, { token: ADMIN_KEY })).body.notifications as any[];
  const createdTo = (phone: string, kind: 'message' | 'call') => twilio.created.filter((c) => c.kind === kind && twilio.param(c, 'To') === phone);

  it('texts the contact, records the delivery report, and takes "OK" as an acknowledgement that stops the calls', async () => {
    const h = await household('band-sms', '+33 6 12 34 56 78', {
      steps: [{ afterS: 0, contacts: 'all', channels: ['sms'] }, { afterS: 4, contacts: 'primary', channels: ['voice'] }],
    });
    const [sms] = await waitFor('SMS', async () => createdTo('+33612345678', 'message').length === 1 && createdTo('+33612345678', 'message'));
    expect(twilio.param(sms, 'Body')).toMatch(/Resident of band-sms pressed the SOS button .* Reply OK to acknowledge\./);
    const callback = twilio.param(sms, 'StatusCallback')!;
    expect(callback).toBe(`${base}/v1/providers/twilio/status`);

    const report = await twilio.webhook(callback, { MessageSid: sms.sid, MessageStatus: 'delivered', AccountSid: twilio.accountSid });
    expect(report.status).toBe(204);
    await waitFor('delivered', async () => (await rows(h.alert.id)).find((n) => n.channel === 'sms')?.status === 'delivered');

    const forged = await twilio.webhook(`${base}/v1/providers/twilio/sms`, { From: '+33612345678', Body: 'OK' }, { signature: 'bm90IGEgc2lnbmF0dXJl' });
    expect(forged.status).toBe(403);
    expect((await api(base, 'GET', `/v1/alerts/${h.alert.id}`, { token: ADMIN_KEY })).body.state).toBe('open');

    const reply = await twilio.webhook(`${base}/v1/providers/twilio/sms`, { From: '+33612345678', Body: 'ok thanks', AccountSid: twilio.accountSid });
    expect(reply.status).toBe(200);
    expect(reply.contentType).toContain('xml');
    const alert = (await api(base, 'GET', `/v1/alerts/${h.alert.id}`, { token: ADMIN_KEY })).body;
    expect(alert).toMatchObject({ state: 'acknowledged', acknowledgedBy: `sms:${h.contactId}` });
    await new Promise((r) => setTimeout(r, 4500));
    expect(createdTo('+33612345678', 'call')).toEqual([]);
    expect((await rows(h.alert.id)).map((n) => [n.channel, n.status])).toEqual([['sms', 'delivered'], ['voice', 'cancelled']]);
  });

  it('calls the contact, and pressing 1 acknowledges', async () => {
    const h = await household('band-call', '+15551230001', { steps: [{ afterS: 0, contacts: 'all', channels: ['voice'] }] });
    const [call] = await waitFor('call', async () => createdTo('+15551230001', 'call').length === 1 && createdTo('+15551230001', 'call'));
    const twiml = twilio.param(call, 'Twiml')!;
    const action = /action="([^"]+)"/.exec(twiml)![1].replace(/&amp;/g, '&');
    expect(action).toBe(`${base}/v1/providers/twilio/voice?alert=${encodeURIComponent(h.alert.id)}&contact=${encodeURIComponent(h.contactId)}`);
    const press = await twilio.webhook(action, { Digits: '1', CallSid: call.sid, AccountSid: twilio.accountSid });
    expect(press.status).toBe(200);
    expect((await api(base, 'GET', `/v1/alerts/${h.alert.id}`, { token: ADMIN_KEY })).body).toMatchObject({ state: 'acknowledged', acknowledgedBy: `voice:${h.contactId}` });
  });
});
