/** Opens the configured archive; the S3 SDK is imported only when chosen. */
import { join } from 'node:path';
import type { Config } from '../core/config.js';
import type { Archive } from './types.js';

export async function openArchive(config: Config): Promise<Archive> {
  switch (config['archive.backend']) {
    case 'local': {
      const { LocalArchive } = await import('./local/local-archive.js');
      return new LocalArchive(join(config.dataDir, 'archive'));
    }
    case 's3': {
      const { S3Archive } = await import('./s3/s3-archive.js');
      return S3Archive.open({
        bucket: config['s3.bucket'],
        prefix: config['s3.prefix'],
        region: config['aws.region'],
        endpoint: config['s3.endpoint'] || undefined,
        forcePathStyle: config['s3.forcePathStyle'],
      });
    }
    default:
      throw new Error(`unknown archive backend ${String(config['archive.backend'])}`);
  }
}
