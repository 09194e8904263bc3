import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { beforeEach, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../core/config.js';
import { serviceUp } from '../../testing/services.js';
import { openStore } from '../registry.js';
import { PostgresStore } from '../postgres/postgres-store.js';
import { SqliteStore } from '../sqlite/sqlite-store.js';
import { storeConformance } from '../testing/conformance.js';
import type { Resident, Store } from '../types.js';
import { EncryptingStore, KEY_CHECK_SETTING } from './encrypting-store.js';
import { FieldCipher, FieldCipherError, keyIdOf, type Keyring } from './field-cipher.js';
import { keyFilePath } from './keyring.js';

const pgUp = await serviceUp('postgres');

let dir = '';
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'vigil-crypto-'));
});

const KEY_A = randomBytes(32);
const KEY_B = randomBytes(32);
const ringA: Keyring = { current: 'ka', keys: { ka: KEY_A } };
const ringAB: Keyring = { current: 'kb', keys: { ka: KEY_A, kb: KEY_B } };

const open = (keyring: Keyring = ringA, at = dir) => EncryptingStore.open(SqliteStore.open(at), new FieldCipher(keyring));

// Strings no other part of a store file would hold, so finding one means it leaked.
const PII = {
  residentName: 'Zephyrine Quillfeather',
  birthDate: '1931-07-19',
  lat: 48.8583701,
  lon: 2.2944813,
  medicalNotes: 'allergic to penicillin; pacemaker fitted',
  contactName: 'Bartholomew Crumpet',
  phone: '+33612349876',
  email: 'bartholomew.crumpet@example.org',
  renamed: 'Zephyrine Marchbanks',
  newPhone: '+33698761234',
};
const NEEDLES = ['Zephyrine', 'Quillfeather', 'Marchbanks', '1931-07-19', '48.8583701', '2.2944813', 'penicillin', 'pacemaker', 'Bartholomew', 'Crumpet', '33612349876', '33698761234', 'crumpet@example'];

/** Writes every personal field of one resident and two contacts, then edits some, through `store`. */
async function writePersonalData(store: Store): Promise<void> {
  await store.createResident({
    id: 'res-pii',
    name: PII.residentName,
    birthDate: PII.birthDate,
    timezone: 'Europe/Paris',
    homeLocation: { lat: PII.lat, lon: PII.lon, radiusM: 250 },
    medicalNotes: PII.medicalNotes,
  });
  await store.createContact({ id: 'con-pii', residentId: 'res-pii', name: PII.contactName, phone: PII.phone, email: PII.email, webhookUrl: null, webhookSecret: null });
  await store.createContact({ id: 'con-pii-2', residentId: 'res-pii', name: `${PII.contactName} Jr`, phone: PII.phone, email: null, webhookUrl: null, webhookSecret: null });
  await store.updateResident('res-pii', { name: PII.renamed });
  await store.updateContact('con-pii-2', { phone: PII.newPhone });
}

/** Every needle found in any file under `root` (the database, its -wal and -shm, the key file…), as UTF-8 or UTF-16. */
function leaks(root: string): string[] {
  const files = (d: string): string[] => readdirSync(d).flatMap((n) => (statSync(join(d, n)).isDirectory() ? files(join(d, n)) : [join(d, n)]));
  const found: string[] = [];
  for (const file of files(root)) {
    const bytes = readFileSync(file);
    for (const needle of NEEDLES) {
      if (bytes.includes(Buffer.from(needle, 'utf8')) || bytes.includes(Buffer.from(needle, 'utf16le'))) found.push(`${needle} in ${file}`);
    }
  }
  return found;
}

