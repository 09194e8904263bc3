/**
 * What a Vigil stream named S puts on the NATS server, and how `open` creates or updates it.
 *
 * - JetStream stream `S` (file storage, limits retention): subject `S.p.<partition>` per
 *   partition, `max_age` = retention, `duplicate_window` = min(2 min, retention) (the server
 *   refuses a window longer than max_age), direct gets allowed, and a headers-only RePublish of
 *   every stored message to `S.appended.<partition>` (the cheap wake-up for `waitForAppend`).
 *   Its description records the partition count, fixed once the stream exists.
 * - KV bucket `S_seen` (stream `KV_S_seen`, subjects `$KV.S_seen.<key>`, one revision per key,
 *   TTL = retention): the dedupe ranges of each device (see nats-seen.ts). It is laid out the way
 *   the NATS KV clients lay out a bucket, so `nats kv` can inspect it.
 */
import { nanos } from '@nats-io/transport-node';
import {
  DiscardPolicy,
  JetStreamApiCodes,
  JetStreamApiError,
  RetentionPolicy,
  StorageType,
  type JetStreamManager,
  type StreamConfig,
} from '@nats-io/jetstream';

export interface NatsLayout {
  stream: string;
  /** `S.p`; a partition's subject is `S.p.<partition>`. */
  partitionPrefix: string;
  /** `S.appended`: headers-only copies of stored messages. */
  appendedPrefix: string;
  bucket: string;
  kvStream: string;
  /** `$KV.S_seen`; a device's key subject is `$KV.S_seen.<key>`. */
  kvPrefix: string;
}

export function layoutOf(stream: string): NatsLayout {
  const bucket = `${stream}_seen`;
  return {
    stream,
    partitionPrefix: `${stream}.p`,
    appendedPrefix: `${stream}.appended`,
    bucket,
    kvStream: `KV_${bucket}`,
    kvPrefix: `$KV.${bucket}`,
  };
}

export interface LayoutSettings {
  partitions: number;
  replicas: number;
  retentionMs: number;
}

/** JetStream's default window; longer would only keep more message ids in server memory. */
const MAX_DUPLICATE_WINDOW_MS = 120_000;
const STREAM_NAME_IN_USE = 10058;
const PARTITIONS_MARK = /\bpartitions=(\d+)\b/;

function streamConfig(l: NatsLayout, s: LayoutSettings): StreamConfig {
  return {
    name: l.stream,
    description: `Vigil readings, partitions=${s.partitions} (fixed once created)`,
    subjects: [`${l.partitionPrefix}.*`],
    retention: RetentionPolicy.Limits,
    storage: StorageType.File,
    discard: DiscardPolicy.Old,
    max_age: nanos(s.retentionMs),
    duplicate_window: nanos(Math.min(MAX_DUPLICATE_WINDOW_MS, s.retentionMs)),
    num_replicas: s.replicas,
    allow_direct: true,
    republish: { src: `${l.partitionPrefix}.>`, dest: `${l.appendedPrefix}.>`, headers_only: true },
  } as StreamConfig;
}

function kvConfig(l: NatsLayout, s: LayoutSettings): StreamConfig {
  return {
    name: l.kvStream,
    description: `Vigil dedupe ranges of ${l.stream}`,
    subjects: [`${l.kvPrefix}.>`],
    retention: RetentionPolicy.Limits,
    storage: StorageType.File,
    // As the KV clients create a bucket: one revision per key, rollups allowed, no deletes.
    max_msgs_per_subject: 1,
    discard: DiscardPolicy.New,
    allow_rollup_hdrs: true,
    deny_delete: true,
    allow_direct: true,
    max_age: nanos(s.retentionMs),
    duplicate_window: nanos(Math.min(MAX_DUPLICATE_WINDOW_MS, s.retentionMs)),
    num_replicas: s.replicas,
  } as StreamConfig;
}

/** Creates the stream, or updates it to `desired` (keeping what we do not set). */
async function ensure(jsm: JetStreamManager, desired: StreamConfig, check?: (existing: StreamConfig) => void): Promise<void> {
  let existing: StreamConfig | null = null;
  try {
    existing = (await jsm.streams.info(desired.name)).config;
  } catch (err) {
    if (!(err instanceof JetStreamApiError) || err.code !== JetStreamApiCodes.StreamNotFound) throw err;
  }
  if (!existing) {
    try {
      await jsm.streams.add(desired);
      return;
    } catch (err) {
      // Another process created it between our info and add: update theirs instead.
      if (!(err instanceof JetStreamApiError) || err.code !== STREAM_NAME_IN_USE) throw err;
      existing = (await jsm.streams.info(desired.name)).config;
    }
  }
  check?.(existing);
  const { name, ...update } = { ...existing, ...desired };
  await jsm.streams.update(name, update);
}

/** Creates or updates the readings stream and its dedupe bucket; fails on a partition-count change. */
export async function ensureLayout(jsm: JetStreamManager, l: NatsLayout, s: LayoutSettings): Promise<void> {
  await ensure(jsm, streamConfig(l, s), (existing) => {
    const mark = PARTITIONS_MARK.exec(existing.description ?? '');
    if (mark && Number(mark[1]) !== s.partitions) {
      throw new Error(
        `stream.partitions is ${s.partitions} but the JetStream stream ${l.stream} was created with ${mark[1]}; ` +
          `the count is fixed once data exists`,
      );
    }
  });
  await ensure(jsm, kvConfig(l, s));
}
