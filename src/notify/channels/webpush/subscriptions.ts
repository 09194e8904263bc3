/**
 * A contact's Web Push subscriptions live in `contact.preferences.pushSubscriptions`, one per
 * browser that registered. Added by the dashboard (webpush-api.ts), removed by it or by the
 * channel when a push service answers 404/410 (the browser unsubscribed or the user revoked
 * the permission).
 *
 * The store has no compare-and-set on contacts: two changes to one contact's subscriptions at
 * the very same moment can lose one of them (a lost addition is redone at the browser's next
 * registration; a lost removal at the next 410).
 */
import { ECDH } from 'node:crypto';
import type { PushSubscriptionJson, Store } from '../../../store/types.js';

/** More than any one person has browsers; the oldest is dropped past it. */
export const MAX_SUBSCRIPTIONS = 20;

const b64url = /^[A-Za-z0-9_-]+={0,2}$/;

/**
 * Why the subscription cannot be used, or null when it can: an https endpoint, `p256dh` a
 * P-256 public point (65 bytes uncompressed) and `auth` a 16-byte secret, both base64url.
 */
export function subscriptionProblem(sub: PushSubscriptionJson): string | null {
  let url: URL;
  try {
    url = new URL(sub.endpoint);
  } catch {
    return 'endpoint is not a URL';
  }
  if (url.protocol !== 'https:') return 'endpoint must be an https URL';
  const { p256dh, auth } = sub.keys ?? {};
  if (typeof p256dh !== 'string' || !b64url.test(p256dh)) return 'keys.p256dh must be base64url';
  if (typeof auth !== 'string' || !b64url.test(auth)) return 'keys.auth must be base64url';
  const point = Buffer.from(p256dh, 'base64url');
  if (point.length !== 65 || point[0] !== 4) return 'keys.p256dh must be an uncompressed P-256 public key (65 bytes)';
  try {
    ECDH.convertKey(point, 'prime256v1'); // throws when the point is not on the curve
  } catch {
    return 'keys.p256dh is not a point of P-256';
  }
  if (Buffer.from(auth, 'base64url').length !== 16) return 'keys.auth must be 16 bytes';
  return null;
}

type ContactStore = Pick<Store, 'getContact' | 'updateContact'>;

/**
 * Adds the subscription to the contact (an endpoint already there gets the new keys); returns
 * how many the contact has, or null when there is no such contact.
 */
export async function addPushSubscription(store: ContactStore, contactId: string, sub: PushSubscriptionJson): Promise<number | null> {
  const contact = await store.getContact(contactId);
  if (!contact) return null;
  const clean: PushSubscriptionJson = { endpoint: sub.endpoint, keys: { p256dh: sub.keys.p256dh, auth: sub.keys.auth } };
  const others = (contact.preferences.pushSubscriptions ?? []).filter((s) => s.endpoint !== sub.endpoint);
  const pushSubscriptions = [...others, clean].slice(-MAX_SUBSCRIPTIONS);
  const updated = await store.updateContact(contactId, { preferences: { ...contact.preferences, pushSubscriptions } });
  return updated ? pushSubscriptions.length : null;
}

/** Removes the endpoint from the contact; returns whether it was there (false too when there is no such contact). */
export async function removePushSubscription(store: ContactStore, contactId: string, endpoint: string): Promise<boolean> {
  const contact = await store.getContact(contactId);
  const before = contact?.preferences.pushSubscriptions ?? [];
  const pushSubscriptions = before.filter((s) => s.endpoint !== endpoint);
  if (!contact || pushSubscriptions.length === before.length) return false;
  return (await store.updateContact(contactId, { preferences: { ...contact.preferences, pushSubscriptions } })) !== null;
}
