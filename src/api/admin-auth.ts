/**
 * The admin key: from `VIGIL_ADMIN_KEY` (config `adminKey`), else generated at the first
 * start. Only its SHA-256 is stored; a generated key is returned once, to be printed once.
 */
import type { FastifyRequest } from 'fastify';
import { hashSecret, newSecret, sameDigest } from '../core/ids.js';
import { VigilError } from '../core/errors.js';
import type { Store } from '../store/types.js';
import { bearerToken } from '../ingest/http-ingest.js';

const SETTING = 'admin_key_sha256';

export class AdminAuth {
  private constructor(private hash: string) {}

  /** Returns the auth and, when this start generated the key, the key in clear (print it once). */
  static async init(store: Store, configuredKey: string): Promise<{ auth: AdminAuth; generatedKey: string | null }> {
    if (configuredKey) {
      const hash = hashSecret(configuredKey);
      await store.setSetting(SETTING, hash);
      return { auth: new AdminAuth(hash), generatedKey: null };
    }
    const key = newSecret('vadm');
    if (await store.setSettingIfAbsent(SETTING, hashSecret(key))) return { auth: new AdminAuth(hashSecret(key)), generatedKey: key };
    return { auth: new AdminAuth((await store.getSetting(SETTING))!), generatedKey: null };
  }

  /** Replaces the key (`vigil admin-key reset`); returns the new key in clear. */
  static async reset(store: Store): Promise<string> {
    const key = newSecret('vadm');
    await store.setSetting(SETTING, hashSecret(key));
    return key;
  }

  check(req: FastifyRequest): void {
    const token = bearerToken(req);
    if (!token) throw new VigilError('MISSING_TOKEN', 'send Authorization: Bearer <admin key>');
    if (!sameDigest(hashSecret(token), this.hash)) throw new VigilError('INVALID_TOKEN', 'not the admin key');
  }
}
