/**
 * A local stand-in for the Twilio REST API, for tests: a node:http server on 127.0.0.1 that
 * checks requests the way Twilio documents them and answers like Twilio.
 *
 * - `POST /2010-04-01/Accounts/{AccountSid}/Messages.json` and `.../Calls.json` only (other
 *   paths 404 with Twilio error 20404, other methods 405);
 * - HTTP Basic auth with the account SID and auth token (else 401, error 20003), and the SID of
 *   the path must be the authenticated account's (else 404, 20404);
 * - `application/x-www-form-urlencoded` bodies only (Twilio reads nothing else: a JSON body has
 *   no `To`, so 400 21604 / 21201);
 * - required parameters: Messages To, From, Body; Calls To, From, and Url or Twiml;
 *   StatusCallback must be an absolute http(s) URL; StatusCallbackEvent one of initiated,
 *   ringing, answered, completed (21626); Twiml at most 4000 characters and well-formed;
 * - `To` must be E.164 (`+` and up to 15 digits) else 400 `{code: 21211, message, more_info, status}`;
 * - success: 201 with the resource (`sid` SM… or CA…, status `queued`).
 *
 * `failNext(n, status)` makes the next n requests answer 500/503/429 before anything is created;
 * `delayNext(ms)` answers the next request late, after it was created (a client timeout that
 * Twilio did not see). Every request is recorded. `webhook()` plays Twilio calling back: a
 * signed form POST to one of Vigil's URLs.
 */
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { twilioSignature } from '../twilio-signature.js';

export interface RecordedRequest {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  rawBody: string;
  /** The form, name → values. */
  params: Record<string, string[]>;
  /** What the fake answered. */
  status: number;
}

export interface CreatedResource {
  sid: string;
  kind: 'message' | 'call';
  params: Record<string, string[]>;
}

export interface FakeTwilio {
  /** Base URL to give the client (`twilio.baseUrl`). */
  readonly url: string;
  readonly accountSid: string;
  readonly authToken: string;
  readonly requests: RecordedRequest[];
  /** Messages and calls created (what would have reached a phone). */
  readonly created: CreatedResource[];
  failNext(n: number, status?: 429 | 500 | 503): void;
  delayNext(ms: number): void;
  /** One value of a parameter of a created resource. */
  param(resource: CreatedResource, name: string): string | undefined;
  /**
   * POSTs a form to `url`, signed as Twilio would (or with `opts.signature`; no header when
   * null). `opts.via`: the origin the request really goes to, as through a reverse proxy — the
   * signature stays over `url`, the public URL Twilio was given.
   */
  webhook(url: string, params: Record<string, string>, opts?: { signature?: string | null; via?: string }): Promise<{ status: number; contentType: string; body: string }>;
  close(): Promise<void>;
}

const E164 = /^\+[1-9]\d{1,14}$/;
const CALL_EVENTS = new Set(['initiated', 'ringing', 'answered', 'completed']);

