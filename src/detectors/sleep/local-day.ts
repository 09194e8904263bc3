/**
 * The resident's local calendar (IANA zone, DST included) without keeping anything that is not
 * JSON in detector state: zones are cached here, per process, by name.
 *
 * Same method as the simulator's LocalClock (src/core/local-time.ts): Intl is slow-ish, so a zone's UTC offset is looked
 * up once per quarter hour of UTC time — every zone changes its offset on a quarter-hour boundary.
 */
const QUARTER_HOUR_MS = 15 * 60_000;
export const DAY_MS = 86_400_000;

interface Zone {
  format: Intl.DateTimeFormat;
  bucket: number;
  offsetMs: number;
}

const zones = new Map<string, Zone>();

function zone(timeZone: string): Zone {
  let z = zones.get(timeZone);
  if (!z) {
    // Throws RangeError on an unknown zone: a resident configured with one is a bug to surface.
    const format = new Intl.DateTimeFormat('en-US', {
      timeZone,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
    });
    z = { format, bucket: NaN, offsetMs: 0 };
    zones.set(timeZone, z);
  }
  return z;
}

/** Local time minus UTC at `ts`, in ms. */
export function utcOffsetMs(ts: number, timeZone: string): number {
  const z = zone(timeZone);
  const bucket = Math.floor(ts / QUARTER_HOUR_MS);
  if (bucket !== z.bucket) {
    const at = bucket * QUARTER_HOUR_MS;
    const p: Record<string, number> = {};
    for (const { type, value } of z.format.formatToParts(at)) p[type] = Number(value);
    z.offsetMs = Date.UTC(p.year, p.month - 1, p.day, p.hour, p.minute, p.second) - at;
    z.bucket = bucket;
  }
  return z.offsetMs;
}

/** Days since 1970-01-01 on the local calendar. */
export function localDay(ts: number, timeZone: string): number {
  return Math.floor((ts + utcOffsetMs(ts, timeZone)) / DAY_MS);
}

/** Minutes since local midnight (fractional). */
export function localMinute(ts: number, timeZone: string): number {
  const local = ts + utcOffsetMs(ts, timeZone);
  return (local - Math.floor(local / DAY_MS) * DAY_MS) / 60_000;
}

/** YYYY-MM-DD of a local day number. */
export function isoDay(day: number): string {
  return new Date(day * DAY_MS).toISOString().slice(0, 10);
}
