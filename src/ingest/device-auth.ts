/**
 * Device token → device, with a short cache so the hot path neither hashes nor queries the
 * store per request (the cache is keyed by the token itself; it lives only in this process's
 * memory, where the token passes anyway). Unknown tokens are cached too (briefly), so a flood
 * of bad tokens costs one store lookup each per TTL, not per request.
 */
import { hashSecret } from '../core/ids.js';
import type { Device, Store } from '../store/types.js';

const TTL_MS = 10_000;
const MAX_ENTRIES = 500_000;

export class DeviceAuth {
  private readonly cache = new Map<string, { device: Device | null; until: number }>();

  constructor(private readonly store: Store) {}

  async lookup(token: string, now: number): Promise<Device | null> {
    const hit = this.cache.get(token);
    if (hit && hit.until > now) return hit.device;
    const device = await this.store.findDeviceByTokenHash(hashSecret(token));
    if (this.cache.size >= MAX_ENTRIES) this.cache.clear();
    this.cache.set(token, { device, until: now + (device ? TTL_MS : TTL_MS / 5) });
    return device;
  }
}
