/** `vigil keys rotate` as a user runs it: a child process on a data directory. */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../core/config.js';
import { openStore } from '../registry.js';
import { keyIdOf } from './field-cipher.js';
import { keyFilePath, keyIdFor } from './keyring.js';

const MAIN = new URL('../../cli/main.ts', import.meta.url).pathname;
const vigil = (args: string[], env: Record<string, string> = {}) =>
  spawnSync(process.execPath, ['--import', 'tsx', MAIN, ...args], {
    encoding: 'utf8',
    env: { ...process.env, VIGIL_MASTER_KEY: '', ...env },
    timeout: 60_000,
  });

/** Every key id found on the residents' and contacts' encrypted values, as the backend holds them. */
async function keyIdsOnDisk(dataDir: string, masterKey = ''): Promise<string[]> {
  const store = await openStore(loadConfig({ env: {}, overrides: { dataDir, masterKey } }));
  try {
    const ids = new Set<string>();
    for (const r of await store.inner.listResidents()) {
      for (const v of [r.name, r.birthDate]) if (v) ids.add(keyIdOf(v) ?? 'clear');
      for (const c of await store.inner.listContacts(r.id)) for (const v of [c.name, c.phone]) if (v) ids.add(keyIdOf(v) ?? 'clear');
    }
    return [...ids].sort();
  } finally {
    await store.close();
  }
}

async function seed(dataDir: string, masterKey = ''): Promise<void> {
  const store = await openStore(loadConfig({ env: {}, overrides: { dataDir, masterKey } }));
  try {
    for (const i of [1, 2, 3]) {
      await store.createResident({ id: `res-${i}`, name: `Resident ${i}`, birthDate: '1930-01-01', timezone: 'UTC', homeLocation: null, medicalNotes: null });
      await store.createContact({ id: `con-${i}`, residentId: `res-${i}`, name: `Contact ${i}`, phone: '+15550000', email: null, webhookUrl: null, webhookSecret: null });
    }
  } finally {
    await store.close();
  }
}

describe('vigil keys rotate', () => {
  it('adds a key to the key file, makes it current and re-encrypts everything under it', async () => {
    const dataDir = join(mkdtempSync(join(tmpdir(), 'vigil-rotate-')), 'data');
    await seed(dataDir);
    const before = JSON.parse(readFileSync(keyFilePath(dataDir), 'utf8')) as { current: string };
    expect(await keyIdsOnDisk(dataDir)).toEqual([before.current]);

    const out = vigil(['keys', 'rotate', '--data-dir', dataDir]);
    expect(out.stderr).toBe('');
    expect(out.status).toBe(0);
    const after = JSON.parse(readFileSync(keyFilePath(dataDir), 'utf8')) as { current: string; keys: Record<string, unknown> };
    expect(after.current).not.toBe(before.current);
    expect(Object.keys(after.keys).sort()).toEqual([before.current, after.current].sort());
    expect(out.stdout).toContain(`new key ${after.current} added to ${keyFilePath(dataDir)} (previous: ${before.current}, kept for reading)`);
    expect(out.stdout).toContain(`re-encrypted 3 resident(s) and 3 contact(s) under key ${after.current}`);
    expect(await keyIdsOnDisk(dataDir)).toEqual([after.current]);

    const store = await openStore(loadConfig({ env: {}, overrides: { dataDir } }));
    expect(await store.getContact('con-2')).toMatchObject({ name: 'Contact 2', phone: '+15550000' });
    await store.close();
  }, 90_000);

  it('with VIGIL_MASTER_KEY, re-encrypts under its first key; the previous one, listed after it, still reads', async () => {
    const dataDir = join(mkdtempSync(join(tmpdir(), 'vigil-rotate-')), 'data');
    const oldKey = randomBytes(32).toString('base64');
    const newKey = randomBytes(32).toString('base64');
    await seed(dataDir, oldKey);
    const out = vigil(['keys', 'rotate', '--data-dir', dataDir], { VIGIL_MASTER_KEY: `${newKey},${oldKey}` });
    expect(out.stderr).toBe('');
    const newId = keyIdFor(Buffer.from(newKey, 'base64'));
    expect(out.stdout).toContain(`key ${newId}, the first of VIGIL_MASTER_KEY`);
    expect(out.stdout).toContain('re-encrypted 3 resident(s) and 3 contact(s)');
    expect(await keyIdsOnDisk(dataDir, newKey)).toEqual([newId]);

    const usage = vigil(['keys', 'turn']);
    expect(usage.status).toBe(2);
    expect(usage.stderr).toContain('usage: vigil keys rotate');
  }, 90_000);
});
