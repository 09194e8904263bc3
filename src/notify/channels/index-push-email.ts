/**
 * The Web Push and email channels as the config asks for them (docs/notifications-push-email.md):
 * push always (a contact simply has no subscription until a browser registers), email only
 * when `email.smtpUrl` is set. `vapidPublicKey` is what `GET /v1/push/vapid-public-key`
 * serves (webpush/webpush-api.ts).
 *
 * Both bound one delivery by `notify.webhookTimeoutMs`, the request timeout the outbox
 * sender's stuck-row threshold is derived from.
 */
import type { Config } from '../../core/config.js';
import type { Store } from '../../store/types.js';
import type { Channel } from '../types.js';
import { EmailChannel } from './email/email-channel.js';
import { removePushSubscription } from './webpush/subscriptions.js';
import { vapidKeys, WebPushChannel } from './webpush/webpush-channel.js';

export async function createPushAndEmailChannels(config: Config, store: Store): Promise<{ channels: Channel[]; vapidPublicKey: string }> {
  const keys = await vapidKeys(store, config);
  const timeoutMs = config['notify.webhookTimeoutMs'];
  const channels: Channel[] = [
    new WebPushChannel({
      keys,
      subject: config['push.vapidSubject'],
      timeoutMs,
      onGone: async (contactId, endpoint) => {
        await removePushSubscription(store, contactId, endpoint);
      },
    }),
  ];
  if (config['email.smtpUrl']) {
    channels.push(
      new EmailChannel({
        smtpUrl: config['email.smtpUrl'],
        from: config['email.from'],
        timeoutMs,
        publicUrl: config['notify.publicUrl'] || undefined,
      }),
    );
  }
  return { channels, vapidPublicKey: keys.publicKey };
}
