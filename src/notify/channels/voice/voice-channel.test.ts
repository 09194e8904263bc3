import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PermanentDeliveryError } from '../../types.js';
import { startFakeTwilio, wellFormedXml, type FakeTwilio } from '../twilio/testing/fake-twilio.js';
import { testAlert, testContact, testDelivery } from '../../testing/deliveries.js';
import { TwilioClient } from '../twilio/twilio-client.js';
import { callTwiml, VoiceChannel } from './voice-channel.js';

const PUBLIC = 'https://vigil.example.org';
const FROM = '+15017122661';
let twilio: FakeTwilio;
let voice: VoiceChannel;

beforeAll(async () => {
  twilio = await startFakeTwilio();
  const client = new TwilioClient({ accountSid: twilio.accountSid, authToken: twilio.authToken, baseUrl: twilio.url, timeoutMs: 2000 });
  voice = new VoiceChannel({ client, from: FROM, publicUrl: PUBLIC });
});
afterAll(() => twilio.close());

describe('VoiceChannel', () => {
  it('calls the contact with TwiML that reads the alert inside a one-digit Gather', async () => {
    const before = twilio.requests.length;
    const { providerId } = await voice.send(testDelivery('voice'));
    expect(voice.name).toBe('voice');
    expect(twilio.requests.length).toBe(before + 1);
    const call = twilio.created.at(-1)!;
    expect(providerId).toBe(call.sid);
    expect(providerId).toMatch(/^CA/);
    expect(call.kind).toBe('call');
    expect(call.params).toEqual({
      To: ['+447700900123'],
      From: [FROM],
      Twiml: [
        '<Response><Gather numDigits="1" action="https://vigil.example.org/v1/providers/twilio/voice?alert=alr_fall1&amp;contact=con_1" method="POST">' +
          '<Say>Rose Tyler may have fallen at 2025-03-14 09:30 UTC. Press 1 to acknowledge.</Say></Gather>' +
          '<Say>No key pressed. Goodbye.</Say></Response>',
      ],
      StatusCallback: [`${PUBLIC}/v1/providers/twilio/status`],
      StatusCallbackEvent: ['completed'],
      StatusCallbackMethod: ['POST'],
    });
  });

  it('escapes the text and the action URL (a name with & and <, ids that need encoding)', async () => {
    const d = testDelivery('voice', { alert: testAlert({ id: 'alr_a&b' }), contact: testContact({ id: 'con 1' }) });
    d.resident = { ...d.resident!, name: 'Tom & <Jerry>' };
    d.item = { ...d.item, contactId: 'con 1' };
    await voice.send(d);
    const twiml = twilio.param(twilio.created.at(-1)!, 'Twiml')!;
    expect(wellFormedXml(twiml)).toBe(true);
    expect(twiml).toContain('<Say>Tom &amp; &lt;Jerry&gt; may have fallen');
    expect(twiml).toContain('action="https://vigil.example.org/v1/providers/twilio/voice?alert=alr_a%26b&amp;contact=con%201"');
  });

  it('the TwiML stays well-formed whatever the message', () => {
    for (const text of ['"quoted" \'single\'', 'a < b > c & d', '</Say><Hangup/>']) expect(wellFormedXml(callTwiml(text, `${PUBLIC}/x?a=1&b=2`))).toBe(true);
  });

  it('no phone: a permanent failure, no call', async () => {
    const before = twilio.requests.length;
    await expect(voice.send(testDelivery('voice', { contact: testContact({ phone: null }) }))).rejects.toBeInstanceOf(PermanentDeliveryError);
    await expect(voice.send(testDelivery('voice', { contact: null }))).rejects.toBeInstanceOf(PermanentDeliveryError);
    expect(twilio.requests.length).toBe(before);
  });

  it('a failed attempt places no call; the retry places exactly one', async () => {
    const calls = twilio.created.length;
    twilio.failNext(1, 503);
    const err = await voice.send(testDelivery('voice')).catch((e: Error) => e);
    expect(err).toBeInstanceOf(Error);
    expect(err).not.toBeInstanceOf(PermanentDeliveryError);
    expect(twilio.created.length).toBe(calls);
    await voice.send(testDelivery('voice'));
    expect(twilio.created.length).toBe(calls + 1);
  });

  it('an invalid number is permanent', async () => {
    const err = await voice.send(testDelivery('voice', { contact: testContact({ phone: 'call me' }) })).catch((e: Error) => e);
    expect(err).toBeInstanceOf(PermanentDeliveryError);
    expect((err as Error).message).toContain('21211');
  });
});
