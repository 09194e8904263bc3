// Web Push for a caregiver's browser: the service worker (public/sw.js) shows Vigil's
// notifications even with the page closed; the subscription is stored on the contact, whose
// escalation steps with the `push` channel then reach this browser (docs/notifications.md).
import { api } from './api';

export const pushSupported = (): boolean => 'serviceWorker' in navigator && 'PushManager' in window && 'Notification' in window;

const base64UrlToBytes = (s: string): Uint8Array<ArrayBuffer> => {
  const bin = atob(s.replace(/-/g, '+').replace(/_/g, '/'));
  return Uint8Array.from(bin, (c) => c.charCodeAt(0));
};

/** Asks the browser for a push subscription and stores it on the contact. Throws a readable error. */
export async function subscribeThisBrowser(contactId: string): Promise<void> {
  if (!pushSupported()) throw new Error('This browser cannot receive push notifications.');
  if ((await Notification.requestPermission()) !== 'granted') throw new Error('Notifications are blocked for this site: allow them in the browser settings.');
  const registration = await navigator.serviceWorker.register('/sw.js', { scope: '/' });
  await navigator.serviceWorker.ready;
  const { publicKey } = await api<{ publicKey: string }>('/v1/push/vapid-public-key');
  let subscription: PushSubscription;
  try {
    subscription = await registration.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: base64UrlToBytes(publicKey) });
  } catch (err) {
    throw new Error(`The browser's push service refused the subscription (${(err as Error).message}).`);
  }
  await api(`/v1/contacts/${encodeURIComponent(contactId)}/push-subscriptions`, { method: 'POST', body: subscription.toJSON() });
}
