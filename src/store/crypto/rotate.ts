/**
 * `vigil keys rotate`: a new current key (in the key file, or the first of VIGIL_MASTER_KEY),
 * then every resident and contact re-encrypted under it (docs/security.md).
 */
import type { Config } from '../../core/config.js';
import { openStore } from '../registry.js';
import { keyFilePath, parseMasterKeys, rotateKeyFile } from './keyring.js';

export interface RotationReport {
  keyId: string;
  /** The key that was current before; null when the key file was created by this run. */
  previous: string | null;
  /** false with VIGIL_MASTER_KEY: its first key is the new one, chosen by the operator. */
  generated: boolean;
  residents: number;
  contacts: number;
}

export async function rotateKeys(config: Config): Promise<RotationReport> {
  const envKeys = parseMasterKeys(config.masterKey);
  const rotated = envKeys.length > 0 ? null : rotateKeyFile(config.dataDir);
  const store = await openStore(config);
  try {
    const counts = await store.rotateKeys();
    return { keyId: store.cipher.currentKeyId, previous: rotated ? rotated.previous : null, generated: rotated !== null, ...counts };
  } finally {
    await store.close();
  }
}

export function formatRotation(config: Config, r: RotationReport): string {
  const where = r.generated ? `new key ${r.keyId} added to ${keyFilePath(config.dataDir)}${r.previous ? ` (previous: ${r.previous}, kept for reading)` : ''}` : `key ${r.keyId}, the first of VIGIL_MASTER_KEY`;
  return (
    `${where}\n` +
    `re-encrypted ${r.residents} resident(s) and ${r.contacts} contact(s) under key ${r.keyId}\n` +
    '(restart running Vigil processes so that they write with the new key; back up the key file)\n'
  );
}
