/**
 * Opens the configured store backend, wrapped in the EncryptingStore (personal data encrypted
 * field by field, docs/security.md); drivers of other backends are imported only when chosen.
 */
import type { Config } from '../core/config.js';
import type { Store } from './types.js';
import { EncryptingStore } from './crypto/encrypting-store.js';
import { FieldCipher } from './crypto/field-cipher.js';
import { loadKeyring } from './crypto/keyring.js';

export async function openStore(config: Config): Promise<EncryptingStore> {
  // Keys first: a bad VIGIL_MASTER_KEY fails before any connection is made.
  const keys = loadKeyring({ masterKey: config.masterKey, dataDir: config.dataDir });
  const cipher = new FieldCipher(keys.keyring, { reload: keys.reload, describe: keys.describe });
  const backend = await openBackend(config);
  try {
    return await EncryptingStore.open(backend, cipher);
  } catch (err) {
    await backend.close();
    throw err;
  }
}

/** The backend alone: values of encrypted fields come back as ciphertext. */
export async function openBackend(config: Config): Promise<Store> {
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
