/**
 * A partition's per-device state as the alerts and warehouse groups keep it: one entry per
 * device, restored from the checkpoint's state entries, and the devices changed since the last
 * commit. Only those are written with the next checkpoint (StateChanges), so a flush costs the
 * devices that sent, not the partition's whole fleet (at 250k devices a whole snapshot was
 * ~100 MB of JSON per partition per flush).
 */
import type { StateChanges } from '../../store/types.js';

export interface TrackedDevice<S> {
  residentId: string;
  state: S;
}

export class DeviceStates<S> implements Iterable<[deviceId: string, TrackedDevice<S>]> {
  private readonly devices = new Map<string, TrackedDevice<S>>();
  private changed = new Set<string>();

  /**
   * `restore` turns a saved state (or undefined) into a live one. `snapshot` is read for the
   * whole-partition `{ devices }` snapshots written before state entries existed: those devices
   * are all written at the next commit, after which the entries alone hold them.
   */
  constructor(
    private readonly restore: (saved: unknown) => S,
    saved: Map<string, unknown>,
    snapshot?: unknown,
  ) {
    const legacy = (snapshot as { devices?: Record<string, unknown> } | null | undefined)?.devices;
    for (const [id, entry] of legacy ? Object.entries(legacy) : []) if (this.restoreEntry(id, entry)) this.changed.add(id);
    for (const [id, entry] of saved) this.restoreEntry(id, entry);
  }

  /** The device's state, marked changed; a device given to another resident starts afresh (nothing of the former wearer carries over). */
  touch(deviceId: string, residentId: string): TrackedDevice<S> {
    let device = this.devices.get(deviceId);
    if (!device || device.residentId !== residentId) {
      device = { residentId, state: this.restore(undefined) };
      this.devices.set(deviceId, device);
    }
    this.changed.add(deviceId);
    return device;
  }

  get(deviceId: string): TrackedDevice<S> | undefined {
    return this.devices.get(deviceId);
  }

  [Symbol.iterator](): Iterator<[string, TrackedDevice<S>]> {
    return this.devices.entries();
  }

  /** Marks a device changed by a timer (its state moved without a reading). */
  markChanged(deviceId: string): void {
    this.changed.add(deviceId);
  }

  /** The entries to write with the next checkpoint; call `committed()` once it is written. */
  changes(): StateChanges {
    const put: [string, TrackedDevice<S>][] = [];
    for (const id of this.changed) {
      const device = this.devices.get(id);
      if (device) put.push([id, device]);
    }
    return { put };
  }

  committed(): void {
    this.changed = new Set();
  }

  private restoreEntry(deviceId: string, entry: unknown): boolean {
    const d = entry as Partial<TrackedDevice<unknown>> | null;
    if (!d?.residentId) return false;
    this.devices.set(deviceId, { residentId: d.residentId, state: this.restore(d.state) });
    return true;
  }
}
