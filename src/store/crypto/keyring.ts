/**
 * Where the field-encryption keys come from (docs/security.md):
 * - `masterKey` (VIGIL_MASTER_KEY): one key, or a comma-separated list, each 32 bytes in
 *   base64 or hex. The first encrypts; the others only decrypt (the previous keys while a
 *   rotation is under way). A key's id is derived from it: the first 8 hex digits of its
 *   SHA-256, so every process given the same key agrees on its id.
 * - otherwise the key file `<dataDir>/keys.json`, created with one random key on first start.
 *   `vigil keys rotate` adds a new current key to it; old keys stay, for reading.
 * With VIGIL_MASTER_KEY set, the keys of an existing key file still decrypt (a deployment that
 * moved from the key file to the variable keeps reading what it wrote before).
 *
 * Key-file invariants:
 * 1. Mode 0600, JSON `{current, keys: {<id>: {key: base64, createdAt}}}`; ids match field-cipher's KEY_ID.
 * 2. Keys are only ever added: removing one makes every value under it unreadable for good.
 * 3. It is created atomically and exclusively (a temp file hard-linked into place), so
 *    processes starting together on one dataDir all end up with the same key; it is replaced
 *    atomically (temp file renamed) under a lock file, so two rotations never lose a key.
 */
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, existsSync, fsyncSync, linkSync, mkdirSync, openSync, readFileSync, renameSync, unlinkSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError } from '../../core/config.js';
import { checkKeyring, KEY_BYTES, type Keyring } from './field-cipher.js';

export const KEY_FILE = 'keys.json';

export interface KeySettings {
  /** The `masterKey` setting: empty, or keys in base64/hex, comma-separated, current first. */
  masterKey: string;
  dataDir: string;
}

export interface LoadedKeyring {
  keyring: Keyring;
  /** `env` when VIGIL_MASTER_KEY chooses the current key, `file` when the key file does. */
  source: 'env' | 'file';
  /** For messages: where the keys are (never the keys). */
  describe: string;
  /** The keyring as its sources hold it now (after a rotation by another process). */
  reload(): Keyring;
}

interface KeyFileJson {
  note?: string;
  current: string;
  keys: Record<string, { key: string; createdAt: string }>;
}

const NOTE =
  "Vigil's keys for residents' and contacts' personal data. Losing this file loses that data: back it up, apart from the database. Never remove a key that values may still use.";

export const keyFilePath = (dataDir: string): string => join(dataDir, KEY_FILE);

/** The id of a key given in VIGIL_MASTER_KEY: first 8 hex digits of its SHA-256. */
export const keyIdFor = (key: Buffer): string => createHash('sha256').update(key).digest('hex').slice(0, 8);

/** A fresh random key. */
export const newKey = (): Buffer => randomBytes(KEY_BYTES);

/** One key in hex (64 digits) or base64/base64url (43–44 characters) of 32 bytes. */
export function parseKey(text: string, what = 'masterKey (VIGIL_MASTER_KEY)'): Buffer {
  const s = text.trim();
  let key: Buffer | null = null;
  if (/^[0-9a-fA-F]{64}$/.test(s)) key = Buffer.from(s, 'hex');
  else if (/^[A-Za-z0-9+/_-]+={0,2}$/.test(s)) key = Buffer.from(s, 'base64');
  if (!key || key.length !== KEY_BYTES)
    throw new ConfigError(`config key ${what}: each key must be ${KEY_BYTES} bytes in base64 (44 characters) or hex (64 digits); make one with \`openssl rand -base64 32\``);
  return key;
}

/** VIGIL_MASTER_KEY's keys, current first, with their derived ids. */
export function parseMasterKeys(masterKey: string): { id: string; key: Buffer }[] {
  return masterKey
    .split(',')
    .filter((part) => part.trim() !== '')
    .map((part) => {
      const key = parseKey(part);
      return { id: keyIdFor(key), key };
    });
}

function readKeyFile(file: string): Keyring | null {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
  try {
    const json = JSON.parse(text) as KeyFileJson;
    const keys: Record<string, Buffer> = {};
    for (const [id, entry] of Object.entries(json.keys ?? {})) keys[id] = Buffer.from(entry.key, 'base64');
    return checkKeyring({ current: json.current, keys });
  } catch (err) {
    throw new ConfigError(`key file ${file} is damaged (${(err as Error).message}): restore it from a backup`);
  }
}

