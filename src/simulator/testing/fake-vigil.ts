/**
 * The admin and ingest endpoints the simulator uses, on 127.0.0.1, with state in memory: a
 * stand-in for a running Vigil in the simulator's tests. Ingest checks the device token,
 * validates each reading as the real one does (sanitizeReading) and dedups by (deviceId, seq).
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { sanitizeReading } from '../../ingest/sanitize.js';

export const ADMIN_KEY = 'adm_test';

export interface FakeReading {
  deviceId: string;
  seq: number;
  ts: string;
  events?: string[];
  acc?: { hz: number; samples: number[][] };
  [k: string]: unknown;
}

export async function fakeVigil() {
  const residents = new Map<string, Record<string, unknown>>();
  const contacts: { residentId: string; body: Record<string, unknown> }[] = [];
  const devices = new Map<string, { residentId: string; token: string }>();
  /** Accepted readings, in arrival order. */
  const readings: FakeReading[] = [];
  /** Readings per request, in arrival order. */
  const requests: FakeReading[][] = [];
  const seen = new Set<string>();
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}') as Record<string, unknown>;
      const answer = (status: number, json: unknown) => res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(json));
      const problem = (status: number, detail: string) =>
        res.writeHead(status, { 'content-type': 'application/problem+json' }).end(JSON.stringify({ status, detail }));
      const auth = req.headers.authorization ?? '';
      if (req.url === '/v1/readings') {
        const batch = (body.readings ?? [body]) as FakeReading[];
        if (auth !== `Bearer ${devices.get(batch[0].deviceId)?.token}`) return problem(401, 'Invalid token');
        requests.push(batch);
        let accepted = 0;
        let duplicates = 0;
        const rejected: { index: number; error: string }[] = [];
        batch.forEach((r, index) => {
          const result = sanitizeReading(r, { now: Date.now(), maxFutureSkewMs: 300_000 });
          if (result.error !== undefined) return rejected.push({ index, error: result.error });
          if (r.deviceId !== batch[0].deviceId) return rejected.push({ index, error: 'deviceId is not the token’s device' });
          const key = `${r.deviceId}/${r.seq}`;
          if (seen.has(key)) return duplicates++;
          seen.add(key);
          readings.push(r);
          accepted++;
        });
        return answer(202, { accepted, duplicates, rejected });
      }
      if (auth !== `Bearer ${ADMIN_KEY}`) return problem(401, 'Invalid admin key');
      if (req.url === '/v1/residents') {
        const id = `res_${residents.size + 1}`;
        residents.set(id, body);
        return answer(201, { id });
      }
      const contact = /^\/v1\/residents\/([^/]+)\/contacts$/.exec(req.url ?? '');
      if (contact) {
        if (!residents.has(decodeURIComponent(contact[1]))) return problem(404, 'No such resident');
        contacts.push({ residentId: decodeURIComponent(contact[1]), body });
        return answer(201, { id: `con_${contacts.length}` });
      }
      if (req.url === '/v1/devices') {
        const deviceId = body.deviceId as string;
        if (devices.has(deviceId)) return problem(409, `device ${deviceId} already exists`);
        const token = `dev_${deviceId}`;
        devices.set(deviceId, { residentId: body.residentId as string, token });
        return answer(201, { deviceId, token });
      }
      problem(404, 'Not found');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const close = () => new Promise<void>((resolve) => server.close(() => resolve()));
  return { url, server, residents, contacts, devices, readings, requests, close };
}

export type FakeVigil = Awaited<ReturnType<typeof fakeVigil>>;
