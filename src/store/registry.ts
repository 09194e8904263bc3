/** Opens the configured store backend; drivers of other backends are imported only when chosen. */
import type { Config } from '../core/config.js';
import type { Store } from './types.js';

export async function openStore(config: Config): Promise<Store> {
  switch (config['store.backend']) {
    case 'sqlite': {
      const { SqliteStore } = await import('./sqlite/sqlite-store.js');
      return SqliteStore.open(config.dataDir);
    }
    case 'postgres': {
      const { PostgresStore } = await import('./postgres/postgres-store.js');
      return PostgresStore.open(config['store.postgresUrl']);
    }
    case 'dynamodb': {
      const { DynamoDbStore } = await import('./dynamodb/dynamodb-store.js');
      return DynamoDbStore.open({ table: config['dynamodb.table'], region: config['aws.region'], endpoint: config['dynamodb.endpoint'] || undefined });
    }
    default:
      throw new Error(`unknown store backend ${String(config['store.backend'])}`);
  }
}
