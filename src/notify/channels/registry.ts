/**
 * The notification channels this Vigil can send on, from the one config schema: webhook
 * always; push always (it has nobody to reach until a browser subscribes); SMS and voice when
 * Twilio (or a compatible provider) is configured; email when an SMTP server is.
 */
import type { Config } from '../../core/config.js';
import type { Store } from '../../store/types.js';
import type { Channel } from '../types.js';
import { createPushAndEmailChannels } from './index-push-email.js';
import { createTwilioChannels } from './twilio/twilio-channels.js';
import { WebhookChannel } from './webhook/webhook-channel.js';

export async function openChannels(config: Config, store: Store): Promise<Channel[]> {
  const pushAndEmail = await createPushAndEmailChannels(config, store);
  return [new WebhookChannel(config['notify.webhookTimeoutMs']), ...pushAndEmail.channels, ...createTwilioChannels(config)];
}
