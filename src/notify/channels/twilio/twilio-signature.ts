/**
 * `X-Twilio-Signature`, as Twilio documents it (https://www.twilio.com/docs/usage/webhooks/webhooks-security):
 * take the full URL Twilio requested (scheme, host, path and query string, exactly as given to
 * Twilio), append every POST parameter of a form-encoded body as name followed by value, sorted
 * by name, with no separators; HMAC-SHA1 that string with the account's auth token as the key;
 * base64 the digest.
 *
 * Twilio's own helper libraries also accept the signature computed over the URL with the
 * default port added or removed (`https://host:443/…` vs `https://host/…`), because what
 * Twilio signs depends on how the URL was written in the console; so does `validate` here.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

export const SIGNATURE_HEADER = 'x-twilio-signature';

/** Form parameters: a record (a repeated name as an array) or the parsed body itself. */
export type FormParams = URLSearchParams | Readonly<Record<string, string | readonly string[]>>;

function pairs(params: FormParams): [string, string][] {
  const out: [string, string][] = [];
  if (params instanceof URLSearchParams) for (const [k, v] of params) out.push([k, v]);
  else
    for (const [k, v] of Object.entries(params)) {
      if (typeof v === 'string') out.push([k, v]);
      else for (const one of v) out.push([k, one]);
    }
  // By name, then (for a repeated name) by value — what the helper libraries do. Plain
  // code-unit order, not locale order: Twilio's names are ASCII.
  return out.sort(([a, x], [b, y]) => (a < b ? -1 : a > b ? 1 : x < y ? -1 : x > y ? 1 : 0));
}

export function twilioSignature(authToken: string, url: string, params: FormParams = {}): string {
  const hmac = createHmac('sha1', authToken).update(url, 'utf8');
  for (const [k, v] of pairs(params)) hmac.update(k, 'utf8').update(v, 'utf8');
  return hmac.digest('base64');
}

/** The URL as given, and with its scheme's default port written out or removed. */
function portVariants(url: string): string[] {
  // Only the authority changes, so the path and query stay byte for byte as received.
  const m = /^(https?):\/\/([^/?#]*)(.*)$/is.exec(url);
  if (!m) return [url];
  const [, scheme, host, rest] = m;
  const port = scheme.toLowerCase() === 'https' ? ':443' : ':80';
  const other = host.endsWith(port) ? host.slice(0, -port.length) : /:\d+$/.test(host) ? null : host + port;
  return other === null ? [url] : [url, `${scheme}://${other}${rest}`];
}

/** Whether `signature` (the header, possibly absent) is Twilio's for this URL and these params. */
export function validateTwilioSignature(authToken: string, signature: string | undefined | null, url: string, params: FormParams = {}): boolean {
  if (!signature || !authToken) return false;
  const given = Buffer.from(signature, 'utf8');
  let ok = false;
  for (const candidate of portVariants(url)) {
    const expected = Buffer.from(twilioSignature(authToken, candidate, params), 'utf8');
    // Every variant is compared (no early exit) and only equal lengths reach timingSafeEqual.
    if (expected.length === given.length && timingSafeEqual(expected, given)) ok = true;
  }
  return ok;
}
