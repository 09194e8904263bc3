/**
 * `GET /v1/events`: live events over Server-Sent Events (text/event-stream) — alerts opened,
 * acknowledged, resolved, and the latest vitals per resident — filtered by what the caller's
 * key may see, resumable with `Last-Event-ID` (live-event-source.ts says how events are made,
 * kept and replayed; docs/api.md "Live events" is the client's view).
 *
 * Auth: `Authorization: Bearer <key>`, or — on this route only, because a browser's
 * EventSource cannot send headers — `?access_token=<key>`. A key in a URL can end up in proxy
 * logs, browser history and Referer headers: Vigil itself does not log request URLs, and the
 * page should use a key that can do no more than read events.
 *
 * Each connection gets `retry:` and a comment at once, then a comment every `heartbeatMs`
 * (15 s) so proxies and clients see the connection is alive. A client that reads too slowly
 * (over 1 MiB waiting in its socket) is disconnected: it reconnects and resumes from its
 * Last-Event-ID. Connections are ended when the server closes, so shutdown is not held up.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { ServerResponse } from 'node:http';
import { VigilError } from '../core/errors.js';
import { bearerToken } from '../ingest/http-ingest.js';
import { ADMIN_PRINCIPAL, eventData, mayListen, type LiveEvent, type LiveEventSource, type LivePrincipal } from './live-event-source.js';

/** Resolves the key to what it may see; throws a VigilError (401/403) when it may not listen. */
export type LiveAuthenticate = (token: string, req: FastifyRequest) => Promise<LivePrincipal>;

export interface LiveEventsOptions {
  authenticate: LiveAuthenticate;
  /** Comment line period. Default 15 000. */
  heartbeatMs?: number;
  /** The client's reconnection delay (`retry:`). Default 3000. */
  retryMs?: number;
}

/** A slow client holding more than this unsent is disconnected (it resumes on reconnect). */
const MAX_BUFFERED_BYTES = 1 << 20;

/** One SSE message, its data as `principal` may see it. The data is one line of JSON: one `data:` line. */
export function sseFrame(event: LiveEvent, principal: LivePrincipal = ADMIN_PRINCIPAL): string {
  return `${event.id !== null ? `id: ${event.id}\n` : ''}event: ${event.type}\ndata: ${eventData(event, principal)}\n\n`;
}

export function registerLiveEvents(app: FastifyInstance, source: LiveEventSource, opts: LiveEventsOptions): void {
  const heartbeatMs = opts.heartbeatMs ?? 15_000;
  const retryMs = opts.retryMs ?? 3000;
  const open = new Set<ServerResponse>();

  const heartbeat = setInterval(() => {
    const line = `: heartbeat ${new Date().toISOString()}\n\n`;
    for (const res of open) write(res, line);
  }, heartbeatMs);
  heartbeat.unref();

  // A state change made through this process (an ack, a resolve, an SMS reply) is polled at once
  // rather than within the poll period: a hook on the routes that can change state (not on the
  // GETs nor on the ingest, which pays nothing for it).
  app.addHook('onRoute', (route) => {
    const methods = [route.method].flat();
    if (methods.every((m) => m === 'GET' || m === 'HEAD') || route.url.startsWith('/v1/readings')) return;
    const poke = async (_req: FastifyRequest, reply: FastifyReply) => {
      if (reply.statusCode < 400) source.poke();
    };
    const existing = route.onResponse === undefined ? [] : [route.onResponse].flat();
    route.onResponse = [...existing, poke] as typeof route.onResponse;
  });

  // End the streams before the server waits for its connections to close.
  app.addHook('preClose', async () => {
    clearInterval(heartbeat);
    for (const res of open) res.end();
    open.clear();
    await source.close();
  });

  app.get('/v1/events', { exposeHeadRoute: false }, async (req: FastifyRequest, reply: FastifyReply) => {
    const query = req.query as { access_token?: unknown; lastEventId?: unknown };
    const token = bearerToken(req) ?? (typeof query.access_token === 'string' && query.access_token !== '' ? query.access_token : null);
    if (!token) throw new VigilError('MISSING_TOKEN', 'send Authorization: Bearer <key>, or ?access_token=<key> where headers cannot be set (EventSource)');
    const principal = await opts.authenticate(token, req);
    if (!mayListen(principal)) {
      throw new VigilError('FORBIDDEN', 'this key lacks the scopes alerts:read and vitals:read: it would receive no event', { scope: 'alerts:read' });
    }
    const header = req.headers['last-event-id'];
    // Some EventSource polyfills send it as a query parameter.
    const lastEventId = (typeof header === 'string' && header !== '' ? header : null) ?? (typeof query.lastEventId === 'string' && query.lastEventId !== '' ? query.lastEventId : null);

    const res = reply.raw;
    const pending: string[] = [];
    let ready = false;
    let unsubscribe: (() => void) | null = null;
    const cleanup = () => {
      open.delete(res);
      unsubscribe?.();
      unsubscribe = null;
    };
    try {
      // Events emitted before the headers are out are held until then.
      unsubscribe = await source.subscribe(
        {
          principal,
          send: (event) => {
            if (!ready) pending.push(sseFrame(event, principal));
            else if (!write(res, sseFrame(event, principal))) cleanup();
          },
        },
        lastEventId,
      );
    } catch (err) {
      if (err instanceof VigilError) throw err;
      req.log.warn({ err }, 'live events: cannot start');
      throw new VigilError('UNAVAILABLE', 'live events are unavailable: the store cannot be read');
    }

    reply.hijack();
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache, no-transform',
      connection: 'keep-alive',
      // nginx: do not buffer the stream.
      'x-accel-buffering': 'no',
    });
    res.socket?.setNoDelay(true);
    res.socket?.setTimeout(0);
    res.on('close', cleanup);
    if (res.destroyed) {
      cleanup();
      return;
    }
    open.add(res);
    write(res, `retry: ${retryMs}\n: connected\n\n`);
    for (const frame of pending) write(res, frame);
    pending.length = 0;
    ready = true;
  });

  /** False (and the connection ended) when the client is too slow or gone. */
  function write(res: ServerResponse, text: string): boolean {
    if (res.destroyed || res.writableEnded) return false;
    if (res.writableLength > MAX_BUFFERED_BYTES) {
      open.delete(res);
      res.destroy();
      return false;
    }
    res.write(text);
    return true;
  }
}
