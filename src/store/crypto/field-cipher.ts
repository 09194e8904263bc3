/**
 * Field-level encryption of personal data (DESIGN §5 store/crypto): AES-256-GCM, one random
 * 12-byte IV per value, the field's name as additional authenticated data.
 *
 * On-disk invariants (a value written here must stay readable by every later version):
 * 1. An encrypted value is the string `enc:v1:<keyId>:<base64url(iv ‖ ciphertext ‖ tag)>`,
 *    IV 12 bytes, tag 16 bytes, the plaintext UTF-8.
 * 2. The AAD is the field name (`resident.name`, `contact.phone`…): a ciphertext copied into
 *    another field, of the same or another record type, fails authentication.
 * 3. The key id travels with the value, so values under older keys stay readable for as long
 *    as the keyring holds those keys; rotation only ever adds keys.
 * 4. A value that does not start with `enc:` is plaintext written before encryption was on,
 *    and is returned as is. (A legacy plaintext that itself starts with `enc:` is not
 *    readable: none of the encrypted fields — names, dates, phones, emails, notes — does.)
 * 5. Key ids match KEY_ID: no `:`, so the format splits unambiguously.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';

export const ENCRYPTED_PREFIX = 'enc:';
const V1 = 'enc:v1:';
const IV_BYTES = 12;
const TAG_BYTES = 16;
export const KEY_BYTES = 32;
export const KEY_ID = /^[A-Za-z0-9_-]{1,32}$/;

/** The keys a process holds: `current` encrypts, every key decrypts. */
export interface Keyring {
  current: string;
  keys: Record<string, Buffer>;
}

export type FieldCipherErrorCode = 'UNKNOWN_KEY' | 'TAMPERED' | 'MALFORMED';

export class FieldCipherError extends Error {
  constructor(
    readonly code: FieldCipherErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'FieldCipherError';
  }
}

export function checkKeyring(keyring: Keyring): Keyring {
  for (const [id, key] of Object.entries(keyring.keys)) {
    if (!KEY_ID.test(id)) throw new Error(`key id ${JSON.stringify(id)} must match ${KEY_ID}`);
    if (key.length !== KEY_BYTES) throw new Error(`key ${id} has ${key.length} bytes; AES-256 needs ${KEY_BYTES}`);
  }
  if (!keyring.keys[keyring.current]) throw new Error(`the current key ${keyring.current} is not in the keyring`);
  return keyring;
}

/** True for a value this module wrote (any version, any key). */
export const isEncrypted = (value: unknown): value is string => typeof value === 'string' && value.startsWith(ENCRYPTED_PREFIX);

/** The key id of an encrypted value; null for plaintext. */
export function keyIdOf(value: string): string | null {
  if (!value.startsWith(V1)) return null;
  const end = value.indexOf(':', V1.length);
  return end < 0 ? null : value.slice(V1.length, end);
}

export interface FieldCipherOptions {
  /**
   * Called when a value names a key the keyring lacks (another process rotated keys since
   * this one loaded them): returns the keyring as it is now, and decryption retries once.
   */
  reload?: () => Keyring;
  /** Where the keys come from, for error messages (never the keys themselves). */
  describe?: string;
}

export class FieldCipher {
  private keyring: Keyring;

  constructor(
    keyring: Keyring,
    private readonly options: FieldCipherOptions = {},
  ) {
    this.keyring = checkKeyring(keyring);
  }

  get currentKeyId(): string {
    return this.keyring.current;
  }

  get keyIds(): string[] {
    return Object.keys(this.keyring.keys);
  }

  /** `enc:v1:<current key id>:…`; a fresh IV every call, so equal plaintexts differ. */
  encrypt(field: string, plaintext: string): string {
    const id = this.keyring.current;
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.keyring.keys[id]!, iv);
    cipher.setAAD(Buffer.from(field, 'utf8'));
    const body = Buffer.concat([iv, cipher.update(plaintext, 'utf8'), cipher.final(), cipher.getAuthTag()]);
    return `${V1}${id}:${body.toString('base64url')}`;
  }

  /** The plaintext of `value` read from `field`; a value without the `enc:` prefix is returned as is. */
  decrypt(field: string, value: string): string {
    if (!value.startsWith(ENCRYPTED_PREFIX)) return value;
    if (!value.startsWith(V1)) throw new FieldCipherError('MALFORMED', `value of ${field} has an unknown format ${JSON.stringify(value.slice(0, 8))}… (written by a newer Vigil?)`);
    const end = value.indexOf(':', V1.length);
    if (end < 0) throw new FieldCipherError('MALFORMED', `value of ${field} is not of the form enc:v1:<keyId>:<data>`);
    const id = value.slice(V1.length, end);
    const key = this.key(id, field);
    const body = Buffer.from(value.slice(end + 1), 'base64url');
    if (body.length < IV_BYTES + TAG_BYTES) throw new FieldCipherError('TAMPERED', `value of ${field} is truncated: it was altered`);
    const decipher = createDecipheriv('aes-256-gcm', key, body.subarray(0, IV_BYTES));
    decipher.setAAD(Buffer.from(field, 'utf8'));
    decipher.setAuthTag(body.subarray(body.length - TAG_BYTES));
    try {
      return Buffer.concat([decipher.update(body.subarray(IV_BYTES, body.length - TAG_BYTES)), decipher.final()]).toString('utf8');
    } catch {
      throw new FieldCipherError('TAMPERED', `value of ${field} fails authentication under key ${id}: it was altered, or was copied from another field`);
    }
  }

  private key(id: string, field: string): Buffer {
    const found = this.keyring.keys[id];
    if (found) return found;
    if (this.options.reload) {
      this.keyring = checkKeyring(this.options.reload());
      const reloaded = this.keyring.keys[id];
      if (reloaded) return reloaded;
    }
    throw new FieldCipherError(
      'UNKNOWN_KEY',
      `value of ${field} was encrypted with key ${JSON.stringify(id)}, which is not in the keyring` +
        ` (${this.keyIds.join(', ')}${this.options.describe ? `, from ${this.options.describe}` : ''}):` +
        ' this process needs the key file or VIGIL_MASTER_KEY that wrote it (docs/security.md)',
    );
  }
}
