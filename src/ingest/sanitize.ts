/**
 * Validation and sanitizing of one wire reading (DESIGN §3.1). Hand-written rather than a
 * generic schema validator because the rules are not only accept/reject: physically
 * impossible measurements are dropped from an otherwise good reading and flagged, and a
 * future timestamp is replaced. The output object is built field by field, so unknown keys
 * (including `__proto__` and `constructor`) never reach it.
 */
import { DEVICE_EVENTS, type DeviceEvent, type Reading } from '../core/reading.js';

export const DEVICE_ID = /^[A-Za-z0-9._-]{1,64}$/;

/** Readings stamped before this are rejected: no wristband sent data in 2000. */
const EARLIEST_TS = Date.UTC(2000, 0, 1);
const MAX_ACC_SAMPLES = 2000;

/** Physically possible ranges; values outside are dropped and flagged, not kept. */
const RANGES = {
  hr: [20, 250], // bpm (DESIGN §3.1)
  spo2: [50, 100], // %
  skinTemp: [20, 45], // °C at the wrist
  battery: [0, 100], // %
  steps: [0, 1000], // per 5-s reading; a sprinter makes ~20, 1000 is far beyond a human
} as const;

export interface SanitizeOptions {
  now: number;
  maxFutureSkewMs: number;
}

export type SanitizeResult = { reading: Reading; error?: undefined } | { reading?: undefined; error: string };

const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);
const isFiniteNumber = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);

const num = (s: string, from: number, len: number) => {
  let n = 0;
  for (let i = from; i < from + len; i++) {
    const d = s.charCodeAt(i) - 48;
    if (d < 0 || d > 9) return -1;
    n = n * 10 + d;
  }
  return n;
};

/**
 * `YYYY-MM-DDTHH:mm:ss.sssZ`, what phones send (JavaScript's toISOString), read by offset:
 * three times faster than Date.parse on the ingest hot path, and stricter: 31 February is
 * invalid, where Date.parse would roll it over into March.
 */
function parseCanonicalIso(s: string): number | undefined {
  if (s.length !== 24 || s[4] !== '-' || s[7] !== '-' || s[10] !== 'T' || s[13] !== ':' || s[16] !== ':' || s[19] !== '.' || s[23] !== 'Z') return undefined;
  const y = num(s, 0, 4);
  const mo = num(s, 5, 2);
  const d = num(s, 8, 2);
  const h = num(s, 11, 2);
  const mi = num(s, 14, 2);
  const sec = num(s, 17, 2);
  const ms = num(s, 20, 3);
  if (y < 0 || mo < 1 || mo > 12 || d < 1 || d > 31 || h < 0 || h > 23 || mi < 0 || mi > 59 || sec < 0 || sec > 59 || ms < 0) return undefined;
  const t = Date.UTC(y, mo - 1, d, h, mi, sec, ms);
  // Date.UTC rolls 31 February over into March: such a date is invalid, not March.
  return new Date(t).getUTCDate() === d ? t : undefined;
}

function parseTs(v: unknown): number | undefined {
  if (typeof v === 'number') return Number.isFinite(v) ? Math.round(v) : undefined;
  if (typeof v === 'string' && v.length === 24 && v[23] === 'Z') return parseCanonicalIso(v);
  if (typeof v === 'string' && v.length <= 40 && /^\d{4}-\d{2}-\d{2}T/.test(v)) {
    const ms = Date.parse(v);
    return Number.isNaN(ms) ? undefined : ms;
  }
  return undefined;
}

