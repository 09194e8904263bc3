import type { FastifyInstance } from 'fastify';
import { pino } from 'pino';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createHttpServer } from '../../../api/http-server.js';
import type { AcknowledgementService } from '../../types.js';
import { SmsChannel } from '../sms/sms-channel.js';
import { VoiceChannel } from '../voice/voice-channel.js';
import { testAlert, testDelivery } from '../../testing/deliveries.js';
import { startFakeTwilio, type FakeTwilio } from './testing/fake-twilio.js';
import { TwilioClient } from './twilio-client.js';
import { twilioSignature } from './twilio-signature.js';
import { isAcknowledgement, registerTwilioWebhooks, SMS_REPLIES, VOICE_REPLIES } from './twilio-webhooks.js';

/**
 * Vigil sits behind a reverse proxy at PUBLIC: Twilio signs the public URL, the request reaches
 * the local server (`via`).
 */
const PUBLIC = 'https://vigil.example.org';
const SMS_URL = `${PUBLIC}/v1/providers/twilio/sms`;
const STATUS_URL = `${PUBLIC}/v1/providers/twilio/status`;
const voiceUrl = (alert: string, contact: string) => `${PUBLIC}/v1/providers/twilio/voice?alert=${alert}&contact=${contact}`;

type Call = [string, ...unknown[]];
/** An AcknowledgementService that records its calls; what it answers is set per test. */
class FakeAcks implements AcknowledgementService {
  calls: Call[] = [];
  openAlerts: string[] = ['alr_1'];
  alertOpen = true;
  fail = false;
  async acknowledgeByPhone(phone: string, via: 'sms' | 'voice'): Promise<string[]> {
    this.calls.push(['acknowledgeByPhone', phone, via]);
    if (this.fail) throw new Error('store down');
    return this.openAlerts;
  }
  async acknowledgeAlert(alertId: string, contactId: string, via: 'sms' | 'voice' | 'push' | 'email'): Promise<boolean> {
    this.calls.push(['acknowledgeAlert', alertId, contactId, via]);
    if (this.fail) throw new Error('store down');
    return this.alertOpen;
  }
  async recordDelivery(channel: string, providerId: string, status: 'delivered' | 'failed', error: string | null): Promise<void> {
    this.calls.push(['recordDelivery', channel, providerId, status, error]);
  }
}
const acks = new FakeAcks();

let twilio: FakeTwilio;
let app: FastifyInstance;
let local: string;

beforeAll(async () => {
  twilio = await startFakeTwilio();
  app = createHttpServer({ log: pino({ level: 'silent' }), bodyLimit: 1 << 20 });
  registerTwilioWebhooks(app, { authToken: twilio.authToken, publicUrl: PUBLIC + '/', acks });
  app.post('/v1/echo', async (req) => req.body);
  local = await app.listen({ port: 0, host: '127.0.0.1' });
});
afterAll(async () => {
  await app.close();
  await twilio.close();
});
beforeEach(() => {
  acks.calls = [];
  acks.openAlerts = ['alr_1'];
  acks.alertOpen = true;
  acks.fail = false;
});

const inboundSms = (body: string, from = '+447700900123') =>
  twilio.webhook(SMS_URL, { MessageSid: 'SM' + 'a'.repeat(32), AccountSid: twilio.accountSid, From: from, To: '+15017122661', Body: body, NumMedia: '0' }, { via: local });
const message = (text: string) => `<?xml version="1.0" encoding="UTF-8"?><Response><Message>${text}</Message></Response>`;
const say = (text: string) => `<?xml version="1.0" encoding="UTF-8"?><Response><Say>${text}</Say></Response>`;

describe('inbound SMS', () => {
  it('"OK" acknowledges the open alerts sent to that number and says so', async () => {
    const res = await inboundSms('OK');
    expect(res.status).toBe(200);
    expect(res.contentType).toMatch(/^text\/xml/);
    expect(res.body).toBe(message(SMS_REPLIES.acknowledged(1)));
    expect(acks.calls).toEqual([['acknowledgeByPhone', '+447700900123', 'sms']]);
    acks.openAlerts = ['alr_1', 'alr_2'];
    expect((await inboundSms('ok')).body).toBe(message('Thank you: 2 alerts are acknowledged.'));
  });

  it.each(['ok!', ' Ok thanks', 'OKAY', 'okay, on my way', '"OK"', 'oK\n'])('%j is an acknowledgement', async (body) => {
    expect(isAcknowledgement(body)).toBe(true);
    await inboundSms(body);
    expect(acks.calls).toEqual([['acknowledgeByPhone', '+447700900123', 'sms']]);
  });

  it.each(['hello', 'Okinawa', 'not ok', 'Thanks', ''])('%j is not: the reply says how to acknowledge', async (body) => {
    expect(isAcknowledgement(body)).toBe(false);
    const res = await inboundSms(body);
    expect(res.status).toBe(200);
    expect(res.body).toBe(message(SMS_REPLIES.howTo));
    expect(acks.calls).toEqual([]);
  });

  it('"OK" with nothing open says so', async () => {
    acks.openAlerts = [];
    expect((await inboundSms('OK')).body).toBe(message(SMS_REPLIES.nothingOpen));
  });

  it("STOP, HELP and YES get no reply of Vigil's (Twilio answers those itself)", async () => {
    for (const body of ['STOP', 'help ', 'Yes']) expect((await inboundSms(body)).body).toBe('<?xml version="1.0" encoding="UTF-8"?><Response/>');
    expect(acks.calls).toEqual([]);
  });

  it('a failure to record is told to the sender, so they reply again', async () => {
    acks.fail = true;
    const res = await inboundSms('OK');
    expect(res.status).toBe(200);
    expect(res.body).toBe(message(SMS_REPLIES.failed));
  });
});