/** Tags balanced and every `&` an entity: enough to catch TwiML that was not escaped. */
export function wellFormedXml(doc: string): boolean {
  if (/&(?!(?:amp|lt|gt|quot|apos|#\d+|#x[0-9a-f]+);)/i.test(doc)) return false;
  const stack: string[] = [];
  const text = doc.replace(/^<\?xml[^>]*\?>/, '');
  for (const m of text.matchAll(/<(\/?)([A-Za-z][\w:-]*)((?:\s+[\w:-]+="[^"<]*")*)\s*(\/?)>|<|>/g)) {
    if (m[0] === '<' || m[0] === '>') return false;
    const [, closing, name, , selfClosing] = m;
    if (closing) {
      if (stack.pop() !== name) return false;
    } else if (!selfClosing) stack.push(name);
  }
  return stack.length === 0;
}

function absoluteHttpUrl(value: string): boolean {
  try {
    const u = new URL(value);
    return u.protocol === 'http:' || u.protocol === 'https:';
  } catch {
    return false;
  }
}

const sid = (prefix: string) => prefix + randomBytes(16).toString('hex');

export async function startFakeTwilio(opts: { accountSid?: string; authToken?: string } = {}): Promise<FakeTwilio> {
  const accountSid = opts.accountSid ?? sid('AC');
  const authToken = opts.authToken ?? randomBytes(16).toString('hex');
  const requests: RecordedRequest[] = [];
  const created: CreatedResource[] = [];
  const failures: number[] = [];
  const delays: number[] = [];

  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const rawBody = Buffer.concat(chunks).toString('utf8');
      const path = req.url ?? '/';
      const isForm = (req.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase() === 'application/x-www-form-urlencoded';
      const params: Record<string, string[]> = {};
      if (isForm) for (const [k, v] of new URLSearchParams(rawBody)) (params[k] ??= []).push(v);
      const record: RecordedRequest = { method: req.method ?? '', path, headers: req.headers, rawBody, params, status: 0 };
      requests.push(record);
      let delay = 0;
      const answer = (status: number, body: unknown) => {
        record.status = status;
        const send = () => {
          res.writeHead(status, { 'content-type': 'application/json' });
          res.end(JSON.stringify(body));
        };
        if (delay > 0) setTimeout(send, delay);
        else send();
      };
      const error = (status: number, code: number, message: string) =>
        answer(status, { code, message, more_info: `https://www.twilio.com/docs/errors/${code}`, status });

      const m = /^\/2010-04-01\/Accounts\/([^/]+)\/(Messages|Calls)\.json$/.exec(path);
      if (!m) return error(404, 20404, `The requested resource ${path} was not found`);
      if (req.method !== 'POST') return error(405, 20004, 'Method not allowed');
      const auth = req.headers.authorization ?? '';
      const expected = 'Basic ' + Buffer.from(`${accountSid}:${authToken}`).toString('base64');
      if (auth !== expected) return error(401, 20003, 'Authenticate');
      if (decodeURIComponent(m[1]) !== accountSid) return error(404, 20404, `The requested resource ${path} was not found`);
      const failure = failures.shift();
      if (failure !== undefined)
        return failure === 429 ? error(429, 20429, 'Too Many Requests') : error(failure, 20500, 'An internal server error has occurred');
      delay = delays.shift() ?? 0;

      const one = (name: string) => params[name]?.[0] ?? '';
      const kind = m[2] === 'Messages' ? 'message' : 'call';
      if (!one('To')) return kind === 'message' ? error(400, 21604, "A 'To' phone number is required.") : error(400, 21201, "No 'To' number is specified");
      if (!one('From')) return kind === 'message' ? error(400, 21603, "A 'From' phone number is required.") : error(400, 21213, "No 'From' number is specified");
      if (!E164.test(one('To'))) return error(400, 21211, `The 'To' number ${one('To')} is not a valid phone number.`);
      if (params.StatusCallback && !absoluteHttpUrl(one('StatusCallback'))) return error(400, 21609, 'Invalid StatusCallback url');
      if (kind === 'message') {
        if (!one('Body') && !one('MediaUrl')) return error(400, 21602, 'Message body is required.');
        if (one('Body').length > 1600) return error(400, 21617, 'The concatenated message body exceeds the 1600 character limit.');
      } else {
        if (!one('Url') && !one('Twiml')) return error(400, 21205, 'Url parameter is required.');
        if (one('Twiml') && (one('Twiml').length > 4000 || !wellFormedXml(one('Twiml')))) return error(400, 12100, 'Document parse failure');
        if ((params.StatusCallbackEvent ?? []).some((e) => !CALL_EVENTS.has(e))) return error(400, 21626, "Invalid 'StatusCallbackEvent'");
      }
      const resource: CreatedResource = { sid: sid(kind === 'message' ? 'SM' : 'CA'), kind, params };
      created.push(resource);
      const now = new Date().toUTCString().replace('GMT', '+0000');
      const base = { sid: resource.sid, account_sid: accountSid, to: one('To'), from: one('From'), status: 'queued', date_created: now, date_updated: now, api_version: '2010-04-01' };
      const uri = `/2010-04-01/Accounts/${accountSid}/${m[2]}/${resource.sid}.json`;
      answer(
        201,
        kind === 'message'
          ? { ...base, body: one('Body'), num_segments: '1', direction: 'outbound-api', error_code: null, error_message: null, uri }
          : { ...base, direction: 'outbound-api', uri },
      );
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    accountSid,
    authToken,
    requests,
    created,
    failNext(n, status = 500) {
      for (let i = 0; i < n; i++) failures.push(status);
    },
    delayNext(ms) {
      delays.push(ms);
    },
    param: (resource, name) => resource.params[name]?.[0],
    async webhook(url, params, opts = {}) {
      const sig = opts.signature === undefined ? twilioSignature(authToken, url, params) : opts.signature;
      const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded; charset=utf-8', 'user-agent': 'TwilioProxy/1.1' };
      if (sig !== null) headers['x-twilio-signature'] = sig;
      const target = opts.via ? opts.via.replace(/\/+$/, '') + url.replace(/^[a-z]+:\/\/[^/]+/i, '') : url;
      const res = await fetch(target, { method: 'POST', headers, body: new URLSearchParams(params).toString() });
      return { status: res.status, contentType: res.headers.get('content-type') ?? '', body: await res.text() };
    },
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections();
        server.close((err) => (err ? reject(err) : resolve()));
      }),
  };
}
