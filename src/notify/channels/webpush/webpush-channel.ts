/**
 * Web Push notifications (RFC 8030, payload encrypted per RFC 8291 `aes128gcm`, sender
 * identified by VAPID, RFC 8292) to every browser a contact registered
 * (`contact.preferences.pushSubscriptions`, docs/notifications-push-email.md).
 *
 * One delivery succeeds when at least one subscription took the message. A 404/410 answer
 * means the subscription is gone: it is removed from the contact (`onGone`). The outbox
 * retries a delivery that failed only for reasons that can pass (429, 5xx, network); when
 * every subscription is gone or refused the message for good (other 4xx), it fails for good.
 */
import type { Agent } from 'node:https';
import webpush, { type RequestOptions } from 'web-push';
import { ConfigError, type Config } from '../../../core/config.js';
import type { Alert, PushSubscriptionJson, Resident, Store } from '../../../store/types.js';
import { alertMessage } from '../../messages.js';
import { PermanentDeliveryError, type Channel, type Delivery } from '../../types.js';
import { subscriptionProblem } from './subscriptions.js';

export interface VapidKeys {
  /** Uncompressed P-256 public key, base64url: the browser's `applicationServerKey`. */
  publicKey: string;
  privateKey: string;
}

/** Store setting holding the generated key pair (JSON `{publicKey, privateKey}`). */
export const VAPID_SETTING = 'push.vapid';

/**
 * The VAPID key pair: from config `push.vapidPublicKey`/`push.vapidPrivateKey` when set, else
 * generated once and kept in the store, so every process (and every restart) signs with the
 * same key. Changing it invalidates every browser subscription (push services reject them).
 */
export async function vapidKeys(
  store: Pick<Store, 'getSetting' | 'setSettingIfAbsent'>,
  config: Pick<Config, 'push.vapidPublicKey' | 'push.vapidPrivateKey'>,
): Promise<VapidKeys> {
  const publicKey = config['push.vapidPublicKey'];
  const privateKey = config['push.vapidPrivateKey'];
  if (publicKey || privateKey) {
    if (!publicKey || !privateKey) throw new ConfigError('push.vapidPublicKey and push.vapidPrivateKey must be set together');
    checkKeys({ publicKey, privateKey }, 'config push.vapidPublicKey/push.vapidPrivateKey');
    return { publicKey, privateKey };
  }
  const generated = webpush.generateVAPIDKeys();
  // The first process to get here wins; everyone reads back the pair that was kept.
  await store.setSettingIfAbsent(VAPID_SETTING, JSON.stringify({ publicKey: generated.publicKey, privateKey: generated.privateKey }));
  const saved = await store.getSetting(VAPID_SETTING);
  if (!saved) throw new Error(`store setting ${VAPID_SETTING} is missing right after it was written`);
  const keys = JSON.parse(saved) as VapidKeys;
  checkKeys(keys, `store setting ${VAPID_SETTING}`);
  return { publicKey: keys.publicKey, privateKey: keys.privateKey };
}

function checkKeys(keys: VapidKeys, where: string): void {
  const pub = Buffer.from(keys.publicKey ?? '', 'base64url');
  const priv = Buffer.from(keys.privateKey ?? '', 'base64url');
  if (pub.length !== 65 || pub[0] !== 4 || priv.length !== 32)
    throw new ConfigError(`${where}: not a VAPID key pair (base64url P-256 public key of 65 bytes and private key of 32)`);
}

/** What the service worker receives (JSON): enough to show the notification and open the alert. */
export interface PushPayload {
  title: string;
  body: string;
  alertId: string;
  type: string;
  severity: Alert['severity'];
  /** Relative to the dashboard's origin. */
  url: string;
}

export function pushPayload(alert: Alert, resident: Resident | null, digest?: Alert[]): PushPayload {
  const { title, text } = alertMessage(alert, resident, digest);
  return { title, body: text, alertId: alert.id, type: alert.type, severity: alert.severity, url: `/#/alerts/${encodeURIComponent(alert.id)}` };
}

