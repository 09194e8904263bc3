import { describe, expect, it } from 'vitest';
import { twilioSignature, validateTwilioSignature } from './twilio-signature.js';

// The worked example of Twilio's "Webhooks security" guide
// (https://www.twilio.com/docs/usage/webhooks/webhooks-security): auth token 12345, this URL and
// these POST parameters. The guide has printed it with two sets of phone numbers over the years;
// both published signatures must come out.
const TOKEN = '12345';
const URL = 'https://mycompany.com/myapp.php?foo=1&bar=2';
const EXAMPLES = [
  { caller: '+14158675310', signature: 'GvWf1cFY/Q7PnoempGyD5oXAezc=' },
  { caller: '+12349013030', signature: '0/KCTR6DLpKmkAf8muzZqo1nDgQ=' },
];
const params = (caller: string) => ({ CallSid: 'CA1234567890ABCDE', Caller: caller, Digits: '1234', From: caller, To: '+18005551212' });

describe('X-Twilio-Signature', () => {
  it.each(EXAMPLES)('matches the documented example ($signature)', ({ caller, signature }) => {
    expect(twilioSignature(TOKEN, URL, params(caller))).toBe(signature);
    expect(validateTwilioSignature(TOKEN, signature, URL, params(caller))).toBe(true);
  });

  it('sorts the parameters by name, whatever order they came in', () => {
    const { caller, signature } = EXAMPLES[0];
    const p = params(caller);
    const shuffled = new URLSearchParams([['To', p.To], ['Digits', p.Digits], ['From', p.From], ['CallSid', p.CallSid], ['Caller', p.Caller]]);
    expect(twilioSignature(TOKEN, URL, shuffled)).toBe(signature);
  });

  it('signs a repeated name once per value, values sorted', () => {
    const a = twilioSignature('t', 'https://x.test/h', new URLSearchParams([['E', 'b'], ['E', 'a']]));
    expect(a).toBe(twilioSignature('t', 'https://x.test/h', { E: ['a', 'b'] }));
    expect(a).toBe(twilioSignature('t', 'https://x.test/hEaEb'));
  });

  it('rejects a changed parameter, an added one, another URL or query, another token, a missing or cut header', () => {
    const { caller, signature } = EXAMPLES[0];
    const p = params(caller);
    expect(validateTwilioSignature(TOKEN, signature, URL, { ...p, Digits: '1' })).toBe(false);
    expect(validateTwilioSignature(TOKEN, signature, URL, { ...p, Extra: '' })).toBe(false);
    expect(validateTwilioSignature(TOKEN, signature, URL.replace('foo=1', 'foo=2'), p)).toBe(false);
    expect(validateTwilioSignature(TOKEN, signature, URL.replace('https:', 'http:'), p)).toBe(false);
    expect(validateTwilioSignature('54321', signature, URL, p)).toBe(false);
    expect(validateTwilioSignature(TOKEN, undefined, URL, p)).toBe(false);
    expect(validateTwilioSignature(TOKEN, '', URL, p)).toBe(false);
    expect(validateTwilioSignature(TOKEN, signature.slice(0, -1), URL, p)).toBe(false);
    expect(validateTwilioSignature('', twilioSignature('', URL, p), URL, p)).toBe(false);
  });

  it("accepts the URL with or without the scheme's default port, as Twilio's libraries do", () => {
    const p = { Body: 'OK' };
    const withPort = twilioSignature(TOKEN, 'https://vigil.example.org:443/v1/providers/twilio/sms', p);
    expect(validateTwilioSignature(TOKEN, withPort, 'https://vigil.example.org/v1/providers/twilio/sms', p)).toBe(true);
    const without = twilioSignature(TOKEN, 'https://vigil.example.org/v1/providers/twilio/sms', p);
    expect(validateTwilioSignature(TOKEN, without, 'https://vigil.example.org:443/v1/providers/twilio/sms', p)).toBe(true);
    // Not another port.
    expect(validateTwilioSignature(TOKEN, without, 'https://vigil.example.org:8443/v1/providers/twilio/sms', p)).toBe(false);
  });
});
