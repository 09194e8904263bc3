import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

/** Random id with a readable prefix: `res_…`, `con_…`. */
export const newId = (prefix: string): string => `${prefix}_${randomBytes(12).toString('base64url')}`;

/** A bearer secret (device token, admin key, webhook secret): 256 bits of randomness. */
export const newSecret = (prefix: string): string => `${prefix}_${randomBytes(32).toString('base64url')}`;

/**
 * Secrets are stored only as SHA-256. They carry 256 random bits, so a slow password hash
 * would add latency to every request without adding safety.
 */
export const hashSecret = (secret: string): string => createHash('sha256').update(secret).digest('hex');

/** Compares two hex digests without leaking where they differ. */
export function sameDigest(a: string, b: string): boolean {
  const x = Buffer.from(a, 'hex');
  const y = Buffer.from(b, 'hex');
  return x.length === y.length && x.length > 0 && timingSafeEqual(x, y);
}

/**
 * Alert ids are derived from what triggered them (DESIGN §3.2), so replaying the stream finds
 * the alert it already made instead of making another.
 */
export function alertId(residentId: string, type: string, deviceId: string, seq: number): string {
  return 'alr_' + createHash('sha256').update(`${residentId}\n${type}\n${deviceId}\n${seq}`).digest('base64url').slice(0, 22);
}