describe('EncryptingStore over SQLite', () => {
  storeConformance('EncryptingStore(SQLite)', () => open());

  it('round-trips every encrypted field through create, get, list and update, and leaves nulls null', async () => {
    const store = await open();
    try {
      const created = await store.createResident({
        id: 'res-1',
        name: 'Ada Lovelace',
        birthDate: '1935-12-10',
        timezone: 'Europe/London',
        homeLocation: { lat: 51.5, lon: -0.12, radiusM: 150 },
        medicalNotes: 'Diabetes type 2 — insulin at 8:00',
      });
      const expected: Omit<Resident, 'createdAt'> = {
        id: 'res-1',
        name: 'Ada Lovelace',
        birthDate: '1935-12-10',
        timezone: 'Europe/London',
        homeLocation: { lat: 51.5, lon: -0.12, radiusM: 150 },
        medicalNotes: 'Diabetes type 2 — insulin at 8:00',
      };
      expect(created).toMatchObject(expected);
      expect(await store.getResident('res-1')).toMatchObject(expected);
      expect(await store.listResidents()).toMatchObject([expected]);
      await store.createResident({ id: 'res-2', name: 'Bo', birthDate: null, timezone: 'UTC', homeLocation: null, medicalNotes: null });
      expect(await store.getResident('res-2')).toMatchObject({ name: 'Bo', birthDate: null, homeLocation: null, medicalNotes: null });

      const updated = await store.updateResident('res-1', { name: 'Ada King', homeLocation: null, medicalNotes: 'none' });
      expect(updated).toMatchObject({ name: 'Ada King', birthDate: '1935-12-10', homeLocation: null, medicalNotes: 'none', timezone: 'Europe/London' });
      expect(await store.getResident('res-1')).toEqual(updated);
      expect(await store.updateResident('nobody', { name: 'X' })).toBeNull();

      const contact = { id: 'con-1', residentId: 'res-1', name: 'Charles Babbage', phone: '+441234567890', email: 'charles@example.org', webhookUrl: 'https://example.org/hook', webhookSecret: 'vwhk_secret' };
      expect(await store.createContact({ ...contact, preferences: { priority: 2 } })).toMatchObject({ ...contact, preferences: { priority: 2 } });
      expect(await store.getContact('con-1')).toMatchObject(contact);
      expect(await store.listContacts('res-1')).toMatchObject([contact]);
      expect(await store.updateContact('con-1', { phone: null, email: 'cb@example.org' })).toMatchObject({ ...contact, phone: null, email: 'cb@example.org' });
      expect(await store.getContact('con-1')).toMatchObject({ name: 'Charles Babbage', phone: null, email: 'cb@example.org', preferences: { priority: 2 } });
      expect(await store.deleteContact('con-1')).toBe(true);
      expect(await store.getContact('con-1')).toBeNull();

      // What the backend holds: ciphertext under the current key, the location as {enc}.
      const raw = (await store.inner.getResident('res-2'))!;
      expect(raw.name).toMatch(/^enc:v1:ka:/);
      const rawAda = (await store.inner.getResident('res-1'))!;
      expect([rawAda.name, rawAda.birthDate, rawAda.medicalNotes].map((v) => keyIdOf(v!))).toEqual(['ka', 'ka', 'ka']);
      expect(raw.birthDate).toBeNull();
      expect(raw.timezone).toBe('UTC');
    } finally {
      await store.close();
    }
  });

  it('stores the home location as an object holding ciphertext', async () => {
    const store = await open();
    try {
      await store.createResident({ id: 'res-1', name: 'A', birthDate: null, timezone: 'UTC', homeLocation: { lat: 1.5, lon: 2.5 }, medicalNotes: null });
      const raw = (await store.inner.getResident('res-1'))!.homeLocation as unknown as { enc: string };
      expect(Object.keys(raw)).toEqual(['enc']);
      expect(keyIdOf(raw.enc)).toBe('ka');
      expect((await store.getResident('res-1'))!.homeLocation).toEqual({ lat: 1.5, lon: 2.5 });
    } finally {
      await store.close();
    }
  });

  it('a ciphertext moved to another field or another row type does not decrypt; an altered one neither', async () => {
    const store = await open();
    try {
      await store.createResident({ id: 'res-1', name: 'Ada', birthDate: '1935-12-10', timezone: 'UTC', homeLocation: null, medicalNotes: 'notes' });
      await store.createContact({ id: 'con-1', residentId: 'res-1', name: 'Carl', phone: '+15550001', email: 'carl@example.org', webhookUrl: null, webhookSecret: null });
      const rawContact = (await store.inner.getContact('con-1'))!;
      const rawResident = (await store.inner.getResident('res-1'))!;

      await store.inner.updateContact('con-1', { email: rawContact.phone });
      await expect(store.getContact('con-1')).rejects.toMatchObject({ name: 'FieldCipherError', code: 'TAMPERED' });
      await store.inner.updateContact('con-1', { email: rawContact.email, name: rawResident.name });
      await expect(store.getContact('con-1')).rejects.toThrow(/contact\.name fails authentication/);
      await store.inner.updateResident('res-1', { birthDate: rawResident.medicalNotes });
      await expect(store.getResident('res-1')).rejects.toThrow(FieldCipherError);

      const n = rawContact.name;
      const i = n.length - 10;
      await store.inner.updateContact('con-1', { name: n.slice(0, i) + (n[i] === 'x' ? 'y' : 'x') + n.slice(i + 1) });
      await expect(store.listContacts('res-1')).rejects.toMatchObject({ code: 'TAMPERED' });
    } finally {
      await store.close();
    }
  });

  it('reads rows written in clear before encryption was on, and rotation encrypts them', async () => {
    const plain = SqliteStore.open(dir);
    await plain.createResident({ id: 'res-old', name: 'Olga Old', birthDate: '1940-01-01', timezone: 'UTC', homeLocation: { lat: 10, lon: 20 }, medicalNotes: 'old notes' });
    await plain.createContact({ id: 'con-old', residentId: 'res-old', name: 'Oscar', phone: '+15559999', email: null, webhookUrl: null, webhookSecret: null });
    await plain.close();

    const store = await open();
    try {
      expect(await store.getResident('res-old')).toMatchObject({ name: 'Olga Old', birthDate: '1940-01-01', homeLocation: { lat: 10, lon: 20 }, medicalNotes: 'old notes' });
      expect(await store.getContact('con-old')).toMatchObject({ name: 'Oscar', phone: '+15559999', email: null });
      expect(await store.rotateKeys()).toEqual({ residents: 1, contacts: 1 });
      const raw = (await store.inner.getResident('res-old'))!;
      expect(keyIdOf(raw.name)).toBe('ka');
      expect(keyIdOf((raw.homeLocation as unknown as { enc: string }).enc)).toBe('ka');
      expect(keyIdOf((await store.inner.getContact('con-old'))!.phone!)).toBe('ka');
      expect(await store.getResident('res-old')).toMatchObject({ name: 'Olga Old', birthDate: '1940-01-01', homeLocation: { lat: 10, lon: 20 }, medicalNotes: 'old notes' });
    } finally {
      await store.close();
    }
  });

  it('rotation: old values read under the new keyring, then every value is re-encrypted under the new key', async () => {
    const before = await open(ringA);
    const residents = 450; // more than one page
    for (let i = 0; i < residents; i++) {
      const id = `res-${String(i).padStart(4, '0')}`;
      await before.createResident({ id, name: `Resident ${i}`, birthDate: i % 2 ? '1930-01-01' : null, timezone: 'UTC', homeLocation: i % 3 ? { lat: i, lon: -i } : null, medicalNotes: i % 5 ? `note ${i}` : null });
      if (i % 50 === 0) await before.createContact({ id: `con-${i}`, residentId: id, name: `Contact ${i}`, phone: `+1555${i}`, email: `c${i}@example.org`, webhookUrl: null, webhookSecret: null });
    }
    const snapshot = await before.listResidents({ limit: 1000 });
    await before.close();

    const store = await open(ringAB);
    try {
      // Before rotation: values under the old key still read; new writes use the new key.
      expect(await store.listResidents({ limit: 1000 })).toEqual(snapshot);
      expect(await store.getContact('con-100')).toMatchObject({ name: 'Contact 100', phone: '+1555100', email: 'c100@example.org' });
      await store.updateResident('res-0001', { name: 'Renamed' });
      expect(keyIdOf((await store.inner.getResident('res-0001'))!.name)).toBe('kb');
      expect(keyIdOf((await store.inner.getResident('res-0001'))!.birthDate!)).toBe('ka');

      expect(await store.rotateKeys()).toEqual({ residents, contacts: residents / 50 });
      const keyIds = new Set<string | null>();
      for (const r of await store.inner.listResidents({ limit: 1000 })) {
        for (const v of [r.name, r.birthDate, r.medicalNotes, (r.homeLocation as unknown as { enc: string } | null)?.enc]) if (v != null) keyIds.add(keyIdOf(v));
        for (const c of await store.inner.listContacts(r.id)) for (const v of [c.name, c.phone, c.email]) if (v != null) keyIds.add(keyIdOf(v));
      }
      expect([...keyIds]).toEqual(['kb']);
      expect(keyIdOf((await store.inner.getSetting(KEY_CHECK_SETTING))!)).toBe('kb');
      const after = await store.listResidents({ limit: 1000 });
      expect(after).toEqual(snapshot.map((r) => (r.id === 'res-0001' ? { ...r, name: 'Renamed' } : r)));
      expect(await store.getContact('con-100')).toMatchObject({ name: 'Contact 100', phone: '+1555100', email: 'c100@example.org' });
      // Nothing left to do: a second run rewrites nothing.
      expect(await store.rotateKeys()).toEqual({ residents: 0, contacts: 0 });
    } finally {
      await store.close();
    }
    // The new key alone now reads everything.
    const onlyB = await open({ current: 'kb', keys: { kb: KEY_B } });
    try {
      expect((await onlyB.listResidents({ limit: 1000 })).length).toBe(residents);
    } finally {
      await onlyB.close();
    }
  });

  it('refuses to open a store whose data is under a key this process lacks', async () => {
    await (await open(ringA)).close();
    await expect(open({ current: 'kb', keys: { kb: KEY_B } })).rejects.toThrow(ConfigError);
    await expect(open({ current: 'kb', keys: { kb: KEY_B } })).rejects.toThrow(/encrypted with key ka, which this process lacks/);
    // A keyring that has the old key among others opens.
    await (await open(ringAB)).close();
  });

  it('openStore wraps the backend; losing the key file stops the next start with a clear message', async () => {
    const config = loadConfig({ env: {}, overrides: { dataDir: join(dir, 'data') } });
    const store = await openStore(config);
    expect(store).toBeInstanceOf(EncryptingStore);
    await store.createResident({ id: 'res-1', name: 'Ada', birthDate: null, timezone: 'UTC', homeLocation: null, medicalNotes: null });
    await store.close();
    rmSync(keyFilePath(config.dataDir));
    await expect(openStore(config)).rejects.toThrow(/which this process lacks.*restore the key file/);
  });
});

