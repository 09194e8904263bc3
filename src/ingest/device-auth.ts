/**
 * Device token → device, with a short cache so the hot path neither hashes nor queries the
 * store per request (the cache is keyed by the token itself; it lives only in this process's
 * memory, where the token passes anyway). Unknown tokens are cached too (briefly), so a flood
 * of bad tokens costs one store lookup each per TTL, not per request.
 *
 * Revocation (docs/api.md): a rotation or revocation through this process's admin API calls
 * `invalidateDevice`, so the old token is refused from the next request on. Other processes
 * sharing the store see it when their cached entry expires: a known token is trusted for at
 * most `DEVICE_TTL_MS` (2 s) after it was looked up — the price is one store lookup per
 * device per 2 s.
 */
import { hashSecret } from '../core/ids.js';
import type { Device, Store } from '../store/types.js';

/** How long a known token is trusted without asking the store: the staleness bound of a revocation made elsewhere. */
export const DEVICE_TTL_MS = 2_000;
/** How long an unknown token is refused without asking the store. */
export const UNKNOWN_TTL_MS = 2_000;
const MAX_ENTRIES = 500_000;

export class DeviceAuth {
  private readonly cache = new Map<string, { device: Device | null; until: number }>();
  /** Bumped by every invalidation: a lookup that was in flight meanwhile does not cache what it read. */
  private generation = 0;

  constructor(private readonly store: Pick<Store, 'findDeviceByTokenHash'>) {}

  async lookup(token: string, now: number): Promise<Device | null> {
    const hit = this.cache.get(token);
    if (hit && hit.until > now) return hit.device;
    const generation = this.generation;
    const device = await this.store.findDeviceByTokenHash(hashSecret(token));
    if (generation === this.generation) {
      if (this.cache.size >= MAX_ENTRIES) this.cache.clear();
      this.cache.set(token, { device, until: now + (device ? DEVICE_TTL_MS : UNKNOWN_TTL_MS) });
    }
    return device;
  }

  /**
   * Forgets every cached token of the device (call after its token changed in the store).
   * A scan of the cache: rotations are rare admin calls, the hot path stays one map lookup.
   */
  invalidateDevice(deviceId: string): void {
    this.generation++;
    for (const [token, entry] of this.cache) {
      if (entry.device?.deviceId === deviceId) this.cache.delete(token);
    }
  }
}
