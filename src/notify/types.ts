/**
 * A notification channel delivers one outbox row. `send` resolves when the provider took the
 * message (with its id, if it gives one) and throws when it did not; the outbox sender owns
 * retries, so a channel never retries by itself.
 */
import type { OutboxItem } from '../store/types.js';

export interface Channel {
  readonly name: string;
  send(item: OutboxItem): Promise<{ providerId?: string }>;
}
