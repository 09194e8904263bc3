import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../../../core/config.js';
import { alertMessage } from '../../messages.js';
import { PermanentDeliveryError, type Channel, type Delivery } from '../../types.js';
import { startFakeTwilio, type FakeTwilio } from '../twilio/testing/fake-twilio.js';
import { testAlert, testContact, testDelivery } from '../../testing/deliveries.js';
import { createTwilioChannels, publicBaseUrl } from '../twilio/twilio-channels.js';
import { TwilioClient } from '../twilio/twilio-client.js';
import { SmsChannel } from './sms-channel.js';

const PUBLIC = 'https://vigil.example.org';
const FROM = '+15017122661';
let twilio: FakeTwilio;
let sms: SmsChannel;

beforeAll(async () => {
  twilio = await startFakeTwilio();
  const client = new TwilioClient({ accountSid: twilio.accountSid, authToken: twilio.authToken, baseUrl: twilio.url, timeoutMs: 2000 });
  sms = new SmsChannel({ client, from: FROM, publicUrl: PUBLIC + '/' });
});
afterAll(() => twilio.close());

/** What the outbox sender does with one row: retry a plain Error, stop at success or a permanent error. */
async function deliverLikeTheOutbox(channel: Channel, d: Delivery, maxAttempts = 5) {
  for (let attempt = 1; ; attempt++) {
    try {
      return { attempts: attempt, result: await channel.send({ ...d, item: { ...d.item, attempts: attempt } }) };
    } catch (err) {
      if (err instanceof PermanentDeliveryError || attempt === maxAttempts) return { attempts: attempt, error: err as Error };
    }
  }
}

describe('SmsChannel', () => {
  it('sends the alert text and how to acknowledge, to the contact, with the status callback', async () => {
    const before = twilio.requests.length;
    const d = testDelivery('sms', { contact: testContact({ phone: '+44 (7700) 900-123' }) });
    const { providerId } = await sms.send(d);
    expect(sms.name).toBe('sms');
    expect(twilio.requests.length).toBe(before + 1);
    const created = twilio.created.at(-1)!;
    expect(providerId).toBe(created.sid);
    expect(providerId).toMatch(/^SM/);
    expect(created.params).toEqual({
      To: ['+447700900123'],
      From: [FROM],
      Body: [`${alertMessage(d.alert, d.resident).text} Reply OK to acknowledge.`],
      StatusCallback: [`${PUBLIC}/v1/providers/twilio/status`],
    });
    expect(twilio.param(created, 'Body')).toBe('Rose Tyler may have fallen at 2025-03-14 09:30 UTC. Reply OK to acknowledge.');
  });

  it('a deleted contact or one without a phone fails for good, and nothing is sent', async () => {
    const before = twilio.requests.length;
    await expect(sms.send(testDelivery('sms', { contact: null }))).rejects.toBeInstanceOf(PermanentDeliveryError);
    await expect(sms.send(testDelivery('sms', { contact: testContact({ phone: null }) }))).rejects.toBeInstanceOf(PermanentDeliveryError);
    await expect(sms.send(testDelivery('sms', { contact: testContact({ phone: ' ' }) }))).rejects.toBeInstanceOf(PermanentDeliveryError);
    expect(twilio.requests.length).toBe(before);
  });

  it('server errors and rate limits are retried by the outbox, and the SMS goes out exactly once', async () => {
    const requests = twilio.requests.length;
    const created = twilio.created.length;
    twilio.failNext(1, 500);
    twilio.failNext(1, 429);
    twilio.failNext(1, 503);
    const outcome = await deliverLikeTheOutbox(sms, testDelivery('sms', { alert: testAlert({ id: 'alr_retry' }) }));
    expect(outcome.error).toBeUndefined();
    expect(outcome.attempts).toBe(4);
    expect(twilio.requests.length).toBe(requests + 4);
    expect(twilio.created.length).toBe(created + 1);
    expect(outcome.result?.providerId).toBe(twilio.created.at(-1)!.sid);
  });

  it('an invalid number fails for good after one request: no retry, nothing sent', async () => {
    const requests = twilio.requests.length;
    const created = twilio.created.length;
    const outcome = await deliverLikeTheOutbox(sms, testDelivery('sms', { contact: testContact({ phone: '12' }) }));
    expect(outcome.error).toBeInstanceOf(PermanentDeliveryError);
    expect(outcome.error?.message).toContain('21211');
    expect(outcome.attempts).toBe(1);
    expect(twilio.requests.length).toBe(requests + 1);
    expect(twilio.created.length).toBe(created);
  });

  it('a provider that stays down exhausts the attempts without sending anything', async () => {
    const created = twilio.created.length;
    twilio.failNext(3, 500);
    const outcome = await deliverLikeTheOutbox(sms, testDelivery('sms'), 3);
    expect(outcome.error).toBeDefined();
    expect(outcome.error).not.toBeInstanceOf(PermanentDeliveryError);
    expect(twilio.created.length).toBe(created);
  });
});

describe('createTwilioChannels', () => {
  const config = {
    'twilio.accountSid': 'AC123',
    'twilio.authToken': 'secret',
    'twilio.baseUrl': 'https://api.twilio.com',
    'twilio.fromNumber': FROM,
    'notify.publicUrl': '',
    host: '127.0.0.1',
    port: 8080,
  };

  it('makes the sms and voice channels when an account is configured, none otherwise', () => {
    expect(createTwilioChannels(config).map((c) => c.name)).toEqual(['sms', 'voice']);
    expect(createTwilioChannels({ ...config, 'twilio.accountSid': '' })).toEqual([]);
  });

  it('refuses an account without token or number', () => {
    expect(() => createTwilioChannels({ ...config, 'twilio.fromNumber': '' })).toThrow(ConfigError);
    expect(() => createTwilioChannels({ ...config, 'twilio.authToken': '' })).toThrow(/twilio.authToken/);
  });

  it('calls back at notify.publicUrl, or http://host:port when it is empty', () => {
    expect(publicBaseUrl(config)).toBe('http://127.0.0.1:8080');
    expect(publicBaseUrl({ ...config, 'notify.publicUrl': 'https://vigil.example.org/' })).toBe('https://vigil.example.org');
  });
});
