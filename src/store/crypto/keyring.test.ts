import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { beforeEach, describe, expect, it } from 'vitest';
import { ConfigError } from '../../core/config.js';
import { FieldCipher } from './field-cipher.js';
import { keyFilePath, loadKeyring, parseKey, rotateKeyFile } from './keyring.js';

let dataDir = '';
beforeEach(() => {
  dataDir = join(mkdtempSync(join(tmpdir(), 'vigil-keys-')), 'data');
});

const KEY = randomBytes(32);
const idOf = (key: Buffer) => createHash('sha256').update(key).digest('hex').slice(0, 8);

describe('key file', () => {
  it('is created at first load with one random 32-byte key, mode 0600, and read back after', () => {
    const first = loadKeyring({ masterKey: '', dataDir });
    const file = keyFilePath(dataDir);
    expect(first.source).toBe('file');
    expect(first.describe).toBe(file);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(first.keyring.current).toMatch(/^[0-9a-f]{8}$/);
    expect(first.keyring.keys[first.keyring.current]).toHaveLength(32);
    const json = JSON.parse(readFileSync(file, 'utf8'));
    expect(json.current).toBe(first.keyring.current);
    expect(json.note).toMatch(/Losing this file loses/);

    const again = loadKeyring({ masterKey: '', dataDir });
    expect(again.keyring).toEqual(first.keyring);
  });

  it('rotates by adding a new current key, keeping the old ones, under a lock', () => {
    const before = loadKeyring({ masterKey: '', dataDir });
    const r = rotateKeyFile(dataDir);
    expect(r.previous).toBe(before.keyring.current);
    expect(r.keyId).not.toBe(r.previous);
    const after = before.reload();
    expect(after.current).toBe(r.keyId);
    expect(after.keys[before.keyring.current]).toEqual(before.keyring.keys[before.keyring.current]);
    expect(Object.keys(after.keys)).toHaveLength(2);
    expect(statSync(keyFilePath(dataDir)).mode & 0o777).toBe(0o600);
    expect(existsSync(`${keyFilePath(dataDir)}.lock`)).toBe(false);

    // A value under the old key still decrypts, and one under the new key is found by reloading.
    const oldCipher = new FieldCipher(before.keyring, { reload: before.reload });
    const newCipher = new FieldCipher(after);
    const oldValue = oldCipher.encrypt('resident.name', 'Ada');
    expect(newCipher.decrypt('resident.name', oldValue)).toBe('Ada');
    expect(oldCipher.decrypt('resident.name', newCipher.encrypt('resident.name', 'Bea'))).toBe('Bea');

    writeFileSync(`${keyFilePath(dataDir)}.lock`, '');
    expect(() => rotateKeyFile(dataDir)).toThrow(/another key rotation is running/);
  });

  it('processes starting together on an empty dataDir all end up with the same key', async () => {
    // Threads with their own copy of the module, released together, each creating the file.
    const body = `
      import { workerData, parentPort } from 'node:worker_threads';
      const { loadKeyring } = await import(workerData.keyring);
      parentPort.once('message', () => {
        const { keyring } = loadKeyring({ masterKey: '', dataDir: workerData.dataDir });
        parentPort.postMessage({ current: keyring.current, key: keyring.keys[keyring.current].toString('base64') });
      });
      parentPort.postMessage('ready');
    `;
    const workers = Array.from({ length: 4 }, () => {
      const worker = new Worker(new URL('../../core/ts-worker-boot.mjs', import.meta.url), {
        workerData: { __vigilEntry: 'data:text/javascript,' + encodeURIComponent(body), dataDir, keyring: new URL('./keyring.ts', import.meta.url).href },
      });
      const next = () => new Promise<unknown>((resolve, reject) => (worker.once('message', resolve), worker.once('error', reject)));
      return { worker, next };
    });
    try {
      await Promise.all(workers.map((w) => w.next()));
      const results = workers.map((w) => w.next());
      for (const w of workers) w.worker.postMessage('go');
      const seen = (await Promise.all(results)) as { current: string; key: string }[];
      const onDisk = loadKeyring({ masterKey: '', dataDir }).keyring;
      for (const r of seen) expect(r).toEqual({ current: onDisk.current, key: onDisk.keys[onDisk.current]!.toString('base64') });
    } finally {
      await Promise.all(workers.map((w) => w.worker.terminate()));
    }
  });

  it('rotating with no key file creates it', () => {
    const r = rotateKeyFile(dataDir);
    expect(r.previous).toBeNull();
    expect(loadKeyring({ masterKey: '', dataDir }).keyring.current).toBe(r.keyId);
  });

  it('refuses a damaged key file instead of replacing it', () => {
    loadKeyring({ masterKey: '', dataDir });
    writeFileSync(keyFilePath(dataDir), '{"current":"x","keys":{}}');
    expect(() => loadKeyring({ masterKey: '', dataDir })).toThrow(ConfigError);
    expect(() => loadKeyring({ masterKey: '', dataDir })).toThrow(/damaged/);
  });
});

describe('VIGIL_MASTER_KEY', () => {
  it('takes base64, base64url or hex; the key id is derived from the key; no key file is made', () => {
    for (const text of [KEY.toString('base64'), KEY.toString('base64url'), KEY.toString('hex'), ` ${KEY.toString('hex').toUpperCase()}\n`]) {
      const k = loadKeyring({ masterKey: text, dataDir });
      expect(k.source).toBe('env');
      expect(k.keyring).toEqual({ current: idOf(KEY), keys: { [idOf(KEY)]: KEY } });
    }
    expect(existsSync(keyFilePath(dataDir))).toBe(false);
    expect(parseKey(KEY.toString('base64'))).toEqual(KEY);
  });

  it('refuses a key of the wrong size without echoing it', () => {
    for (const bad of [randomBytes(16).toString('base64'), 'not a key!', randomBytes(33).toString('hex')]) {
      let message = '';
      try {
        loadKeyring({ masterKey: bad, dataDir });
      } catch (err) {
        expect(err).toBeInstanceOf(ConfigError);
        message = (err as Error).message;
      }
      expect(message).toMatch(/masterKey \(VIGIL_MASTER_KEY\).*32 bytes/);
      expect(message).not.toContain(bad);
    }
  });

  it('a comma-separated list: the first encrypts, the others decrypt; an existing key file still decrypts', () => {
    const fileRing = loadKeyring({ masterKey: '', dataDir }).keyring;
    const previous = randomBytes(32);
    const k = loadKeyring({ masterKey: `${KEY.toString('base64')},${previous.toString('hex')}`, dataDir });
    expect(k.keyring.current).toBe(idOf(KEY));
    expect(Object.keys(k.keyring.keys).sort()).toEqual([idOf(KEY), idOf(previous), fileRing.current].sort());
    expect(k.describe).toBe(`VIGIL_MASTER_KEY and ${keyFilePath(dataDir)}`);
    const cipher = new FieldCipher(k.keyring);
    const underFileKey = new FieldCipher(fileRing).encrypt('contact.phone', '+15550001');
    const underPrevious = new FieldCipher({ current: idOf(previous), keys: { [idOf(previous)]: previous } }).encrypt('contact.phone', '+15550002');
    expect(cipher.decrypt('contact.phone', underFileKey)).toBe('+15550001');
    expect(cipher.decrypt('contact.phone', underPrevious)).toBe('+15550002');
    expect(cipher.encrypt('contact.phone', 'x')).toContain(`enc:v1:${idOf(KEY)}:`);
  });
});
