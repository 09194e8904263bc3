import { describe, expect, it } from 'vitest';
import { FieldCipher, FieldCipherError, isEncrypted, keyIdOf, type Keyring } from './field-cipher.js';

const KEY_A = Buffer.alloc(32, 1);
const KEY_B = Buffer.alloc(32, 2);
const ringA: Keyring = { current: 'ka', keys: { ka: KEY_A } };

function error(fn: () => unknown): FieldCipherError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(FieldCipherError);
    return err as FieldCipherError;
  }
  throw new Error('expected a FieldCipherError');
}

/** Replaces the character at `i` of the base64url data part with another valid one. */
function flip(value: string, i: number): string {
  const at = value.lastIndexOf(':') + 1 + i;
  return value.slice(0, at) + (value[at] === 'A' ? 'B' : 'A') + value.slice(at + 1);
}

describe('FieldCipher', () => {
  const cipher = new FieldCipher(ringA);

  it('round-trips text, unicode and the empty string, with a fresh IV every time', () => {
    for (const text of ['Ada Lovelace', 'Zoë Ñúñez 李小龍 👵', '', 'x'.repeat(10_000)]) {
      const enc = cipher.encrypt('resident.name', text);
      expect(enc).toMatch(/^enc:v1:ka:[A-Za-z0-9_-]+$/);
      expect(cipher.decrypt('resident.name', enc)).toBe(text);
    }
    const a = cipher.encrypt('contact.phone', '+441234567890');
    const b = cipher.encrypt('contact.phone', '+441234567890');
    expect(a).not.toBe(b);
    expect(isEncrypted(a)).toBe(true);
    expect(keyIdOf(a)).toBe('ka');
    expect(keyIdOf('+441234567890')).toBeNull();
  });

  it('returns values without the enc: prefix as they are (rows written in clear)', () => {
    expect(cipher.decrypt('resident.name', 'Ada Lovelace')).toBe('Ada Lovelace');
    expect(cipher.decrypt('contact.email', '')).toBe('');
    expect(isEncrypted('Ada')).toBe(false);
  });

  it('binds a value to its field: a ciphertext moved to another field fails', () => {
    const phone = cipher.encrypt('contact.phone', '+441234567890');
    const e = error(() => cipher.decrypt('contact.email', phone));
    expect(e.code).toBe('TAMPERED');
    expect(e.message).toContain('contact.email');
    expect(error(() => cipher.decrypt('resident.name', cipher.encrypt('contact.name', 'Bob'))).code).toBe('TAMPERED');
  });

  it('detects tampering anywhere in the IV, ciphertext or tag, and truncation', () => {
    const enc = cipher.encrypt('resident.medicalNotes', 'penicillin allergy');
    const dataLength = enc.length - enc.lastIndexOf(':') - 1;
    for (const i of [0, 5, 16, 20, dataLength - 3]) expect(error(() => cipher.decrypt('resident.medicalNotes', flip(enc, i))).code).toBe('TAMPERED');
    expect(error(() => cipher.decrypt('resident.medicalNotes', enc.slice(0, enc.length - 4))).code).toBe('TAMPERED');
    expect(error(() => cipher.decrypt('resident.medicalNotes', 'enc:v1:ka:AAAA')).code).toBe('TAMPERED');
    // Another key's id on this value: authentication fails under that key.
    const two = new FieldCipher({ current: 'ka', keys: { ka: KEY_A, kb: KEY_B } });
    expect(error(() => two.decrypt('resident.medicalNotes', enc.replace('enc:v1:ka:', 'enc:v1:kb:'))).code).toBe('TAMPERED');
  });

  it('names an unknown key id and where the keys came from', () => {
    const other = new FieldCipher({ current: 'kb', keys: { kb: KEY_B } }, { describe: '/data/keys.json' });
    const e = error(() => other.decrypt('resident.name', cipher.encrypt('resident.name', 'Ada')));
    expect(e.code).toBe('UNKNOWN_KEY');
    expect(e.message).toContain('"ka"');
    expect(e.message).toContain('/data/keys.json');
    expect(e.message).not.toContain('Ada');
  });

  it('reloads the keyring once when a value names a key it lacks (another process rotated)', () => {
    let reloads = 0;
    const reader = new FieldCipher(ringA, {
      reload: () => {
        reloads++;
        return { current: 'kb', keys: { ka: KEY_A, kb: KEY_B } };
      },
    });
    const writer = new FieldCipher({ current: 'kb', keys: { ka: KEY_A, kb: KEY_B } });
    expect(reader.decrypt('contact.name', writer.encrypt('contact.name', 'Carol'))).toBe('Carol');
    expect(reloads).toBe(1);
    expect(reader.currentKeyId).toBe('kb');
    expect(reader.decrypt('contact.name', writer.encrypt('contact.name', 'Dan'))).toBe('Dan');
    expect(reloads).toBe(1);
  });

  it('refuses an unknown format version and a bad keyring', () => {
    expect(error(() => cipher.decrypt('resident.name', 'enc:v2:ka:xyz')).code).toBe('MALFORMED');
    expect(error(() => cipher.decrypt('resident.name', 'enc:v1:nodata')).code).toBe('MALFORMED');
    expect(() => new FieldCipher({ current: 'kx', keys: { ka: KEY_A } })).toThrow(/current key kx/);
    expect(() => new FieldCipher({ current: 'ka', keys: { ka: Buffer.alloc(16) } })).toThrow(/16 bytes/);
    expect(() => new FieldCipher({ current: 'k:a', keys: { 'k:a': KEY_A } })).toThrow(/key id/);
  });
});
