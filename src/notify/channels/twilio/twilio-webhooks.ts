/**
 * Twilio's inbound webhooks (docs/notifications-twilio.md):
 * - `POST /v1/providers/twilio/sms`: an SMS to our number. A body starting with "OK"
 *   acknowledges every open alert that was sent to that number; the answer is a TwiML reply.
 * - `POST /v1/providers/twilio/voice?alert=…&contact=…`: the keypress of an alert call's
 *   `<Gather>`; "1" acknowledges that alert for that contact.
 * - `POST /v1/providers/twilio/status`: a Message's or Call's status callback; final outcomes
 *   are recorded on the outbox row whose providerId is the SID.
 *
 * Every request must carry a valid `X-Twilio-Signature` over `{publicUrl}{path and query}` and
 * its form parameters (twilio-signature.ts); anything else is a 403 and changes nothing. The
 * routes live in their own Fastify scope, the only one that parses
 * `application/x-www-form-urlencoded` (the rest of the API takes JSON only).
 *
 * Twilio may deliver a webhook more than once; every effect here is idempotent (an alert
 * acknowledged twice stays acknowledged once, a delivery report recorded twice is one report).
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { VigilError } from '../../../core/errors.js';
import type { AcknowledgementService } from '../../types.js';
import { SIGNATURE_HEADER, validateTwilioSignature } from './twilio-signature.js';
import { messageResponse, sayResponse, xml, XML_DECLARATION } from './twiml.js';

export interface TwilioWebhookOptions {
  /** Twilio auth token: the key of the signatures. */
  authToken: string;
  /** Public base URL of this Vigil, as the URLs given to Twilio start (what Twilio signs). */
  publicUrl: string;
  acks: AcknowledgementService;
}

