/**
 * Closed-loop sender of a fixed list of requests (one per device, say): `concurrency` in
 * flight on a keep-alive node:http agent, each worker sending the next as soon as its
 * previous answer is in. For driving many devices once, not for offered-rate load.
 */
import { Agent, request } from 'node:http';

export interface SendEachResult {
  sent: number;
  status: Record<string, number>;
  errors: number;
  seconds: number;
  bytes: number;
  /** First non-2xx answer body, to show what went wrong. */
  firstError: string | null;
}

export async function sendEach(
  url: string,
  count: number,
  build: (i: number) => { path: string; headers: Record<string, string>; body: string },
  concurrency = 32,
): Promise<SendEachResult> {
  const u = new URL(url);
  const agent = new Agent({ keepAlive: true, maxSockets: concurrency });
  const status: Record<string, number> = {};
  let errors = 0;
  let bytes = 0;
  let next = 0;
  let firstError: string | null = null;
  const one = (i: number) =>
    new Promise<void>((resolve) => {
      const r = build(i);
      bytes += Buffer.byteLength(r.body);
      const req = request(
        { agent, host: u.hostname, port: u.port, method: 'POST', path: r.path, headers: { ...r.headers, 'content-length': String(Buffer.byteLength(r.body)) } },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            const code = String(res.statusCode ?? 0);
            status[code] = (status[code] ?? 0) + 1;
            if ((res.statusCode ?? 0) >= 300 && firstError === null) firstError = `${code} ${Buffer.concat(chunks).toString('utf8').slice(0, 300)}`;
            resolve();
          });
          res.on('error', () => {
            errors++;
            resolve();
          });
        },
      );
      req.on('error', () => {
        errors++;
        resolve();
      });
      req.end(r.body);
    });
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      for (let i = next++; i < count; i = next++) await one(i);
    }),
  );
  agent.destroy();
  return { sent: count, status, errors, seconds: (performance.now() - t0) / 1000, bytes, firstError };
}