/** How long the push service keeps a message for an offline browser, in seconds. */
export const ttlSeconds = (severity: Alert['severity']): number => (severity === 'critical' ? 24 * 3600 : 3600);
export const urgencyOf = (severity: Alert['severity']): 'high' | 'normal' => (severity === 'critical' || severity === 'high' ? 'high' : 'normal');

export interface WebPushChannelOptions {
  keys: VapidKeys;
  /** `mailto:` or `https:` URL the push services can reach the operator at (config push.vapidSubject). */
  subject: string;
  /** Whole delivery (all subscriptions of the contact), in milliseconds. */
  timeoutMs: number;
  /** Called for a subscription the push service says is gone (404/410): remove it from the contact. */
  onGone: (contactId: string, endpoint: string) => Promise<void>;
  /** TLS agent for the push services' connections (a proxy, a private CA). */
  agent?: Agent;
}

type Outcome = { ok: true; providerId: string } | { ok: false; retry: boolean; error: string };

export class WebPushChannel implements Channel {
  readonly name = 'push';
  constructor(private readonly o: WebPushChannelOptions) {}

  async send({ alert, resident, contact, digest }: Delivery): Promise<{ providerId?: string }> {
    if (!contact) throw new PermanentDeliveryError('the contact was deleted');
    const subs = contact.preferences.pushSubscriptions ?? [];
    if (subs.length === 0) throw new PermanentDeliveryError(`contact ${contact.id} has no push subscription`);
    const payload = JSON.stringify(pushPayload(alert, resident, digest));
    const options: RequestOptions = {
      vapidDetails: { subject: this.o.subject, publicKey: this.o.keys.publicKey, privateKey: this.o.keys.privateKey },
      TTL: ttlSeconds(alert.severity),
      urgency: urgencyOf(alert.severity),
      contentEncoding: 'aes128gcm',
      timeout: this.o.timeoutMs,
      ...(this.o.agent && { agent: this.o.agent }),
    };
    const outcomes = await deadline(
      Promise.all(subs.map((sub) => this.sendOne(contact.id, sub, payload, options))),
      this.o.timeoutMs,
      `push delivery took longer than ${this.o.timeoutMs} ms`,
    );
    const taken = outcomes.find((o) => o.ok);
    if (taken) return { providerId: taken.providerId };
    const errors = outcomes.map((o) => (o.ok ? '' : o.error)).join('; ');
    if (outcomes.some((o) => !o.ok && o.retry)) throw new Error(errors);
    throw new PermanentDeliveryError(errors);
  }

  private async sendOne(contactId: string, sub: PushSubscriptionJson, payload: string, options: RequestOptions): Promise<Outcome> {
    // The endpoint is a bearer capability: only its origin goes into errors (and the outbox).
    const where = originOf(sub.endpoint);
    const problem = subscriptionProblem(sub);
    if (problem) return { ok: false, retry: false, error: `${where}: unusable subscription (${problem})` };
    try {
      const res = await webpush.sendNotification(sub, payload, options);
      const location = res.headers.location;
      return { ok: true, providerId: (Array.isArray(location) ? location[0] : location) ?? String(res.statusCode) };
    } catch (err) {
      if (!(err instanceof webpush.WebPushError)) return { ok: false, retry: true, error: `${where}: ${(err as Error).message}` };
      const status = err.statusCode;
      if (status === 404 || status === 410) {
        await this.o.onGone(contactId, sub.endpoint).catch(() => undefined); // removed at the next 410 otherwise
        return { ok: false, retry: false, error: `${where}: subscription gone (${status})` };
      }
      const retry = status === 429 || status >= 500 || status === 408;
      return { ok: false, retry, error: `${where}: push service answered ${status}${err.body ? ` ${String(err.body).slice(0, 200)}` : ''}` };
    }
  }
}

function originOf(endpoint: string): string {
  try {
    return new URL(endpoint).origin;
  } catch {
    return 'invalid endpoint';
  }
}

/** Rejects after `ms` (the work itself goes on, and its result is dropped). */
function deadline<T>(work: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(message)), ms);
  });
  return Promise.race([work, late]).finally(() => clearTimeout(timer));
}
