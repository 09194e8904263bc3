/**
 * The resident's local calendar (IANA zone, DST included) as plain functions of (ts, zone):
 * detector state names its zone, the process shares one clock per zone (core/local-time.ts).
 */
import { clockFor } from '../../core/local-time.js';

export { isoDay } from '../../core/local-time.js';
export const DAY_MS = 86_400_000;

/** Local time minus UTC at `ts`, in ms. */
export const utcOffsetMs = (ts: number, timeZone: string): number => clockFor(timeZone).utcOffsetMs(ts);

/** Days since 1970-01-01 on the local calendar. */
export function localDay(ts: number, timeZone: string): number {
  return Math.floor((ts + utcOffsetMs(ts, timeZone)) / DAY_MS);
}

/** Minutes since local midnight (fractional). */
export function localMinute(ts: number, timeZone: string): number {
  const local = ts + utcOffsetMs(ts, timeZone);
  return (local - Math.floor(local / DAY_MS) * DAY_MS) / 60_000;
}

