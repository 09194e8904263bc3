/**
 * Registration of many residents and devices over the admin API, as an installer would but
 * with requests in flight concurrently (each is one store transaction; SQLite serializes them,
 * concurrency only hides the HTTP round trips). Optionally one webhook contact per resident.
 */
import { Agent, request } from 'node:http';
import type { BenchDevice, VigilProcess } from './vigil-process.js';

export interface RegisteredDevice extends BenchDevice {
  residentId: string;
}

export interface RegisterOptions {
  count: number;
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
  let next = 0;
  let done = 0;
  const worker = async () => {
    for (let i = next++; i < o.count; i = next++) {
      const deviceId = `${o.prefix}-${String(i).padStart(6, '0')}`;
      const resident = await client.call<{ id: string }>('POST', '/v1/residents', { name: `Resident ${o.prefix} ${i}`, timezone: 'Europe/Paris' });
      const device = await client.call<{ token: string }>('POST', '/v1/devices', { deviceId, residentId: resident.id });
      if (o.webhookUrl) await client.call('POST', `/v1/residents/${resident.id}/contacts`, { name: `Contact ${i}`, webhookUrl: o.webhookUrl });
      out[i] = { deviceId, token: device.token, seq: 0, residentId: resident.id };
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
