/**
 * A resident's day runs on their local clock (they go to bed at 22:30 in Paris, not in UTC),
 * DST included. Intl is slow-ish, so the UTC offset is looked up once per quarter hour: every
 * time zone changes its offset on a quarter-hour boundary.
 */
const QUARTER_HOUR_MS = 15 * 60_000;
const DAY_MS = 86_400_000;

export interface LocalTime {
  /** Days since 1970-01-01 on the local calendar: identifies "this night", "this morning". */
  day: number;
  /** Minutes since local midnight, fractional. */
  minute: number;
}

export class LocalClock {
  private readonly format: Intl.DateTimeFormat;
  /** Offsets of the quarter hours looked up last: detectors ask about "now" and "12 h ago" in turn. */
  private readonly offsets = new Map<number, number>();

  /** Throws RangeError on an unknown IANA time zone. */
  constructor(readonly timeZone: string) {
    this.format = new Intl.DateTimeFormat('en-US', {
      timeZone,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
    });
  }

  at(ts: number): LocalTime {
    const local = ts + this.utcOffsetMs(ts);
    const day = Math.floor(local / DAY_MS);
    return { day, minute: (local - day * DAY_MS) / 60_000 };
  }

  /** Local time minus UTC at `ts`, ms. */
  utcOffsetMs(ts: number): number {
    const bucket = Math.floor(ts / QUARTER_HOUR_MS);
    let offset = this.offsets.get(bucket);
    if (offset === undefined) {
      offset = this.offsetAt(bucket * QUARTER_HOUR_MS);
      if (this.offsets.size >= 16) this.offsets.clear();
      this.offsets.set(bucket, offset);
    }
    return offset;
  }

  /**
   * Epoch ms of `minute` minutes after midnight of local `day` (as `at` numbers them). In the
   * hour a DST change skips, the result is an hour off either way; in the hour it repeats,
   * one of the two instants.
   */
  toEpoch(day: number, minute: number): number {
    const quarter = (ts: number) => Math.floor(ts / QUARTER_HOUR_MS) * QUARTER_HOUR_MS; // offsets change on these
    const local = day * DAY_MS + minute * 60_000;
    const guess = local - this.offsetAt(quarter(local));
    return local - this.offsetAt(quarter(guess));
  }

  private offsetAt(ts: number): number {
    const p: Record<string, number> = {};
    for (const { type, value } of this.format.formatToParts(ts)) p[type] = Number(value);
    return Date.UTC(p.year, p.month - 1, p.day, p.hour, p.minute, p.second) - ts;
  }
}

const shared = new Map<string, LocalClock>();

/**
 * One clock per zone for the whole process, so detector state (plain JSON) can name its zone
 * instead of holding a clock. Throws RangeError on an unknown zone.
 */
export function clockFor(timeZone: string): LocalClock {
  let clock = shared.get(timeZone);
  if (!clock) {
    clock = new LocalClock(timeZone);
    shared.set(timeZone, clock);
  }
  return clock;
}

/** YYYY-MM-DD of a local day number (`LocalTime.day`). */
export const isoDay = (day: number): string => new Date(day * DAY_MS).toISOString().slice(0, 10);

/** `timeZone` if the runtime knows it, else UTC: a bad zone in stored data must not stop a detector. */
export function knownTimeZone(timeZone: string): string {
  try {
    clockFor(timeZone);
    return timeZone;
  } catch {
    return 'UTC';
  }
}
