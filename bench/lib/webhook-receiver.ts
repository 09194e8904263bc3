/**
 * A webhook receiver in the benchmark's process: answers 200 at once and notes, per alert,
 * when the request was fully received (performance.now() and epoch ms) and the alert's
 * `detectedAt` (Vigil's clock, same machine).
 */
import { createServer, type Server } from 'node:http';

export interface WebhookArrival {
  alertId: string;
  residentId: string;
  deviceId: string;
  type: string;
  /** performance.now() of this process when the body was complete. */
  at: number;
  /** Epoch ms of the same moment (performance.timeOrigin + at). */
  epochMs: number;
  /** Alert's detectedAt, epoch ms (Vigil's Date.now() when the group handled the batch). */
  detectedAt: number;
}

export interface WebhookReceiver {
  url: string;
  /** Every arrival, in order. */
  arrivals: WebhookArrival[];
  /** Resolves with the first arrival for `residentId`, or null after `timeoutMs`. */
  waitFor(residentId: string, timeoutMs: number): Promise<WebhookArrival | null>;
  close(): Promise<void>;
}

export async function startWebhookReceiver(): Promise<WebhookReceiver> {
  const arrivals: WebhookArrival[] = [];
  const byResident = new Map<string, WebhookArrival>();
  const waiters = new Map<string, (a: WebhookArrival) => void>();
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const at = performance.now();
      res.writeHead(200, { 'content-length': '0' }).end();
      try {
        const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as {
          alert: { id: string; residentId: string; deviceId: string; type: string; detectedAt: string };
        };
        const a: WebhookArrival = {
          alertId: body.alert.id,
          residentId: body.alert.residentId,
          deviceId: body.alert.deviceId,
          type: body.alert.type,
          at,
          epochMs: performance.timeOrigin + at,
          detectedAt: Date.parse(body.alert.detectedAt),
        };
        arrivals.push(a);
        if (!byResident.has(a.residentId)) {
          byResident.set(a.residentId, a);
          waiters.get(a.residentId)?.(a);
          waiters.delete(a.residentId);
        }
      } catch {
        // not an alert webhook: ignored
      }
    });
  });
  server.keepAliveTimeout = 72_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}/hook`,
    arrivals,
    waitFor(residentId, timeoutMs) {
      const seen = byResident.get(residentId);
      if (seen) return Promise.resolve(seen);
      return new Promise((resolve) => {
        const timer = setTimeout(() => {
          waiters.delete(residentId);
          resolve(null);
        }, timeoutMs);
        waiters.set(residentId, (a) => {
          clearTimeout(timer);
          resolve(a);
        });
      });
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
