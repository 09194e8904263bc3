/** Opens the configured stream backend; heavy SDKs of other backends are imported only when chosen. */
import type { Config } from '../core/config.js';
import type { Stream } from './types.js';

export interface OpenStreamOptions {
  onCommit?: (stats: { requests: number; readings: number; ms: number }) => void;
}

export async function openStream(config: Config, options: OpenStreamOptions = {}): Promise<Stream> {
  switch (config['stream.backend']) {
    case 'embedded': {
      const { EmbeddedStream } = await import('./embedded/embedded-stream.js');
      return new EmbeddedStream({
        dataDir: config.dataDir,
        partitions: config['stream.partitions'],
        retentionMs: config['stream.retentionHours'] * 3_600_000,
        maxPendingAppends: config['ingest.maxPendingAppends'],
        onCommit: options.onCommit,
      });
    }
    case 'nats': {
      const { NatsStream } = await import('./nats/nats-stream.js');
      return NatsStream.open({
        servers: config['nats.servers'].split(',').map((x) => x.trim()),
        stream: config['nats.stream'],
        partitions: config['stream.partitions'],
        replicas: config['nats.replicas'],
        retentionMs: config['stream.retentionHours'] * 3_600_000,
      });
    }
    case 'kinesis': {
      const { KinesisStream } = await import('./kinesis/kinesis-stream.js');
      return KinesisStream.open({
        streamName: config['kinesis.streamName'],
        region: config['aws.region'],
        endpoint: config['kinesis.endpoint'] || undefined,
        partitions: config['stream.partitions'],
        retentionMs: config['stream.retentionHours'] * 3_600_000,
      });
    }
    default:
      throw new Error(`unknown stream backend ${String(config['stream.backend'])}`);
  }
}