describe('the raw files hold no personal data in clear', () => {
  it('SQLite: the database, its WAL and the key file contain none of the names, dates, places, numbers, emails or notes', async () => {
    const dataDir = join(dir, 'data');
    const store = await openStore(loadConfig({ env: {}, overrides: { dataDir } }));
    await writePersonalData(store);
    // Read back through the store: the data is all there.
    expect(await store.getResident('res-pii')).toMatchObject({ name: PII.renamed, birthDate: PII.birthDate, homeLocation: { lat: PII.lat, lon: PII.lon }, medicalNotes: PII.medicalNotes });
    expect((await store.listContacts('res-pii')).map((c) => c.phone)).toEqual([PII.phone, PII.newPhone]);
    // While open (WAL not yet checkpointed) and after closing.
    expect(leaks(dataDir)).toEqual([]);
    await store.close();
    expect(readdirSync(dataDir)).toContain('store.db');
    expect(leaks(dataDir)).toEqual([]);
  });

  it('control: the same writes on the bare backend are found, so the search would see a leak', async () => {
    const store = SqliteStore.open(dir);
    await writePersonalData(store);
    await store.close();
    const found = leaks(dir).map((l) => l.split(' in ')[0]);
    for (const needle of ['Marchbanks', '1931-07-19', '48.8583701', 'penicillin', 'Crumpet', '33612349876', '33698761234', 'crumpet@example']) expect(found).toContain(needle);
  });

  it.skipIf(!pgUp)('PostgreSQL: no table of the store holds them in clear', async () => {
    const admin = new pg.Client({ connectionString: 'postgres://postgres@127.0.0.1:5432/test' });
    await admin.connect();
    const schema = `vigil_crypto_${randomBytes(6).toString('hex')}`;
    await admin.query(`CREATE SCHEMA ${schema}`);
    try {
      const url = `postgres://postgres@127.0.0.1:5432/test?options=${encodeURIComponent(`-c search_path=${schema}`)}`;
      const store = await EncryptingStore.open(await PostgresStore.open(url), new FieldCipher(ringA));
      try {
        await writePersonalData(store);
        expect(await store.getContact('con-pii')).toMatchObject({ name: PII.contactName, phone: PII.phone, email: PII.email });
      } finally {
        await store.close();
      }
      const tables = (await admin.query<{ table_name: string }>('SELECT table_name FROM information_schema.tables WHERE table_schema = $1', [schema])).rows;
      expect(tables.map((t) => t.table_name)).toEqual(expect.arrayContaining(['residents', 'contacts']));
      const dump: string[] = [];
      for (const { table_name } of tables) dump.push(...(await admin.query<{ row: string }>(`SELECT t::text AS row FROM ${schema}.${table_name} t`)).rows.map((r) => r.row));
      const text = dump.join('\n');
      expect(text).toContain('enc:v1:ka:');
      expect(NEEDLES.filter((n) => text.includes(n))).toEqual([]);
    } finally {
      await admin.query(`DROP SCHEMA ${schema} CASCADE`);
      await admin.end();
    }
  });
});