/** "OK", "ok!", "Ok thanks", "okay": a reply that starts with the word OK. */
export const isAcknowledgement = (body: string): boolean => /^[\s"'“‘]*ok(?:ay)?(?![a-z0-9])/i.test(body);

/**
 * Twilio's default opt-out, opt-in and help keywords: Twilio answers those itself (Advanced
 * Opt-Out), so Vigil sends no reply of its own to them.
 * https://help.twilio.com/articles/223134027
 */
const CARRIER_KEYWORDS = new Set(['STOP', 'STOPALL', 'UNSUBSCRIBE', 'CANCEL', 'END', 'QUIT', 'START', 'YES', 'UNSTOP', 'HELP', 'INFO']);

export const SMS_REPLIES = {
  acknowledged: (n: number) => (n === 1 ? 'Thank you: the alert is acknowledged.' : `Thank you: ${n} alerts are acknowledged.`),
  nothingOpen: 'Thank you. There is no open alert sent to this number to acknowledge.',
  howTo: 'To acknowledge an alert from Vigil, reply OK.',
  failed: 'Sorry, your reply could not be recorded. Please reply OK again.',
} as const;

export const VOICE_REPLIES = {
  acknowledged: 'Thank you. The alert is acknowledged. Goodbye.',
  notOpen: 'This alert is no longer open: nothing was changed. Goodbye.',
  nothingDone: 'Nothing was done. Goodbye.',
  failed: 'Sorry, the acknowledgement did not go through. Press 1 to try again.',
} as const;

/** Message statuses and call statuses that end a notification (others — queued, sent, ringing… — are steps). */
const DELIVERED = new Set(['delivered', 'read']);
const CALL_DELIVERED = new Set(['completed']);
const FAILED = new Set(['failed', 'undelivered', 'busy', 'no-answer', 'canceled']);

type Form = URLSearchParams;
const formOf = (req: FastifyRequest): Form => (req.body instanceof URLSearchParams ? req.body : new URLSearchParams());
const field = (form: Form, name: string): string => form.get(name) ?? '';

/** What a status callback reports, or null when it is not a final outcome. */
export function statusReport(form: Form): { channel: 'sms' | 'voice'; sid: string; status: 'delivered' | 'failed'; error: string | null } | null {
  const messageSid = field(form, 'MessageSid') || field(form, 'SmsSid');
  const callSid = field(form, 'CallSid');
  let channel: 'sms' | 'voice';
  let sid: string;
  let status: string;
  if (messageSid) {
    channel = 'sms';
    sid = messageSid;
    status = field(form, 'MessageStatus') || field(form, 'SmsStatus');
  } else if (callSid) {
    channel = 'voice';
    sid = callSid;
    status = field(form, 'CallStatus');
  } else return null;
  if (DELIVERED.has(status) && channel === 'sms') return { channel, sid, status: 'delivered', error: null };
  if (CALL_DELIVERED.has(status) && channel === 'voice') return { channel, sid, status: 'delivered', error: null };
  if (!FAILED.has(status)) return null;
  const code = field(form, 'ErrorCode');
  const message = field(form, 'ErrorMessage');
  const error = [`twilio ${channel === 'sms' ? 'message' : 'call'} ${status}`, code && `error ${code}`, message].filter(Boolean).join(': ');
  return { channel, sid, status: 'failed', error };
}

export function registerTwilioWebhooks(app: FastifyInstance, opts: TwilioWebhookOptions): void {
  const base = opts.publicUrl.replace(/\/+$/, '');
  const { acks } = opts;

  app.register(async (scope) => {
    // This scope takes forms only (what Twilio posts): the app's JSON parser, inherited, is removed here.
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, (_req, body, done) => {
      done(null, new URLSearchParams(body as string));
    });

    scope.addHook('preHandler', async (req) => {
      const header = req.headers[SIGNATURE_HEADER];
      const signature = typeof header === 'string' ? header : undefined;
      if (!validateTwilioSignature(opts.authToken, signature, base + req.url, formOf(req))) {
        // Every callback failing this way usually means notify.publicUrl is not the URL Twilio calls.
        req.log.warn({ signedUrl: base + req.url, signature: Boolean(signature) }, 'twilio webhook refused: bad signature');
        throw new VigilError('FORBIDDEN', signature ? 'X-Twilio-Signature does not match this request' : 'missing X-Twilio-Signature');
      }
    });

    scope.post('/v1/providers/twilio/sms', async (req, reply) => {
      const form = formOf(req);
      const from = field(form, 'From');
      const body = field(form, 'Body');
      reply.type('text/xml');
      if (CARRIER_KEYWORDS.has(body.trim().toUpperCase())) return messageResponse(null);
      if (!isAcknowledgement(body) || !from) return messageResponse(SMS_REPLIES.howTo);
      try {
        const ids = await acks.acknowledgeByPhone(from, 'sms');
        return messageResponse(ids.length > 0 ? SMS_REPLIES.acknowledged(ids.length) : SMS_REPLIES.nothingOpen);
      } catch (err) {
        // The person must learn it did not work, so they try again: a reply, not a 500.
        req.log.error({ err, messageSid: field(form, 'MessageSid') }, 'twilio SMS acknowledgement failed');
        return messageResponse(SMS_REPLIES.failed);
      }
    });

    scope.post('/v1/providers/twilio/voice', async (req, reply) => {
      const form = formOf(req);
      const q = req.query as { alert?: unknown; contact?: unknown };
      const alert = typeof q.alert === 'string' ? q.alert : '';
      const contact = typeof q.contact === 'string' ? q.contact : '';
      reply.type('text/xml');
      if (field(form, 'Digits') !== '1' || !alert || !contact) return sayResponse(VOICE_REPLIES.nothingDone);
      try {
        const done = await acks.acknowledgeAlert(alert, contact, 'voice');
        return sayResponse(done ? VOICE_REPLIES.acknowledged : VOICE_REPLIES.notOpen);
      } catch (err) {
        req.log.error({ err, callSid: field(form, 'CallSid') }, 'twilio voice acknowledgement failed');
        // Offer the keypress again, to this same (signed) URL.
        const retry = xml(base + req.url);
        return `${XML_DECLARATION}<Response><Gather numDigits="1" action="${retry}" method="POST"><Say>${xml(VOICE_REPLIES.failed)}</Say></Gather><Say>${xml(VOICE_REPLIES.nothingDone)}</Say></Response>`;
      }
    });

    scope.post('/v1/providers/twilio/status', async (req, reply) => {
      const report = statusReport(formOf(req));
      // A failure here is a 500: Twilio may then retry the callback (recording is idempotent).
      if (report) await acks.recordDelivery(report.channel, report.sid, report.status, report.error);
      return reply.code(204).send();
    });
  });
}
