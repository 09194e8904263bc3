/**
 * The Fastify instance every route plugs into: JSON bodies (gzip allowed, the size limit
 * applied after decompression so a gzip bomb stops at the limit), and every error answered
 * as `application/problem+json` from the catalogue in core/errors.ts.
 */
import { createGunzip } from 'node:zlib';
import { fastify, LogController, type FastifyBaseLogger, type FastifyError, type FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { problem, VigilError, type ErrorCode } from '../core/errors.js';
import { isBackendUnavailable } from '../core/unavailable.js';

export interface HttpServerOptions {
  log: Logger;
  bodyLimit: number;
}

/** What a client should wait before retrying when a backend is away (a reconnect usually takes a second or two). */
const BACKEND_RETRY_AFTER_S = 2;

/** Fastify's own error codes, mapped onto the catalogue. */
const FASTIFY_ERRORS: Record<string, ErrorCode> = {
  FST_ERR_CTP_BODY_TOO_LARGE: 'BODY_TOO_LARGE',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'UNSUPPORTED_MEDIA_TYPE',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'MALFORMED_JSON',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'INVALID_BODY',
  FST_ERR_VALIDATION: 'INVALID_BODY',
};

export function createHttpServer(opts: HttpServerOptions): FastifyInstance {
  const app = fastify({
    loggerInstance: opts.log as FastifyBaseLogger,
    // Two log lines per request would cost more than the request itself on the ingest path.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: opts.bodyLimit,
    return503OnClosing: true,
    forceCloseConnections: 'idle',
    ajv: { customOptions: { coerceTypes: false, removeAdditional: false, allErrors: false } },
  });

  app.addHook('preParsing', async (req, _reply, payload) => {
    const encoding = (req.headers['content-encoding'] ?? 'identity').toLowerCase();
    if (encoding === 'identity') return payload;
    if (encoding !== 'gzip') throw new VigilError('UNSUPPORTED_ENCODING', `Content-Encoding ${encoding} is not supported; use gzip or none`);
    const gunzip = createGunzip();
    payload.on('error', (err) => gunzip.destroy(err));
    gunzip.on('error', () => undefined);
    // Fastify compares this to the Content-Length header; the limit then counts decompressed bytes.
    (gunzip as unknown as { receivedEncodedLength: number }).receivedEncodedLength = 0;
    payload.on('data', (chunk: Buffer) => ((gunzip as unknown as { receivedEncodedLength: number }).receivedEncodedLength += chunk.length));
    return payload.pipe(gunzip);
  });

  // JSON is the only body type any route takes: anything else is a 415.
  app.removeAllContentTypeParsers();
  // Plain JSON.parse: faster than a scanning parser, and safe here because no handler merges
  // request objects into others (readings are rebuilt field by field).
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_req, body, done) => {
    try {
      done(null, JSON.parse(body as string));
    } catch (err) {
      done(new VigilError('MALFORMED_JSON', (err as Error).message), undefined);
    }
  });

  app.setErrorHandler((err: FastifyError | VigilError | Error, req, reply) => {
    let vigil: VigilError;
    if (err instanceof VigilError) vigil = err;
    else if ('code' in err && typeof err.code === 'string' && FASTIFY_ERRORS[err.code]) vigil = new VigilError(FASTIFY_ERRORS[err.code], err.message);
    else if ('code' in err && (err.code === 'Z_DATA_ERROR' || err.code === 'Z_BUF_ERROR')) vigil = new VigilError('BAD_GZIP', err.message);
    else if ('statusCode' in err && typeof err.statusCode === 'number' && err.statusCode < 500) vigil = new VigilError('INVALID_BODY', err.message);
    else if (isBackendUnavailable(err)) {
      // A database or service that is away for now: retrying later works, nothing was half-done.
      req.log.warn({ err, url: req.url }, 'backend unavailable');
      vigil = new VigilError('UNAVAILABLE', 'a database Vigil depends on cannot be reached or written now; retry later', {}, { 'Retry-After': String(BACKEND_RETRY_AFTER_S) });
    } else {
      req.log.error({ err, url: req.url }, 'request failed');
      vigil = new VigilError('INTERNAL', 'internal error');
    }
    reply
      .code(vigil.status)
      .headers(vigil.headers)
      .type('application/problem+json')
      .send(problem(vigil.code, vigil.message, vigil.extra));
  });

  app.setNotFoundHandler((req, reply) => {
    reply.code(404).type('application/problem+json').send(problem('NOT_FOUND', `no route ${req.method} ${req.url.split('?')[0]}`));
  });
  return app;
}
