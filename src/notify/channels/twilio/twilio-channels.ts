/**
 * The Twilio channels a configuration asks for: `sms` and `voice` when `twilio.accountSid` is
 * set, none when it is empty. The inbound side (replies, keypresses, status callbacks) is
 * `registerTwilioWebhooks` in twilio-webhooks.ts, given the same `publicBaseUrl(config)`.
 */
import { ConfigError, type Config } from '../../../core/config.js';
import type { Channel } from '../../types.js';
import { SmsChannel } from '../sms/sms-channel.js';
import { VoiceChannel } from '../voice/voice-channel.js';
import { TwilioClient } from './twilio-client.js';

/** Timeout of one request to the Twilio API (Twilio usually answers within a second). */
export const TWILIO_TIMEOUT_MS = 10_000;

/** `notify.publicUrl`, or `http://<host>:<port>` when it is empty; never with a trailing slash. */
export function publicBaseUrl(config: Pick<Config, 'notify.publicUrl' | 'host' | 'port'>): string {
  const url = config['notify.publicUrl'] || `http://${config.host}:${config.port}`;
  return url.replace(/\/+$/, '');
}

type TwilioConfig = Pick<Config, 'twilio.accountSid' | 'twilio.authToken' | 'twilio.baseUrl' | 'twilio.fromNumber' | 'notify.publicUrl' | 'host' | 'port'>;

export function createTwilioChannels(config: TwilioConfig, opts: { timeoutMs?: number } = {}): Channel[] {
  const accountSid = config['twilio.accountSid'];
  if (!accountSid) return [];
  // Without these every send would fail; better to say so at start-up than at the first fall.
  for (const key of ['twilio.authToken', 'twilio.fromNumber', 'twilio.baseUrl'] as const)
    if (!config[key]) throw new ConfigError(`config key ${key} must be set when twilio.accountSid is`);
  const client = new TwilioClient({
    accountSid,
    authToken: config['twilio.authToken'],
    baseUrl: config['twilio.baseUrl'],
    timeoutMs: opts.timeoutMs ?? TWILIO_TIMEOUT_MS,
  });
  const shared = { client, from: config['twilio.fromNumber'], publicUrl: publicBaseUrl(config) };
  return [new SmsChannel(shared), new VoiceChannel(shared)];
}
