import { describe, expect, it } from 'vitest';
import { hashSecret } from '../core/ids.js';
import type { Device } from '../store/types.js';
import { DEVICE_TTL_MS, DeviceAuth, UNKNOWN_TTL_MS } from './device-auth.js';

const band1: Device = { deviceId: 'band-1', residentId: 'res-1', createdAt: 1 };
const band2: Device = { deviceId: 'band-2', residentId: 'res-1', createdAt: 2 };

/** A store of token hash → device that counts its lookups; `hold` makes the next lookup wait. */
function fakeStore(tokens: Record<string, Device>) {
  const byHash = new Map(Object.entries(tokens).map(([token, device]) => [hashSecret(token), device]));
  let gate: Promise<void> | null = null;
  const store = {
    lookups: 0,
    revoke: (token: string) => byHash.delete(hashSecret(token)),
    hold() {
      let release!: () => void;
      gate = new Promise((r) => (release = r));
      return release;
    },
    async findDeviceByTokenHash(hash: string): Promise<Device | null> {
      store.lookups++;
      const device = byHash.get(hash) ?? null; // read before waiting, as a store read in flight
      const wait = gate;
      gate = null;
      if (wait) await wait;
      return device;
    },
  };
  return store;
}

describe('DeviceAuth', () => {
  it('trusts a known token for at most 2 s, then asks the store again', async () => {
    const store = fakeStore({ 'tok-1': band1 });
    const auth = new DeviceAuth(store);
    expect(DEVICE_TTL_MS).toBe(2_000);
    expect(await auth.lookup('tok-1', 0)).toEqual(band1);
    expect(await auth.lookup('tok-1', DEVICE_TTL_MS - 1)).toEqual(band1);
    expect(store.lookups).toBe(1);
    // Revoked in the store by another process: refused as soon as the entry expires.
    store.revoke('tok-1');
    expect(await auth.lookup('tok-1', DEVICE_TTL_MS - 1)).toEqual(band1);
    expect(await auth.lookup('tok-1', DEVICE_TTL_MS)).toBeNull();
    expect(store.lookups).toBe(2);
  });

  it('caches unknown tokens briefly', async () => {
    const store = fakeStore({});
    const auth = new DeviceAuth(store);
    expect(await auth.lookup('nope', 0)).toBeNull();
    expect(await auth.lookup('nope', UNKNOWN_TTL_MS - 1)).toBeNull();
    expect(store.lookups).toBe(1);
    expect(await auth.lookup('nope', UNKNOWN_TTL_MS)).toBeNull();
    expect(store.lookups).toBe(2);
  });

  it('forgets a device at once when invalidated, and only that device', async () => {
    const store = fakeStore({ 'tok-1': band1, 'tok-2': band2 });
    const auth = new DeviceAuth(store);
    await auth.lookup('tok-1', 0);
    await auth.lookup('tok-2', 0);
    store.revoke('tok-1');
    auth.invalidateDevice('band-1');
    expect(await auth.lookup('tok-1', 1)).toBeNull();
    expect(await auth.lookup('tok-2', 1)).toEqual(band2);
    expect(store.lookups).toBe(3);
  });

  it('does not cache what a lookup in flight during an invalidation read', async () => {
    const store = fakeStore({ 'tok-1': band1 });
    const auth = new DeviceAuth(store);
    const release = store.hold();
    const inFlight = auth.lookup('tok-1', 0); // reads the old token's device, then waits
    store.revoke('tok-1');
    auth.invalidateDevice('band-1');
    release();
    expect(await inFlight).toEqual(band1); // that request began before the revocation
    expect(await auth.lookup('tok-1', 1)).toBeNull(); // the next one asks the store
  });
});