describe('call keypress', () => {
  it('1 acknowledges the alert of the call for its contact', async () => {
    const res = await twilio.webhook(voiceUrl('alr_1', 'con_1'), { CallSid: 'CA' + 'b'.repeat(32), Digits: '1', From: '+15017122661', To: '+447700900123' }, { via: local });
    expect(res.status).toBe(200);
    expect(res.contentType).toMatch(/^text\/xml/);
    expect(res.body).toBe(say(VOICE_REPLIES.acknowledged));
    expect(acks.calls).toEqual([['acknowledgeAlert', 'alr_1', 'con_1', 'voice']]);
  });

  it('another key does nothing', async () => {
    const res = await twilio.webhook(voiceUrl('alr_1', 'con_1'), { CallSid: 'CA1', Digits: '2' }, { via: local });
    expect(res.body).toBe(say(VOICE_REPLIES.nothingDone));
    expect(acks.calls).toEqual([]);
  });

  it('an alert that is no longer open is said to be so', async () => {
    acks.alertOpen = false;
    expect((await twilio.webhook(voiceUrl('alr_1', 'con_1'), { Digits: '1' }, { via: local })).body).toBe(say(VOICE_REPLIES.notOpen));
  });

  it('a failure to record offers the keypress again, at the same signed URL', async () => {
    acks.fail = true;
    const res = await twilio.webhook(voiceUrl('alr_1', 'con_1'), { Digits: '1' }, { via: local });
    expect(res.status).toBe(200);
    expect(res.body).toContain(`<Gather numDigits="1" action="${PUBLIC}/v1/providers/twilio/voice?alert=alr_1&amp;contact=con_1" method="POST">`);
  });

  it("end to end: the Gather action of a call Vigil placed acknowledges that call's alert", async () => {
    const client = new TwilioClient({ accountSid: twilio.accountSid, authToken: twilio.authToken, baseUrl: twilio.url, timeoutMs: 2000 });
    const voice = new VoiceChannel({ client, from: '+15017122661', publicUrl: PUBLIC });
    const d = testDelivery('voice', { alert: testAlert({ id: 'alr_x:1' }) });
    await voice.send(d);
    const twiml = twilio.param(twilio.created.at(-1)!, 'Twiml')!;
    // What Twilio does with the TwiML: unescape the attribute, POST the digits there, signed.
    const action = /action="([^"]+)"/.exec(twiml)![1].replace(/&amp;/g, '&');
    const res = await twilio.webhook(action, { CallSid: 'CA1', Digits: '1' }, { via: local });
    expect(res.status).toBe(200);
    expect(acks.calls).toEqual([['acknowledgeAlert', 'alr_x:1', 'con_1', 'voice']]);
  });
});

