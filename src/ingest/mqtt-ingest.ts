/**
 * MQTT ingest (DESIGN §3.1, docs/mqtt.md): Vigil subscribes to `$share/<mqtt.shareGroup>/<mqtt.topic>`
 * at QoS 1 and takes the same payload as `POST /v1/readings`, through the same validation,
 * sanitizing and durable append (accept-readings.ts).
 *
 * Authority: the topic's `+` level is the deviceId. The broker authorizes each device to
 * publish only on its own topic (Mosquitto: `pattern write vigil/devices/%u/readings`), so
 * the topic plays the part of the HTTP device token; a reading for another device rejects
 * the message, and a device the store does not know is dropped.
 *
 * Acknowledgement: the `mqtt` client would PUBACK a QoS 1 message as soon as it was handed
 * over. With `customHandleAcks` (MQTT 5 only) the PUBACK is sent when we call `done`, and we
 * call it only after `stream.append` resolved (the readings are durable) or after deciding the
 * message can never succeed (malformed, wrong or unknown device, too large: acked with an MQTT 5
 * failure reason code, counted, logged). When the stream cannot accept (StreamUnavailableError,
 * or any unexpected error) `done` is never called and the connection is dropped: the broker
 * still holds the message as in flight for our persistent session and sends it again (DUP)
 * when we reconnect, `reconnectPeriod` later. Readings are deduplicated on (deviceId, seq),
 * so a redelivery of a message whose append did succeed is absorbed.
 *
 * mqtt.js hands incoming packets over one at a time (the next waits for `done`), so one
 * connection appends one message at a time. Each process therefore opens MQTT_MEMBERS connections,
 * each one member of the shared subscription, so that several appends share a group commit.
 */
import { createHash } from 'node:crypto';
import { hostname } from 'node:os';
import { resolve } from 'node:path';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import type { Logger } from 'pino';
import type { Config } from '../core/config.js';
import { VigilError } from '../core/errors.js';
import type { Metrics } from '../core/metrics.js';
import type { Device, Store } from '../store/types.js';
import type { StreamProducer } from '../stream/types.js';
import { StreamUnavailableError } from '../stream/types.js';
import { acceptReadings } from './accept-readings.js';
import { DEVICE_ID } from './sanitize.js';
import { isBackendUnavailable } from '../core/unavailable.js';

export interface MqttIngestDeps {
  config: Config;
  stream: StreamProducer;
  store: Store;
  metrics: Metrics;
  log: Logger;
}

/** Connections (shared-subscription members) per process; each appends one message at a time. */
export const MQTT_MEMBERS = 4;
/** How long the broker keeps a member's session (subscription and unacked messages) while it is away. */
const SESSION_EXPIRY_SECONDS = 7 * 24 * 3600;
const RECONNECT_MS = 1000;
const DEVICE_TTL_MS = 10_000;
const UNKNOWN_DEVICE_TTL_MS = 2_000;
const MAX_CACHED_DEVICES = 500_000;

/** MQTT 5 PUBACK reason codes for messages acked but not taken. */
const REASON = { ok: 0, unspecified: 0x80, notAuthorized: 0x87, payloadInvalid: 0x99 } as const;

type Outcome = { ack: true; result: string; reason: number } | { ack: false; result: string; retryAfterMs: number };

/**
 * Stable across restarts of the same installation (host, data directory, topic), so a
 * restarted process resumes its persistent sessions and is sent again what it had not acked;
 * different for two processes on one host with different data directories. A pid or random
 * id would orphan the previous session's in-flight messages until the session expires.
 */
export function mqttClientIdBase(config: Config): string {
  const host = hostname().replace(/[^A-Za-z0-9_-]/g, '_').slice(0, 40);
  const digest = createHash('sha256').update(`${resolve(config.dataDir)}\0${config['mqtt.topic']}\0${config['mqtt.shareGroup']}`).digest('hex').slice(0, 10);
  return `vigil-${config['mqtt.shareGroup']}-${host}-${digest}`;
}