export function sanitizeReading(raw: unknown, opts: SanitizeOptions): SanitizeResult {
  if (!isObject(raw)) return { error: 'reading must be a JSON object' };
  const { deviceId, seq } = raw;
  if (typeof deviceId !== 'string' || !DEVICE_ID.test(deviceId))
    return { error: 'deviceId must be a string of 1-64 characters from [A-Za-z0-9._-]' };
  if (typeof seq !== 'number' || !Number.isSafeInteger(seq) || seq < 0)
    return { error: 'seq must be an integer from 0 to 2^53-1' };
  const ts = parseTs(raw.ts);
  if (ts === undefined) return { error: 'ts must be an ISO-8601 date-time string or epoch milliseconds' };
  if (ts < EARLIEST_TS) return { error: 'ts is before 2000-01-01' };

  const flags: string[] = [];
  const reading: Reading = { deviceId, seq, ts, receivedAt: opts.now };
  if (ts > opts.now + opts.maxFutureSkewMs) {
    reading.ts = opts.now;
    flags.push('ts:future');
  }

  for (const field of ['hr', 'spo2', 'skinTemp', 'battery', 'steps'] as const) {
    const v = raw[field];
    if (v === undefined || v === null) continue;
    if (!isFiniteNumber(v)) return { error: `${field} must be a number` };
    if (field === 'steps' && !Number.isInteger(v)) return { error: 'steps must be an integer' };
    const [lo, hi] = RANGES[field];
    if (v < lo || v > hi) flags.push(`${field}:out_of_range`);
    else reading[field] = v;
  }

  for (const field of ['worn', 'charging'] as const) {
    const v = raw[field];
    if (v === undefined || v === null) continue;
    if (typeof v !== 'boolean') return { error: `${field} must be true or false` };
    reading[field] = v;
  }

  if (raw.acc !== undefined && raw.acc !== null) {
    const acc = raw.acc;
    if (!isObject(acc) || !isFiniteNumber(acc.hz) || !Array.isArray(acc.samples))
      return { error: 'acc must be {hz: number, samples: [[x,y,z], ...]}' };
    if (acc.hz < 1 || acc.hz > 1000) return { error: 'acc.hz must be from 1 to 1000' };
    const samples = acc.samples as unknown[];
    if (samples.length > MAX_ACC_SAMPLES) return { error: `acc.samples holds at most ${MAX_ACC_SAMPLES} samples` };
    const clean: [number, number, number][] = new Array(samples.length);
    for (let i = 0; i < samples.length; i++) {
      const s = samples[i];
      if (!Array.isArray(s) || s.length !== 3 || !isFiniteNumber(s[0]) || !isFiniteNumber(s[1]) || !isFiniteNumber(s[2]))
        return { error: `acc.samples[${i}] must be [x, y, z] numbers in g` };
      if (Math.abs(s[0]) > 64 || Math.abs(s[1]) > 64 || Math.abs(s[2]) > 64)
        return { error: `acc.samples[${i}] is beyond ±64 g` };
      clean[i] = [s[0], s[1], s[2]];
    }
    reading.acc = { hz: acc.hz, samples: clean };
  }

  if (raw.events !== undefined && raw.events !== null) {
    if (!Array.isArray(raw.events) || raw.events.length > 16 || !raw.events.every((e) => typeof e === 'string'))
      return { error: 'events must be an array of at most 16 strings' };
    const known = raw.events.filter((e): e is DeviceEvent => DEVICE_EVENTS.includes(e as DeviceEvent));
    if (known.length !== raw.events.length) flags.push('events:unknown');
    if (known.length > 0) reading.events = [...new Set(known)];
  }

  if (raw.location !== undefined && raw.location !== null) {
    const loc = raw.location;
    if (!isObject(loc) || !isFiniteNumber(loc.lat) || !isFiniteNumber(loc.lon))
      return { error: 'location must be {lat: number, lon: number, accuracyM?: number}' };
    if (loc.accuracyM !== undefined && !isFiniteNumber(loc.accuracyM)) return { error: 'location.accuracyM must be a number' };
    if (Math.abs(loc.lat) > 90 || Math.abs(loc.lon) > 180 || (loc.accuracyM !== undefined && loc.accuracyM < 0)) {
      flags.push('location:out_of_range');
    } else {
      reading.location = { lat: loc.lat, lon: loc.lon };
      if (loc.accuracyM !== undefined) reading.location.accuracyM = loc.accuracyM;
    }
  }

  if (flags.length > 0) reading.flags = flags;
  return { reading };
}
