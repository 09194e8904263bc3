/**
 * The baseline: the least any Node JSON ingest must do — read the body, JSON.parse it, answer
 * 202 with a small JSON — on bare `node:http`. Run as a child: `node --import tsx
 * bench/lib/bare-server-child.ts <port>`. It answers the same shape as Vigil so both targets
 * move the same bytes.
 */
import { createServer } from 'node:http';

const port = Number(process.argv[2] ?? 0);

const server = createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (chunk: Buffer) => chunks.push(chunk));
  req.on('end', () => {
    let accepted: number;
    try {
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { readings?: unknown };
      accepted = Array.isArray(body.readings) ? body.readings.length : 1;
    } catch {
      res.writeHead(400).end();
      return;
    }
    const out = JSON.stringify({ accepted, duplicates: 0, rejected: [] });
    res.writeHead(202, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(out) }).end(out);
  });
});
// Same keep-alive as Fastify's default, so idle gaps between runs never cost a reconnect.
server.keepAliveTimeout = 72_000;
server.listen(port, '127.0.0.1');
process.on('SIGTERM', () => {
  server.closeAllConnections();
  server.close(() => process.exit(0));
});
