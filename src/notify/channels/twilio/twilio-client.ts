/**
 * A small client for the two Twilio REST resources Vigil uses, over `fetch`:
 * - Messages: `POST {baseUrl}/2010-04-01/Accounts/{AccountSid}/Messages.json`
 *   (https://www.twilio.com/docs/messaging/api/message-resource#create-a-message-resource)
 * - Calls: `POST {baseUrl}/2010-04-01/Accounts/{AccountSid}/Calls.json`
 *   (https://www.twilio.com/docs/voice/api/call-resource#create-a-call-resource)
 *
 * Requests are `application/x-www-form-urlencoded` with HTTP Basic auth (account SID as the
 * user, auth token as the password); Twilio answers 201 with the resource as JSON, or an error
 * `{code, message, more_info, status}` (https://www.twilio.com/docs/usage/twilios-response).
 * The base URL is configurable, so any provider speaking this protocol works.
 *
 * Error classes, because the outbox retries what may succeed later and fails the rest at once:
 * - 4xx that no retry can fix (an invalid number, 21211; wrong credentials, 401/403; unknown
 *   account, 404) → `PermanentDeliveryError` carrying Twilio's code and message;
 * - 408/409/425/429, 5xx, timeouts and network errors → a plain Error (retried).
 *
 * One call is one POST: the client never retries by itself (the outbox owns retries). Twilio's
 * REST API has no idempotency key, so a request that times out after Twilio accepted it is sent
 * again by the outbox's retry: at-least-once, a duplicate SMS rather than a missed alert.
 */
import type { Contact } from '../../../store/types.js';
import { PermanentDeliveryError } from '../../types.js';

export interface TwilioClientOptions {
  accountSid: string;
  authToken: string;
  /** `https://api.twilio.com`, or a compatible provider's base URL (a trailing slash is fine). */
  baseUrl: string;
  /** Timeout of one request. */
  timeoutMs: number;
}

export interface CreateMessageParams {
  To: string;
  From: string;
  Body: string;
  StatusCallback?: string;
}

export interface CreateCallParams {
  To: string;
  From: string;
  /** TwiML run when the call is answered (at most 4000 characters). */
  Twiml: string;
  StatusCallback?: string;
}

/** What the SMS and voice channels share. */
export interface TwilioChannelOptions {
  client: TwilioClient;
  /** The number messages and calls come from (E.164). */
  from: string;
  /** Public base URL of this Vigil, where Twilio calls back (the status callback, the call's keypress). */
  publicUrl: string;
}

/** What Vigil reads of a created Message or Call resource. */
export interface TwilioResource {
  sid: string;
  status?: string;
}

/** Twilio refused the request for good (see `code` at https://www.twilio.com/docs/api/errors/{code}). */
export class TwilioRequestError extends PermanentDeliveryError {
  constructor(
    readonly httpStatus: number,
    readonly code: number | null,
    readonly twilioMessage: string,
  ) {
    super(`twilio ${httpStatus}${code !== null ? ` error ${code}` : ''}: ${twilioMessage}`);
    this.name = 'TwilioRequestError';
  }
}

/** Statuses worth retrying: Twilio (or a proxy) may take the same request later. */
const RETRY_STATUS = new Set([408, 409, 425, 429]);
/**
 * 400 answers that are about load, not about the request: 21611 "This 'From' number has
 * exceeded the maximum number of queued messages"; 20429 "Too Many Requests".
 */
const RETRY_CODES = new Set([20429, 21611]);

/**
 * Outbox rows are stored unencrypted and carry no personal data; Twilio's error messages quote
 * the number ("The 'To' number +15005550001 is not a valid phone number."), so numbers go.
 */
export const redactNumbers = (text: string): string => text.replace(/\+[\d ().-]*\d|\b\d[\d ().-]{5,}\d\b/g, '[number]');

export class TwilioClient {
  private readonly base: string;
  private readonly authorization: string;

