/**
 * Test doubles of the two ends of Web Push, written from the RFCs with node:crypto (not with
 * the library under test):
 * - `browserSubscription`: what a browser's PushManager.subscribe() makes: a P-256 key pair
 *   and a 16-byte auth secret, and the subscription JSON it hands to the page.
 * - `startPushService`: an https push service on 127.0.0.1 that checks what RFC 8030/8291/8292
 *   require of a sender (VAPID JWT signed ES256 by the announced key, `aud` = the endpoint's
 *   origin, `exp` within 24 h; `Content-Encoding: aes128gcm`; TTL; Urgency), decrypts the
 *   payload with the browser's private key, records every request and answers the status set
 *   for the endpoint (201 by default).
 */
import { createDecipheriv, createECDH, createPublicKey, hkdfSync, randomBytes, verify, type ECDH } from 'node:crypto';
import { createServer, Agent, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { PushSubscriptionJson } from '../../../../store/types.js';
import { selfSignedCert } from './self-signed-cert.js';

export interface Browser {
  subscription: PushSubscriptionJson;
  ecdh: ECDH;
  auth: Buffer;
}

export function browserSubscription(endpoint: string): Browser {
  const ecdh = createECDH('prime256v1');
  ecdh.generateKeys();
  const auth = randomBytes(16);
  return { ecdh, auth, subscription: { endpoint, keys: { p256dh: ecdh.getPublicKey().toString('base64url'), auth: auth.toString('base64url') } } };
}

/** RFC 8291 §3 with RFC 8188 framing; one record, as Web Push payloads (≤ 4096 bytes) are. */
export function decryptAes128gcm(body: Buffer, browser: Pick<Browser, 'ecdh' | 'auth'>): Buffer {
  const salt = body.subarray(0, 16);
  const rs = body.readUInt32BE(16);
  const idlen = body[20];
  const senderPublic = body.subarray(21, 21 + idlen);
  const record = body.subarray(21 + idlen);
  if (idlen !== 65) throw new Error(`keyid must be the sender's 65-byte public key, is ${idlen} bytes`);
  if (record.length > rs) throw new Error('more than one record');
  const secret = browser.ecdh.computeSecret(senderPublic);
  const keyInfo = Buffer.concat([Buffer.from('WebPush: info\0'), browser.ecdh.getPublicKey(), senderPublic]);
  const ikm = Buffer.from(hkdfSync('sha256', secret, browser.auth, keyInfo, 32));
  const cek = Buffer.from(hkdfSync('sha256', ikm, salt, Buffer.from('Content-Encoding: aes128gcm\0'), 16));
  const nonce = Buffer.from(hkdfSync('sha256', ikm, salt, Buffer.from('Content-Encoding: nonce\0'), 12));
  const decipher = createDecipheriv('aes-128-gcm', cek, nonce);
  decipher.setAuthTag(record.subarray(-16));
  const padded = Buffer.concat([decipher.update(record.subarray(0, -16)), decipher.final()]);
  let end = padded.length - 1;
  while (end >= 0 && padded[end] === 0) end--;
  if (padded[end] !== 2) throw new Error('the last record must end with the 0x02 delimiter');
  return padded.subarray(0, end);
}

export interface Vapid {
  /** The `k=` public key (base64url). */
  publicKey: string;
  claims: { aud: string; exp: number; sub: string };
}

/** Checks `Authorization: vapid t=<JWT>, k=<key>` (RFC 8292); throws what is wrong. */
export function checkVapid(authorization: string | undefined, origin: string): Vapid {
  const m = /^vapid t=([^,\s]+),\s*k=([A-Za-z0-9_-]+)$/.exec(authorization ?? '');
  if (!m) throw new Error(`Authorization is not "vapid t=…, k=…": ${authorization}`);
  const [, jwt, k] = m;
  const [h, p, s] = jwt.split('.');
  const header = JSON.parse(Buffer.from(h, 'base64url').toString()) as { alg: string; typ?: string };
  if (header.alg !== 'ES256') throw new Error(`JWT alg ${header.alg}, want ES256`);
  const point = Buffer.from(k, 'base64url');
  const key = createPublicKey({
    key: { kty: 'EC', crv: 'P-256', x: point.subarray(1, 33).toString('base64url'), y: point.subarray(33, 65).toString('base64url') },
    format: 'jwk',
  });
  if (!verify('sha256', Buffer.from(`${h}.${p}`), { key, dsaEncoding: 'ieee-p1363' }, Buffer.from(s, 'base64url')))
    throw new Error('JWT signature does not verify with k');
  const claims = JSON.parse(Buffer.from(p, 'base64url').toString()) as Vapid['claims'];
  if (claims.aud !== origin) throw new Error(`JWT aud ${claims.aud}, want ${origin}`);
  const now = Date.now() / 1000;
  if (!(claims.exp > now && claims.exp <= now + 24 * 3600 + 60)) throw new Error(`JWT exp ${claims.exp} is not within 24 h`);
  if (!/^(mailto:|https:)/.test(claims.sub ?? '')) throw new Error(`JWT sub ${claims.sub} is not mailto: or https:`);
  return { publicKey: k, claims };
}

export interface PushRequest {
  path: string;
  ttl: number;
  urgency: string | undefined;
  vapid: Vapid;
  /** The decrypted payload, parsed. */
  message: unknown;
}

export interface PushService {
  origin: string;
  /** A TLS agent that trusts this service's certificate. */
  agent: Agent;
  /** A new browser subscribed at this service (path /push/<name>). */
  subscribe(name: string): Browser;
  /** What the service answers for that subscription from now on. */
  answer(name: string, status: number): void;
  /** Requests that passed every check. */
  received: PushRequest[];
  /** Requests that failed a check (the service answered 400). */
  rejected: string[];
  close(): Promise<void>;
}

export async function startPushService(): Promise<PushService> {
  const { key, cert } = selfSignedCert();
  const browsers = new Map<string, Browser>();
  const status = new Map<string, number>();
  const received: PushRequest[] = [];
  const rejected: string[] = [];
  let origin = '';
  let messages = 0;

  const server: Server = createServer({ key, cert }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const name = (req.url ?? '').replace(/^\/push\//, '');
      try {
        const browser = browsers.get(name);
        if (req.method !== 'POST' || !browser) throw new Error(`no subscription at ${req.method} ${req.url}`);
        const vapid = checkVapid(req.headers.authorization, origin);
        if (req.headers['content-encoding'] !== 'aes128gcm') throw new Error(`Content-Encoding ${req.headers['content-encoding']}`);
        const ttl = Number(req.headers.ttl);
        if (!Number.isInteger(ttl) || ttl < 0) throw new Error(`TTL ${req.headers.ttl}`);
        const urgency = req.headers.urgency as string | undefined;
        if (urgency !== undefined && !['very-low', 'low', 'normal', 'high'].includes(urgency)) throw new Error(`Urgency ${urgency}`);
        const message = JSON.parse(decryptAes128gcm(Buffer.concat(chunks), browser).toString('utf8')) as unknown;
        const code = status.get(name) ?? 201;
        if (code === 201) received.push({ path: req.url!, ttl, urgency, vapid, message });
        res.writeHead(code, code === 201 ? { location: `${origin}/message/${++messages}` } : {}).end();
      } catch (err) {
        rejected.push((err as Error).message);
        res.writeHead(400).end((err as Error).message);
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  origin = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const agent = new Agent({ ca: cert });

  return {
    origin,
    agent,
    received,
    rejected,
    subscribe(name) {
      const browser = browserSubscription(`${origin}/push/${name}`);
      browsers.set(name, browser);
      return browser;
    },
    answer(name, code) {
      status.set(name, code);
    },
    async close() {
      agent.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
