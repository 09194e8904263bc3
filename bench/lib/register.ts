/**
 * Registration of many residents and devices over the admin API, as an installer would but
 * with requests in flight concurrently (each is one store transaction; SQLite serializes them,
 * concurrency only hides the HTTP round trips). Optionally one webhook contact per resident.
 */
import { Agent, request } from 'node:http';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import type { BenchDevice, VigilProcess } from './vigil-process.js';

// Vigil's own id, secret and hash functions (compiled), so rows are exactly what the API writes.
const { hashSecret, newId, newSecret } = (await import(new URL('../../dist/core/ids.js', import.meta.url).href)) as typeof import('../../src/core/ids.js');

export interface RegisteredDevice extends BenchDevice {
  residentId: string;
}

export interface RegisterOptions {
  count: number;
  /** First device index (deviceIds continue from an earlier call). */
  from?: number;
  /** deviceId = `${prefix}-${i}` (zero-padded to 6 digits). */
  prefix: string;
  /** Requests in flight (default 16). */
  concurrency?: number;
  /** A contact with this webhook URL is added to each resident. */
  webhookUrl?: string;
  /** Called now and then with the number registered so far. */
  onProgress?: (done: number) => void;
}

/** A small JSON client on a keep-alive agent: fetch (undici) costs more per call at this volume. */
export function adminClient(vigil: VigilProcess, maxSockets = 32) {
  const agent = new Agent({ keepAlive: true, maxSockets });
  const u = new URL(vigil.url);
  const call = <T>(method: string, path: string, body?: unknown): Promise<T> =>
    new Promise((resolve, reject) => {
      const text = body === undefined ? undefined : JSON.stringify(body);
      const req = request(
        {
          agent,
          host: u.hostname,
          port: u.port,
          method,
          path,
          headers: {
            authorization: `Bearer ${vigil.adminKey}`,
            ...(text !== undefined && { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) }),
          },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            const out = Buffer.concat(chunks).toString('utf8');
            if ((res.statusCode ?? 0) >= 300) reject(new Error(`${method} ${path}: ${res.statusCode} ${out}`));
            else resolve((out ? JSON.parse(out) : undefined) as T);
          });
          res.on('error', reject);
        },
      );
      req.on('error', reject);
      req.end(text);
    });
  return { call, close: () => agent.destroy() };
}

export async function registerMany(vigil: VigilProcess, o: RegisterOptions): Promise<RegisteredDevice[]> {
  const client = adminClient(vigil, o.concurrency ?? 16);
  const out = new Array<RegisteredDevice>(o.count);
  const from = o.from ?? 0;
  let next = 0;
  let done = 0;
  const worker = async () => {
    for (let k = next++; k < o.count; k = next++) {
      const i = from + k;
      const deviceId = `${o.prefix}-${String(i).padStart(6, '0')}`;
      const resident = await client.call<{ id: string }>('POST', '/v1/residents', { name: `Resident ${o.prefix} ${i}`, timezone: 'Europe/Paris' });
      const device = await client.call<{ token: string }>('POST', '/v1/devices', { deviceId, residentId: resident.id });
      if (o.webhookUrl) await client.call('POST', `/v1/residents/${resident.id}/contacts`, { name: `Contact ${i}`, webhookUrl: o.webhookUrl });
      out[k] = { deviceId, token: device.token, seq: 0, residentId: resident.id };
      if (++done % 5000 === 0) o.onProgress?.(done);
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.max(1, o.concurrency ?? 16) }, worker));
  } finally {
    client.close();
  }
  return out;
}

/**
 * Fast path for very large fleets (the admin API does ~1,100 devices/s on a 2-core box, one
 * fsync'd store transaction per call): residents and devices inserted straight into the
 * running Vigil's `store.db`, 5,000 per transaction, with the same rows as
 * `SqliteStore.createResident` / `createDevice` (src/store/sqlite/sqlite-store.ts) and
 * Vigil's own `newId` / `newSecret` / `hashSecret`. SQLite store only; Vigil finds the rows on
 * each token's first lookup (insert them before the devices send). No contacts.
 */
export function bulkRegister(dataDir: string, o: { count: number; prefix: string; from?: number; timezone?: string }): RegisteredDevice[] {
  const db = new Database(join(dataDir, 'store.db'), { fileMustExist: true });
  db.pragma('busy_timeout = 30000');
  const insertResident = db.prepare(
    `INSERT INTO residents (id, name, birth_date, timezone, home_location, medical_notes, created_at)
     VALUES (@id, @name, NULL, @timezone, NULL, NULL, @createdAt)`,
  );
  const insertDevice = db.prepare<[string, string, string, number]>('INSERT INTO devices (device_id, resident_id, token_hash, created_at) VALUES (?, ?, ?, ?)');
  const out: RegisteredDevice[] = [];
  const from = o.from ?? 0;
  const chunk = db.transaction((start: number, end: number) => {
    for (let i = start; i < end; i++) {
      const deviceId = `${o.prefix}-${String(i).padStart(6, '0')}`;
      const residentId = newId('res');
      const token = newSecret('vdev');
      const now = Date.now();
      insertResident.run({ id: residentId, name: `Resident ${o.prefix} ${i}`, timezone: o.timezone ?? 'Europe/Paris', createdAt: now });
      insertDevice.run(deviceId, residentId, hashSecret(token), now);
      out.push({ deviceId, token, seq: 0, residentId });
    }
  });
  try {
    for (let i = from; i < from + o.count; i += 5000) chunk(i, Math.min(from + o.count, i + 5000));
  } finally {
    db.close();
  }
  return out;
}
