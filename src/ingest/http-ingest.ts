/**
 * `POST /v1/readings` (DESIGN §3.1): device token → rate limit → parse (gzip allowed, size
 * bounded after decompression) → validate and sanitize each reading → one durable append →
 * 202. The answer is sent only after the stream has fsync'd (or acknowledged) the readings.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Config } from '../core/config.js';
import { VigilError } from '../core/errors.js';
import type { Metrics } from '../core/metrics.js';
import type { Device } from '../store/types.js';
import { StreamUnavailableError, type StreamProducer } from '../stream/types.js';
import type { DeviceAuth } from './device-auth.js';
import type { DeviceRateLimiter } from './rate-limit.js';
import { sanitizeReading } from './sanitize.js';

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

interface Rejected {
  index: number;
  error: string;
}

export function registerIngest(app: FastifyInstance, deps: IngestDeps): void {
  const { config, stream, auth, limiter, metrics } = deps;
  const maxBatch = config['ingest.maxBatch'];

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
      const device = req.device!;
      const body = req.body as unknown;
      let raws: unknown[];
      if (body !== null && typeof body === 'object' && !Array.isArray(body) && 'readings' in body) {
        const list = (body as { readings: unknown }).readings;
        if (!Array.isArray(list)) throw new VigilError('INVALID_BODY', '"readings" must be an array');
        raws = list;
      } else if (body !== null && typeof body === 'object' && !Array.isArray(body)) {
        raws = [body];
      } else {
        throw new VigilError('INVALID_BODY', 'body must be one reading object or {"readings": [...]}');
      }
      if (raws.length === 0) throw new VigilError('INVALID_BODY', '"readings" is empty');
      if (raws.length > maxBatch) throw new VigilError('TOO_MANY_READINGS', `at most ${maxBatch} readings per request; got ${raws.length}`);

      const now = Date.now();
      const opts = { now, maxFutureSkewMs: config['ingest.maxFutureSkewMs'] };
      const rejected: Rejected[] = [];
      const seqs: number[] = [];
      const jsons: string[] = [];
      for (let i = 0; i < raws.length; i++) {
        const result = sanitizeReading(raws[i], opts);
        if (result.error !== undefined) {
          rejected.push({ index: i, error: result.error });
          continue;
        }
        const reading = result.reading;
        if (reading.deviceId !== device.deviceId) {
          metrics.readingsRejected.inc({ reason: 'wrong_device' }, raws.length);
          throw new VigilError('WRONG_DEVICE', `reading ${i} is for device ${reading.deviceId}; this token belongs to ${device.deviceId}`);
        }
        if (reading.flags) for (const flag of reading.flags) metrics.readingsSanitized.inc({ flag });
        seqs.push(reading.seq);
        jsons.push(JSON.stringify(reading));
      }
      if (rejected.length) metrics.readingsRejected.inc({ reason: 'invalid' }, rejected.length);
      if (jsons.length === 0) {
        throw new VigilError('INVALID_BODY', raws.length === 1 ? rejected[0].error : 'no reading in the batch is valid', { rejected });
      }

      let duplicates: number;
      try {
        const [result] = await stream.append([{ deviceId: device.deviceId, residentId: device.residentId, seqs, readings: jsons }]);
        duplicates = result.duplicates.length;
      } catch (err) {
        if (err instanceof StreamUnavailableError) {
          throw new VigilError('STREAM_UNAVAILABLE', err.message, {}, { 'retry-after': String(err.retryAfterSeconds) });
        }
        throw err;
      }
      const accepted = jsons.length - duplicates;
      metrics.readingsAccepted.inc(accepted);
      if (duplicates) metrics.readingsDuplicate.inc(duplicates);
      return reply.code(202).send({ accepted, duplicates, rejected });
    },
  );
}