describe('status callbacks', () => {
  const status = (params: Record<string, string>) => twilio.webhook(STATUS_URL, { AccountSid: twilio.accountSid, ApiVersion: '2010-04-01', ...params }, { via: local });

  it('a delivered SMS and a completed call are recorded as delivered', async () => {
    expect((await status({ MessageSid: 'SM1', SmsSid: 'SM1', MessageStatus: 'delivered', SmsStatus: 'delivered' })).status).toBe(204);
    expect((await status({ CallSid: 'CA1', CallStatus: 'completed', CallDuration: '12' })).status).toBe(204);
    expect(acks.calls).toEqual([
      ['recordDelivery', 'sms', 'SM1', 'delivered', null],
      ['recordDelivery', 'voice', 'CA1', 'delivered', null],
    ]);
  });

  it('undelivered, failed, busy, no-answer and canceled are recorded as failed, with the error', async () => {
    await status({ MessageSid: 'SM2', MessageStatus: 'undelivered', ErrorCode: '30003' });
    await status({ MessageSid: 'SM3', MessageStatus: 'failed', ErrorCode: '30008', ErrorMessage: 'Unknown error' });
    await status({ CallSid: 'CA2', CallStatus: 'busy' });
    await status({ CallSid: 'CA3', CallStatus: 'no-answer' });
    await status({ CallSid: 'CA4', CallStatus: 'canceled' });
    await status({ CallSid: 'CA5', CallStatus: 'failed', ErrorCode: '32009', ErrorMessage: 'Your TwiML could not be parsed' });
    expect(acks.calls).toEqual([
      ['recordDelivery', 'sms', 'SM2', 'failed', 'twilio message undelivered: error 30003'],
      ['recordDelivery', 'sms', 'SM3', 'failed', 'twilio message failed: error 30008: Unknown error'],
      ['recordDelivery', 'voice', 'CA2', 'failed', 'twilio call busy'],
      ['recordDelivery', 'voice', 'CA3', 'failed', 'twilio call no-answer'],
      ['recordDelivery', 'voice', 'CA4', 'failed', 'twilio call canceled'],
      ['recordDelivery', 'voice', 'CA5', 'failed', 'twilio call failed: error 32009: Your TwiML could not be parsed'],
    ]);
  });

  it('steps on the way (queued, sent, ringing, in-progress) are ignored', async () => {
    for (const s of ['queued', 'accepted', 'sending', 'sent']) expect((await status({ MessageSid: 'SM4', MessageStatus: s })).status).toBe(204);
    for (const s of ['queued', 'initiated', 'ringing', 'in-progress']) await status({ CallSid: 'CA6', CallStatus: s });
    await status({});
    expect(acks.calls).toEqual([]);
  });

  it('end to end: the status callback of an SMS Vigil sent reaches the row by its providerId', async () => {
    const client = new TwilioClient({ accountSid: twilio.accountSid, authToken: twilio.authToken, baseUrl: twilio.url, timeoutMs: 2000 });
    const sms = new SmsChannel({ client, from: '+15017122661', publicUrl: PUBLIC });
    const { providerId } = await sms.send(testDelivery('sms'));
    const callback = twilio.param(twilio.created.at(-1)!, 'StatusCallback')!;
    expect(callback).toBe(STATUS_URL);
    await twilio.webhook(callback, { MessageSid: providerId!, MessageStatus: 'delivered' }, { via: local });
    expect(acks.calls).toEqual([['recordDelivery', 'sms', providerId, 'delivered', null]]);
  });
});

describe('signature', () => {
  const cases: [string, () => Promise<{ status: number; contentType: string; body: string }>][] = [
    ['no signature', () => twilio.webhook(SMS_URL, { From: '+447700900123', Body: 'OK' }, { via: local, signature: null })],
    ['a signature of another token', () =>
      twilio.webhook(SMS_URL, { From: '+447700900123', Body: 'OK' }, { via: local, signature: twilioSignature('other', SMS_URL, { From: '+447700900123', Body: 'OK' }) })],
    ['a signature of other parameters', () =>
      twilio.webhook(SMS_URL, { From: '+447700900999', Body: 'OK' }, { via: local, signature: twilioSignature(twilio.authToken, SMS_URL, { From: '+447700900123', Body: 'OK' }) })],
    ['a signature of another alert (query changed)', () =>
      twilio.webhook(voiceUrl('alr_other', 'con_1'), { Digits: '1' }, { via: local, signature: twilioSignature(twilio.authToken, voiceUrl('alr_1', 'con_1'), { Digits: '1' }) })],
    ['a signature of another host', () =>
      twilio.webhook(STATUS_URL, { MessageSid: 'SM1', MessageStatus: 'delivered' }, {
        via: local,
        signature: twilioSignature(twilio.authToken, STATUS_URL.replace(PUBLIC, 'https://evil.example'), { MessageSid: 'SM1', MessageStatus: 'delivered' }),
      })],
    ['garbage', () => twilio.webhook(STATUS_URL, { CallSid: 'CA1', CallStatus: 'completed' }, { via: local, signature: 'not base64 at all' })],
  ];

  it.each(cases)('%s: 403 problem+json, and nothing happens', async (_name, request) => {
    const res = await request();
    expect(res.status).toBe(403);
    expect(res.contentType).toMatch(/^application\/problem\+json/);
    expect(JSON.parse(res.body)).toMatchObject({ status: 403, code: 'FORBIDDEN' });
    expect(acks.calls).toEqual([]);
  });

  it('only forms are taken (415 for JSON), and the rest of the API still parses JSON', async () => {
    const res = await fetch(`${local}/v1/providers/twilio/sms`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-twilio-signature': 'x' }, body: '{"Body":"OK"}' });
    expect(res.status).toBe(415);
    expect(acks.calls).toEqual([]);
    const echo = await fetch(`${local}/v1/echo`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"a":1}' });
    expect(await echo.json()).toEqual({ a: 1 });
  });
});
