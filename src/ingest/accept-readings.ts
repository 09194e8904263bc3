/**
 * What every ingest front door does once it knows the device (DESIGN §3.1): take the parsed
 * body (one reading or `{"readings":[...]}`), validate and sanitize each reading, check every
 * reading belongs to the authenticated device, count, and make the good ones durable with one
 * `stream.append`. Used by `POST /v1/readings` (http-ingest.ts) and MQTT (mqtt-ingest.ts), so
 * both doors accept exactly the same readings.
 *
 * Errors: a body that can never be accepted throws a `VigilError` (INVALID_BODY,
 * TOO_MANY_READINGS, WRONG_DEVICE) before anything is appended; a stream that cannot accept
 * now lets `StreamUnavailableError` through unchanged (HTTP answers 503, MQTT withholds the
 * PUBACK) — nothing is half-written in either case.
 */
import type { Config } from '../core/config.js';
import { VigilError } from '../core/errors.js';
import type { Metrics } from '../core/metrics.js';
import type { Device } from '../store/types.js';
import type { StreamProducer } from '../stream/types.js';
import { sanitizeReading } from './sanitize.js';

export interface Rejected {
  index: number;
  error: string;
}

export interface AcceptResult {
  accepted: number;
  duplicates: number;
  rejected: Rejected[];
}

export interface AcceptDeps {
  config: Config;
  stream: StreamProducer;
  metrics: Metrics;
}

/** `device` is the authority (token or MQTT topic); a reading for another device rejects the whole body. */
export async function acceptReadings(deps: AcceptDeps, device: Device, body: unknown, now = Date.now()): Promise<AcceptResult> {
  const { config, stream, metrics } = deps;
  const maxBatch = config['ingest.maxBatch'];
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
      throw new VigilError('WRONG_DEVICE', `reading ${i} is for device ${reading.deviceId}; the sender is authenticated as device ${device.deviceId}`);
    }
    if (reading.flags) for (const flag of reading.flags) metrics.readingsSanitized.inc({ flag });
    seqs.push(reading.seq);
    jsons.push(JSON.stringify(reading));
  }
  if (rejected.length) metrics.readingsRejected.inc({ reason: 'invalid' }, rejected.length);
  if (jsons.length === 0) {
    throw new VigilError('INVALID_BODY', raws.length === 1 ? rejected[0].error : 'no reading in the batch is valid', { rejected });
  }

  // Resolves only once the readings are durable; StreamUnavailableError propagates as is.
  const [result] = await stream.append([{ deviceId: device.deviceId, residentId: device.residentId, seqs, readings: jsons }]);
  const duplicates = result.duplicates.length;
  const accepted = jsons.length - duplicates;
  metrics.readingsAccepted.inc(accepted);
  if (duplicates) metrics.readingsDuplicate.inc(duplicates);
  return { accepted, duplicates, rejected };
}