function toJson(keyring: Keyring, createdAt: Record<string, string>): string {
  const keys: KeyFileJson['keys'] = {};
  for (const [id, key] of Object.entries(keyring.keys)) keys[id] = { key: key.toString('base64'), createdAt: createdAt[id] ?? new Date().toISOString() };
  return JSON.stringify({ note: NOTE, current: keyring.current, keys } satisfies KeyFileJson, null, 2) + '\n';
}

/** Writes `text` to a new temp file next to `file`, flushed, mode 0600; returns its path. */
function writeTemp(file: string, text: string): string {
  const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  const fd = openSync(tmp, 'wx', 0o600);
  try {
    writeSync(fd, text);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  return tmp;
}

function newKeyId(taken: Record<string, unknown>): string {
  for (;;) {
    const id = randomBytes(4).toString('hex');
    if (!(id in taken)) return id;
  }
}

/** Creates the key file with one random key unless it exists; returns what the file holds. */
function createKeyFile(dataDir: string): Keyring {
  mkdirSync(dataDir, { recursive: true });
  const file = keyFilePath(dataDir);
  const id = newKeyId({});
  const tmp = writeTemp(file, toJson({ current: id, keys: { [id]: newKey() } }, {}));
  try {
    linkSync(tmp, file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EPERM' || code === 'ENOTSUP' || code === 'ENOSYS') {
      // A file system without hard links: exclusive create, at the price of a window in
      // which another process could read a partly written file (and fail, not corrupt).
      try {
        writeFileSync(file, readFileSync(tmp), { flag: 'wx', mode: 0o600 });
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      }
    } else if (code !== 'EEXIST') throw err;
  } finally {
    unlinkSync(tmp);
  }
  return readKeyFile(file)!;
}

/**
 * The keyring of a process: from VIGIL_MASTER_KEY (plus an existing key file's keys, for
 * reading), else from the key file, which is created when missing.
 */
export function loadKeyring(settings: KeySettings): LoadedKeyring {
  const file = keyFilePath(settings.dataDir);
  const envKeys = parseMasterKeys(settings.masterKey);
  if (envKeys.length > 0) {
    const read = (): Keyring => {
      const fromFile = readKeyFile(file);
      const keys: Record<string, Buffer> = { ...fromFile?.keys };
      for (const { id, key } of envKeys) {
        if (keys[id] && !keys[id].equals(key)) throw new ConfigError(`key id ${id} of VIGIL_MASTER_KEY names another key in ${file}`);
        keys[id] = key;
      }
      return { current: envKeys[0]!.id, keys };
    };
    return { keyring: read(), source: 'env', describe: existsSync(file) ? `VIGIL_MASTER_KEY and ${file}` : 'VIGIL_MASTER_KEY', reload: read };
  }
  const keyring = readKeyFile(file) ?? createKeyFile(settings.dataDir);
  return {
    keyring,
    source: 'file',
    describe: file,
    reload: () => {
      const now = readKeyFile(file);
      if (!now) throw new ConfigError(`key file ${file} has disappeared: restore it from a backup`);
      return now;
    },
  };
}

/**
 * Adds a new random key to the key file and makes it current (creating the file when there
 * is none: its first key is then the new one). Returns the new key's id and the previous one.
 */
export function rotateKeyFile(dataDir: string): { keyId: string; previous: string | null } {
  mkdirSync(dataDir, { recursive: true });
  const file = keyFilePath(dataDir);
  const lock = `${file}.lock`;
  let fd: number;
  try {
    fd = openSync(lock, 'wx', 0o600);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST')
      throw new ConfigError(`${lock} exists: another key rotation is running (remove the file if none is)`);
    throw err;
  }
  try {
    const existing = readKeyFile(file);
    if (!existing) return { keyId: createKeyFile(dataDir).current, previous: null };
    const createdAt = (JSON.parse(readFileSync(file, 'utf8')) as KeyFileJson).keys;
    const id = newKeyId(existing.keys);
    const next: Keyring = { current: id, keys: { ...existing.keys, [id]: newKey() } };
    const tmp = writeTemp(file, toJson(next, Object.fromEntries(Object.entries(createdAt).map(([k, v]) => [k, v.createdAt]))));
    renameSync(tmp, file);
    return { keyId: id, previous: existing.current };
  } finally {
    closeSync(fd);
    unlinkSync(lock);
  }
}
