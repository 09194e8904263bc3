/**
 * The admin key: from `VIGIL_ADMIN_KEY` (config `adminKey`), else generated at the first
 * start. Only its SHA-256 is stored; a generated key is returned once, to be printed once.
 *
 * Every process re-reads the stored hash at most `ADMIN_KEY_TTL_MS` (2 s) after it last read
 * it, so `vigil admin-key reset` (another process, same store) revokes the old key within 2 s
 * everywhere, without a restart. Keys are compared as SHA-256 digests in constant time.
 */
import type { FastifyRequest } from 'fastify';
import { hashSecret, newSecret, sameDigest } from '../core/ids.js';
import { VigilError } from '../core/errors.js';
import type { Store } from '../store/types.js';
import { bearerToken } from '../ingest/http-ingest.js';

const SETTING = 'admin_key_sha256';
/** How long a read of the stored hash is trusted: the staleness bound of a reset. */
export const ADMIN_KEY_TTL_MS = 2_000;

type SettingsStore = Pick<Store, 'getSetting'>;

export class AdminAuth {
  /** The stored hash as last read (null: none stored, every key refused) and until when it is trusted. */
  private hash: string | null;
  private until: number;
  /** The read in flight, shared by the requests that wait on it. */
  private reading: Promise<string | null> | null = null;

  private constructor(
    private readonly store: SettingsStore,
    hash: string,
    private readonly now: () => number,
  ) {
    this.hash = hash;
    this.until = now() + ADMIN_KEY_TTL_MS;
  }

  /** Returns the auth and, when this start generated the key, the key in clear (print it once). */
  static async init(store: Store, configuredKey: string, now: () => number = Date.now): Promise<{ auth: AdminAuth; generatedKey: string | null }> {
    if (configuredKey) {
      const hash = hashSecret(configuredKey);
      await store.setSetting(SETTING, hash);
      return { auth: new AdminAuth(store, hash, now), generatedKey: null };
    }
    const key = newSecret('vadm');
    if (await store.setSettingIfAbsent(SETTING, hashSecret(key))) return { auth: new AdminAuth(store, hashSecret(key), now), generatedKey: key };
    return { auth: new AdminAuth(store, (await store.getSetting(SETTING))!, now), generatedKey: null };
  }

  /**
   * Replaces the key (`vigil admin-key reset`); returns the new key in clear. Running
   * processes on the same store refuse the old key within `ADMIN_KEY_TTL_MS`.
   */
  static async reset(store: Store): Promise<string> {
    const key = newSecret('vadm');
    await store.setSetting(SETTING, hashSecret(key));
    return key;
  }

  async check(req: FastifyRequest): Promise<void> {
    const token = bearerToken(req);
    if (!token) throw new VigilError('MISSING_TOKEN', 'send Authorization: Bearer <admin key>');
    const stored = await this.storedHash();
    // Both sides are 32-byte digests whatever the key's length: compared in constant time.
    if (stored === null || !sameDigest(hashSecret(token), stored)) throw new VigilError('INVALID_TOKEN', 'not the admin key');
  }

  /** The stored hash, re-read when the last read is older than ADMIN_KEY_TTL_MS (one read at a time). */
  private storedHash(): Promise<string | null> | string | null {
    if (this.now() < this.until) return this.hash;
    if (!this.reading) {
      const started = this.now();
      this.reading = this.store.getSetting(SETTING).then(
        (hash) => {
          this.hash = hash;
          this.until = started + ADMIN_KEY_TTL_MS;
          this.reading = null;
          return hash;
        },
        (err: unknown) => {
          this.reading = null;
          throw new VigilError('UNAVAILABLE', `cannot read the admin key from the store: ${(err as Error).message}`);
        },
      );
    }
    return this.reading;
  }
}
