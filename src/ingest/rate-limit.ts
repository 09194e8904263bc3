/**
 * Per-device token buckets: `burst` requests at once, refilled at `perSecond`. Defaults
 * (100/s, burst 200) let a phone that was offline for hours catch up in 500-reading batches
 * without being refused, while a runaway client is stopped.
 */
export class DeviceRateLimiter {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();

  constructor(
    private readonly perSecond: number,
    private readonly burst: number,
  ) {}

  /** Takes one token; returns 0 when allowed, else the seconds until one is available. */
  take(deviceId: string, now: number): number {
    let b = this.buckets.get(deviceId);
    if (!b) {
      b = { tokens: this.burst, at: now };
      this.buckets.set(deviceId, b);
    }
    b.tokens = Math.min(this.burst, b.tokens + ((now - b.at) / 1000) * this.perSecond);
    b.at = now;
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return 0;
    }
    return Math.max(1, Math.ceil((1 - b.tokens) / this.perSecond));
  }

  /** Forgets full buckets so memory follows active devices only. */
  sweep(now: number): void {
    for (const [id, b] of this.buckets) {
      if (b.tokens + ((now - b.at) / 1000) * this.perSecond >= this.burst) this.buckets.delete(id);
    }
  }
}