/** Where the deviceId sits in topics matching the filter (its one `+` level). */
function deviceLevel(filter: string): number {
  const levels = filter.split('/');
  const plus = levels.flatMap((l, i) => (l === '+' ? [i] : []));
  if (plus.length !== 1 || levels.includes('#')) {
    throw new Error(`mqtt.topic "${filter}" must hold exactly one "+" level (the deviceId) and no "#"`);
  }
  return plus[0];
}

export async function startMqttIngest(deps: MqttIngestDeps): Promise<{ stop(): Promise<void> }> {
  const { config, stream, store, metrics } = deps;
  const log = deps.log.child({ component: 'mqtt-ingest' });
  const filter = config['mqtt.topic'];
  const level = deviceLevel(filter);
  const levels = filter.split('/').length;
  const shared = `$share/${config['mqtt.shareGroup']}/${filter}`;
  const maxBytes = config['ingest.maxBodyBytes'];

  const devices = new Map<string, { device: Device | null; until: number }>();
  async function lookup(deviceId: string, now: number): Promise<Device | null> {
    const hit = devices.get(deviceId);
    if (hit && hit.until > now) return hit.device;
    const device = await store.getDevice(deviceId);
    if (devices.size >= MAX_CACHED_DEVICES) devices.clear();
    devices.set(deviceId, { device, until: now + (device ? DEVICE_TTL_MS : UNKNOWN_DEVICE_TTL_MS) });
    return device;
  }

  async function handle(topic: string, payload: Buffer): Promise<Outcome> {
    const parts = topic.split('/');
    const deviceId = parts.length === levels ? parts[level] : '';
    if (!DEVICE_ID.test(deviceId)) {
      log.warn({ topic }, 'message on a topic without a valid deviceId; dropped');
      return { ack: true, result: 'bad_topic', reason: REASON.notAuthorized };
    }
    if (payload.length > maxBytes) {
      log.warn({ deviceId, bytes: payload.length }, 'message larger than ingest.maxBodyBytes; dropped');
      return { ack: true, result: 'too_large', reason: REASON.payloadInvalid };
    }
    let body: unknown;
    try {
      body = JSON.parse(payload.toString('utf8'));
    } catch (err) {
      log.warn({ deviceId, err: (err as Error).message }, 'message is not valid JSON; dropped');
      return { ack: true, result: 'malformed', reason: REASON.payloadInvalid };
    }
    try {
      const now = Date.now();
      const device = await lookup(deviceId, now);
      if (!device) {
        log.warn({ deviceId }, 'message from a device that is not registered; dropped');
        return { ack: true, result: 'unknown_device', reason: REASON.notAuthorized };
      }
      const res = await acceptReadings({ config, stream, metrics }, device, body, now);
      if (res.rejected.length) log.warn({ deviceId, rejected: res.rejected }, 'readings rejected');
      return { ack: true, result: res.accepted === 0 ? 'duplicate' : 'accepted', reason: REASON.ok };
    } catch (err) {
      if (err instanceof VigilError) {
        log.warn({ deviceId, code: err.code, err: err.message }, 'message rejected; dropped');
        return err.code === 'WRONG_DEVICE'
          ? { ack: true, result: 'wrong_device', reason: REASON.notAuthorized }
          : { ack: true, result: 'invalid', reason: REASON.payloadInvalid };
      }
      if (err instanceof StreamUnavailableError) {
        log.warn({ deviceId, err: err.message }, 'stream unavailable; message left unacknowledged for redelivery');
        return { ack: false, result: 'unavailable', retryAfterMs: err.retryAfterSeconds * 1000 };
      }
      if (isBackendUnavailable(err)) {
        log.warn({ deviceId, err: (err as Error).message }, 'store unavailable; message left unacknowledged for redelivery');
        return { ack: false, result: 'unavailable', retryAfterMs: RECONNECT_MS };
      }
      // A store or stream failure we cannot classify: never ack what may not be durable.
      log.error({ deviceId, err }, 'message failed; left unacknowledged for redelivery');
      return { ack: false, result: 'error', retryAfterMs: RECONNECT_MS };
    }
  }

  function member(index: number): { client: MqttClient; subscribed: Promise<void>; stop(): Promise<void> } {
    let stopping = false;
    let everSubscribed = false;
    let inFlight: Promise<unknown> = Promise.resolve();
    const clientId = `${mqttClientIdBase(config)}-${index}`;
    const options: IClientOptions = {
      protocolVersion: 5,
      clientId,
      clean: false,
      properties: { sessionExpiryInterval: SESSION_EXPIRY_SECONDS },
      reconnectPeriod: RECONNECT_MS,
      connectTimeout: 10_000,
      resubscribe: false,
      customHandleAcks: (topic, payload, _packet, done) => {
        if (stopping) return; // not taken, not acked: the broker sends it again after we reconnect
        const work = handle(topic, payload).then((outcome) => {
          metrics.mqttMessages.inc({ result: outcome.result });
          if (outcome.ack) {
            done(outcome.reason); // a number is the reason code; PUBACK goes out now
            return;
          }
          // Withhold the PUBACK and drop the connection: the message stays in flight in our
          // persistent session and the broker redelivers it after the reconnect. The packets
          // mqtt.js queued behind this one belong to the dropped connection and are discarded
          // (unacked, so redelivered too).
          client.stream?.destroy();
        });
        inFlight = work.catch((err: unknown) => log.error({ err }, 'mqtt handler failed'));
      },
    };
    const client = mqtt.connect(config['mqtt.url'], options);
    let first: (err?: Error) => void = () => undefined;
    const subscribed = new Promise<void>((res, rej) => {
      first = (err) => (err ? rej(err) : res());
    });
    client.on('connect', (connack) => {
      // Subscribing again on a resumed session is harmless, and covers a broker that lost it.
      client.subscribe(shared, { qos: 1 }, (err, granted) => {
        const grant = granted?.[0]?.qos;
        if (err || grant === undefined || grant > 2) {
          const e = err ?? new Error(`broker refused the subscription to ${shared} (code ${grant})`);
          // After a first success the persistent session keeps the subscription; a resubscribe
          // lost to a dropped connection is retried on the next connect.
          if (everSubscribed) log.warn({ clientId, err: e.message }, 'mqtt resubscribe failed');
          else log.error({ err: e, clientId }, 'mqtt subscribe failed');
          first(e);
          return;
        }
        everSubscribed = true;
        log.info({ clientId, topic: shared, sessionPresent: connack.sessionPresent }, 'mqtt subscribed');
        first();
      });
    });
    // QoS 0 publishes (a device that ignored the contract) are never acked anyway: best effort.
    client.on('message', (topic, payload, packet) => {
      if (packet.qos !== 0 || stopping) return;
      void handle(topic, payload).then((outcome) => metrics.mqttMessages.inc({ result: outcome.ack ? outcome.result : 'lost_qos0' }));
    });
    client.on('error', (err) => log.warn({ clientId, err: err.message }, 'mqtt error'));
    client.on('offline', () => log.debug({ clientId }, 'mqtt offline; reconnecting'));
    return {
      client,
      subscribed,
      async stop() {
        stopping = true;
        await inFlight; // the message being appended is acked (or left) before we leave
        await new Promise<void>((res) => {
          const force = setTimeout(() => client.end(true, {}, () => res()), 5000);
          client.end(false, {}, () => {
            clearTimeout(force);
            res();
          });
        });
      },
    };
  }

  const members = Array.from({ length: MQTT_MEMBERS }, (_, i) => member(i));
  const stopAll = () => Promise.all(members.map((m) => m.stop())).then(() => undefined);
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      Promise.all(members.map((m) => m.subscribed)),
      new Promise((_, rej) => {
        timer = setTimeout(() => rej(new Error(`MQTT broker ${config['mqtt.url']} did not accept the subscription within 15 s`)), 15_000);
      }),
    ]);
  } catch (err) {
    await stopAll();
    throw err;
  } finally {
    clearTimeout(timer);
  }
  log.info({ url: config['mqtt.url'], topic: shared, members: MQTT_MEMBERS }, 'mqtt ingest started');
  let stopping: Promise<void> | null = null;
  return {
    stop() {
      stopping ??= stopAll();
      return stopping;
    },
  };
}
