import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PermanentDeliveryError } from '../../types.js';
import { startFakeTwilio, type FakeTwilio } from './testing/fake-twilio.js';
import { redactNumbers, TwilioClient, TwilioRequestError } from './twilio-client.js';

let twilio: FakeTwilio;
let client: TwilioClient;

beforeAll(async () => {
  twilio = await startFakeTwilio();
  client = new TwilioClient({ accountSid: twilio.accountSid, authToken: twilio.authToken, baseUrl: twilio.url, timeoutMs: 2000 });
});
afterAll(() => twilio.close());

const message = { To: '+447700900123', From: '+15017122661', Body: 'Rose may have fallen & needs help. Reply OK to acknowledge.', StatusCallback: 'https://vigil.example.org/v1/providers/twilio/status' };

async function rejection(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected a rejection');
}

describe('TwilioClient', () => {
  it('creates a Message: one form-encoded POST with Basic auth, answered with its SM sid', async () => {
    const before = twilio.requests.length;
    const { sid } = await client.createMessage(message);
    expect(sid).toMatch(/^SM[0-9a-f]{32}$/);
    expect(twilio.requests.length).toBe(before + 1);
    const req = twilio.requests.at(-1)!;
    expect(req.method).toBe('POST');
    expect(req.path).toBe(`/2010-04-01/Accounts/${twilio.accountSid}/Messages.json`);
    expect(req.headers['content-type']).toBe('application/x-www-form-urlencoded');
    expect(req.headers.authorization).toBe('Basic ' + Buffer.from(`${twilio.accountSid}:${twilio.authToken}`).toString('base64'));
    expect(req.params).toEqual({ To: [message.To], From: [message.From], Body: [message.Body], StatusCallback: [message.StatusCallback] });
    expect(req.status).toBe(201);
    expect(twilio.created.at(-1)!.sid).toBe(sid);
  });

  it('creates a Call with inline TwiML and a status callback for the completed event', async () => {
    const twiml = '<Response><Say>Hello</Say></Response>';
    const { sid } = await client.createCall({ To: '+447700900123', From: '+15017122661', Twiml: twiml, StatusCallback: message.StatusCallback });
    expect(sid).toMatch(/^CA[0-9a-f]{32}$/);
    const req = twilio.requests.at(-1)!;
    expect(req.path).toBe(`/2010-04-01/Accounts/${twilio.accountSid}/Calls.json`);
    expect(req.params).toEqual({
      To: ['+447700900123'],
      From: ['+15017122661'],
      Twiml: [twiml],
      StatusCallback: [message.StatusCallback],
      StatusCallbackEvent: ['completed'],
      StatusCallbackMethod: ['POST'],
    });
  });

  it('takes a base URL with a trailing slash', async () => {
    const c = new TwilioClient({ accountSid: twilio.accountSid, authToken: twilio.authToken, baseUrl: twilio.url + '/', timeoutMs: 2000 });
    await expect(c.createMessage(message)).resolves.toMatchObject({ sid: expect.stringMatching(/^SM/) });
  });

  it("an invalid number is permanent, with Twilio's code, and the number is not repeated", async () => {
    const err = await rejection(client.createMessage({ ...message, To: '+0123' }));
    expect(err).toBeInstanceOf(PermanentDeliveryError);
    expect(err).toBeInstanceOf(TwilioRequestError);
    expect((err as TwilioRequestError).code).toBe(21211);
    expect((err as TwilioRequestError).httpStatus).toBe(400);
    expect(err.message).toContain('21211');
    expect(err.message).not.toContain('0123');
    const local = await rejection(client.createMessage({ ...message, To: '07700 900123' }));
    expect((local as TwilioRequestError).code).toBe(21211);
    expect(local.message).not.toMatch(/7700|900123/);
  });

  it('wrong credentials (401, also for an unknown account) and a wrong base URL (404) are permanent', async () => {
    const wrongToken = new TwilioClient({ accountSid: twilio.accountSid, authToken: 'nope', baseUrl: twilio.url, timeoutMs: 2000 });
    const e401 = await rejection(wrongToken.createMessage(message));
    expect(e401).toBeInstanceOf(PermanentDeliveryError);
    expect((e401 as TwilioRequestError).code).toBe(20003);
    const otherAccount = new TwilioClient({ accountSid: 'AC' + '0'.repeat(32), authToken: twilio.authToken, baseUrl: twilio.url, timeoutMs: 2000 });
    expect(((await rejection(otherAccount.createMessage(message))) as TwilioRequestError).httpStatus).toBe(401);
    const wrongBase = new TwilioClient({ accountSid: twilio.accountSid, authToken: twilio.authToken, baseUrl: twilio.url + '/v9', timeoutMs: 2000 });
    const e404 = await rejection(wrongBase.createMessage(message));
    expect(e404).toBeInstanceOf(PermanentDeliveryError);
    expect((e404 as TwilioRequestError).httpStatus).toBe(404);
  });

  it.each([500, 503, 429] as const)('%i is transient: a plain Error, nothing created', async (status) => {
    const created = twilio.created.length;
    twilio.failNext(1, status);
    const err = await rejection(client.createMessage(message));
    expect(err).not.toBeInstanceOf(PermanentDeliveryError);
    expect(err.message).toContain(String(status));
    expect(twilio.created.length).toBe(created);
  });

  it('a timeout is transient', async () => {
    const c = new TwilioClient({ accountSid: twilio.accountSid, authToken: twilio.authToken, baseUrl: twilio.url, timeoutMs: 100 });
    twilio.delayNext(400);
    const err = await rejection(c.createMessage(message));
    expect(err).not.toBeInstanceOf(PermanentDeliveryError);
    expect(err.message).toMatch(/timed out/);
  });

  it('a provider that is down is transient', async () => {
    const down = await startFakeTwilio();
    const url = down.url;
    await down.close();
    const c = new TwilioClient({ accountSid: 'AC1', authToken: 't', baseUrl: url, timeoutMs: 2000 });
    const err = await rejection(c.createMessage(message));
    expect(err).not.toBeInstanceOf(PermanentDeliveryError);
    expect(err.message).toMatch(/request failed/);
  });

  it('redacts phone numbers from provider messages', () => {
    expect(redactNumbers("The 'To' number +44 7700 900123 is not a valid phone number.")).toBe("The 'To' number [number] is not a valid phone number.");
    expect(redactNumbers('The number 447700900123 and (07700) 900-123')).toBe('The number [number] and ([number]');
    expect(redactNumbers('error 21211 after 5000 ms')).toBe('error 21211 after 5000 ms');
  });
});
