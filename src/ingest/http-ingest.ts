/**
 * `POST /v1/readings` (DESIGN §3.1): device token → rate limit → parse (gzip allowed, size
 * bounded after decompression) → validate and sanitize each reading → one durable append →
 * 202 (the last three shared with MQTT: accept-readings.ts). The answer is sent only after the
 * stream has fsync'd (or acknowledged) the readings.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Config } from '../core/config.js';
import { VigilError } from '../core/errors.js';
import type { Metrics } from '../core/metrics.js';
import type { Device } from '../store/types.js';
import { StreamUnavailableError, type StreamProducer } from '../stream/types.js';
import type { DeviceAuth } from './device-auth.js';
import type { DeviceRateLimiter } from './rate-limit.js';
import { acceptReadings } from './accept-readings.js';

declare module 'fastify' {
  interface FastifyRequest {
    device?: Device;
  }
}

export interface IngestDeps {
  config: Config;
  stream: StreamProducer;
  auth: DeviceAuth;
  limiter: DeviceRateLimiter;
  metrics: Metrics;
}

export function bearerToken(req: FastifyRequest): string | null {
  const header = req.headers.authorization;
  if (!header) return null;
  const match = /^Bearer\s+(\S+)$/i.exec(header);
  return match ? match[1] : null;
}

export function registerIngest(app: FastifyInstance, deps: IngestDeps): void {
  const { config, stream, auth, limiter, metrics } = deps;

  app.post(
    '/v1/readings',
    {
      bodyLimit: config['ingest.maxBodyBytes'],
      // Authenticate and rate-limit before the body is read: a bad token costs no parsing.
      onRequest: async (req) => {
        const token = bearerToken(req);
        if (!token) throw new VigilError('MISSING_TOKEN', 'send Authorization: Bearer <device token>');
        const device = await auth.lookup(token, Date.now());
        if (!device) throw new VigilError('INVALID_TOKEN', 'the device token is not known or was revoked');
        const wait = limiter.take(device.deviceId, Date.now());
        if (wait > 0) {
          throw new VigilError('RATE_LIMITED', `device ${device.deviceId} exceeded ${config['ingest.rateLimitPerSecond']} requests/s`, {}, {
            'retry-after': String(wait),
          });
        }
        req.device = device;
      },
      onResponse: async (_req, reply) => {
        metrics.ingestRequests.inc({ status: String(reply.statusCode) });
      },
    },
    async (req, reply) => {
      let result;
      try {
        result = await acceptReadings({ config, stream, metrics }, req.device!, req.body as unknown);
      } catch (err) {
        if (err instanceof StreamUnavailableError) {
          throw new VigilError('STREAM_UNAVAILABLE', err.message, {}, { 'retry-after': String(err.retryAfterSeconds) });
        }
        throw err;
      }
      return reply.code(202).send(result);
    },
  );
}