  constructor(private readonly o: TwilioClientOptions) {
    this.base = `${o.baseUrl.replace(/\/+$/, '')}/2010-04-01/Accounts/${encodeURIComponent(o.accountSid)}`;
    this.authorization = 'Basic ' + Buffer.from(`${o.accountSid}:${o.authToken}`, 'utf8').toString('base64');
  }

  /** Sends an SMS; resolves with the Message resource (`sid` SM…). */
  createMessage(p: CreateMessageParams): Promise<TwilioResource> {
    const form = new URLSearchParams({ To: p.To, From: p.From, Body: p.Body });
    if (p.StatusCallback) form.set('StatusCallback', p.StatusCallback);
    return this.create('Messages', form);
  }

  /**
   * Places a call running the given TwiML; resolves with the Call resource (`sid` CA…). The
   * status callback is asked for the `completed` event only: it carries the call's final status
   * (completed, busy, no-answer, failed, canceled), which is all the outbox records.
   */
  createCall(p: CreateCallParams): Promise<TwilioResource> {
    const form = new URLSearchParams({ To: p.To, From: p.From, Twiml: p.Twiml });
    if (p.StatusCallback) {
      form.set('StatusCallback', p.StatusCallback);
      form.set('StatusCallbackEvent', 'completed');
      form.set('StatusCallbackMethod', 'POST');
    }
    return this.create('Calls', form);
  }

  private async create(resource: 'Messages' | 'Calls', form: URLSearchParams): Promise<TwilioResource> {
    let res: Response;
    let text: string;
    try {
      res = await fetch(`${this.base}/${resource}.json`, {
        method: 'POST',
        headers: {
          authorization: this.authorization,
          'content-type': 'application/x-www-form-urlencoded',
          accept: 'application/json',
          'user-agent': 'Vigil/1',
        },
        body: form.toString(),
        signal: AbortSignal.timeout(this.o.timeoutMs),
      });
      text = await res.text();
    } catch (err) {
      const e = err as Error & { cause?: { code?: string } };
      const why = e.name === 'TimeoutError' ? `timed out after ${this.o.timeoutMs} ms` : e.cause?.code ?? e.message;
      throw new Error(`twilio ${resource} request failed: ${why}`);
    }
    let json: Record<string, unknown> | null = null;
    try {
      const parsed: unknown = JSON.parse(text);
      if (parsed !== null && typeof parsed === 'object') json = parsed as Record<string, unknown>;
    } catch {
      // A proxy's HTML error page: the status decides.
    }
    if (res.ok) {
      if (typeof json?.sid !== 'string' || json.sid === '') throw new Error(`twilio ${resource} answered ${res.status} without a sid`);
      return { sid: json.sid, status: typeof json.status === 'string' ? json.status : undefined };
    }
    const code = typeof json?.code === 'number' ? json.code : null;
    const message = redactNumbers(typeof json?.message === 'string' ? json.message : text.slice(0, 200) || res.statusText);
    if (res.status >= 500 || RETRY_STATUS.has(res.status) || (code !== null && RETRY_CODES.has(code)))
      throw new Error(`twilio ${resource} answered ${res.status}${code !== null ? ` error ${code}` : ''}: ${message}`);
    throw new TwilioRequestError(res.status, code, message);
  }
}

/**
 * The contact's number for SMS and calls: formatting (spaces, dashes, dots, brackets) removed,
 * as Twilio wants E.164 (`+` and digits). No contact, or no number → a permanent failure.
 */
export function phoneOf(contact: Contact | null, channel: string): string {
  if (!contact) throw new PermanentDeliveryError(`the contact no longer exists: no ${channel} sent`);
  const phone = contact.phone?.replace(/[\s().-]/g, '') ?? '';
  if (!phone) throw new PermanentDeliveryError(`contact ${contact.id} has no phone number for ${channel}`);
  return phone;
}
