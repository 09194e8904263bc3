/**
 * The `alerts` consumer group: runs every detector per device in event time
 * (detectors/device-detector.ts) and commits the alerts they raise, the notifications those
 * alerts queue, the detector state and the checkpoint in one store transaction — so a crash
 * can neither lose an alert nor send one twice, and a restart resumes every window where it
 * was (DESIGN §3.2).
 *
 * Alerts for the past (DESIGN §3.3, issue: late data): an alert raised from late data keeps
 * its `delayMs`. A condition alert (vitals, inactivity, …) raised late whose condition is
 * already over within the same commit is recorded without paging anyone; falls and SOS are
 * always paged — a fall 20 minutes ago still needs someone.
 */
import type { ReadingBatchRecord } from '../../core/reading.js';
import { knownTimeZone } from '../../core/local-time.js';
import { decodeRecord, type StreamRecord } from '../../stream/types.js';
import type { Alert, AlertChange, OutboxItem, Store } from '../../store/types.js';
import { admitReading, restoreDeviceState, tickDevice, type DeviceState, type ResidentContext } from '../../detectors/device-detector.js';
import { effectiveSettings, residentSettingsKey, type DetectionOverrides, type DetectionSettings } from '../../detectors/detection-settings.js';
import type { ConsumerGroup, FlushContext } from '../types.js';
import { DeviceStates } from './device-states.js';

interface PartitionState {
  devices: DeviceStates<DeviceState>;
  changes: AlertChange[];
  /** Processing time this worker took the partition (DEVICE_OFFLINE ignores silence before it). */
  openedAt: number;
}

export interface AlertsGroupOptions {
  /** Site-wide detection settings (defaults with the config's overrides). */
  settings: DetectionSettings;
  /** Builds the notifications an alert queues when it is first raised. */
  outboxFor: (alert: Alert) => Promise<OutboxItem[]>;
  /** Called after a commit that created alerts (wakes the notifier). */
  onRaised?: (alerts: Alert[]) => void;
  clock?: () => number;
}

/** Resident details and overrides are re-read this often: an admin's change applies within it. */
const RESIDENT_TTL_MS = 60_000;
/** Data older than this when processed is "late" for the paging decision. */
export const LATE_MS = 120_000;
/** Alerts that are paged whenever they are detected. */
const ALWAYS_PAGED = new Set(['FALL', 'SOS']);

/** How often the processing-time timers (silent devices, gaps given up on) are looked at. */
const TICK_EVERY_MS = 1000;

export class AlertsGroup implements ConsumerGroup {
  readonly name = 'alerts';
  /**
   * A batch that changes an alert is committed at once (`urgent`); otherwise detector state and
   * checkpoint are committed every 200 ms, not every batch, so quiet traffic costs few fsyncs.
   */
  readonly flushEveryRecords = 5000;
  readonly flushEveryMs = 200;
  private readonly partitions = new Map<number, PartitionState>();
  private lastTick = 0;
  private readonly residents = new Map<string, { context: ResidentContext; loadedAt: number }>();
  private readonly clock: () => number;

  constructor(
    private readonly store: Store,
    private readonly opts: AlertsGroupOptions,
  ) {
    this.clock = opts.clock ?? Date.now;
  }

  async open(partition: number, snapshot: unknown, state: Map<string, unknown>): Promise<void> {
    const devices = new DeviceStates(restoreDeviceState, state, snapshot);
    this.partitions.set(partition, { devices, changes: [], openedAt: this.clock() });
  }

  async handle(partition: number, records: StreamRecord[]): Promise<void> {
    const st = this.partitions.get(partition)!;
    const now = this.clock();
    for (const record of records) {
      const batch = decodeRecord(record);
      const rc = await this.residentContext(batch.residentId);
      this.detect(st, batch, rc, now);
    }
  }

  private detect(st: PartitionState, batch: ReadingBatchRecord, rc: ResidentContext, now: number): void {
    const device = st.devices.touch(batch.deviceId, batch.residentId);
    const readings = batch.readings.length > 1 ? batch.readings.slice().sort((a, b) => a.seq - b.seq) : batch.readings;
    for (const reading of readings) admitReading(device.state, reading, rc, now, st.changes);
  }

  async tick(now: number, caughtUp: boolean): Promise<void> {
    // The runtime ticks after every pass; the timers here are per second at the finest, and a
    // pass over every device of a big fleet is not free.
    if (!caughtUp || now - this.lastTick < TICK_EVERY_MS) return;
    this.lastTick = now;
    for (const st of this.partitions.values()) {
      for (const [deviceId, device] of st.devices) {
        const rc = await this.residentContext(device.residentId);
        if (tickDevice(device.state, deviceId, rc, now, st.openedAt, st.changes)) st.devices.markChanged(deviceId);
      }
    }
  }

  urgent(partition: number): boolean {
    return (this.partitions.get(partition)?.changes.length ?? 0) > 0;
  }

  async flush(partition: number, ctx: FlushContext): Promise<void> {
    const st = this.partitions.get(partition)!;
    const { group, sequence, fence } = ctx.checkpoint;
    const silent = pastAndOver(st.changes);
    const outboxFor = silent.size === 0 ? this.opts.outboxFor : async (alert: Alert) => (silent.has(alert.id) ? [] : this.opts.outboxFor(alert));
    const state = st.devices.changes();
    const raised = await this.store.commitAlertBatch(st.changes, outboxFor, { group, partition, sequence, snapshot: null, fence, state });
    st.devices.committed();
    st.changes = [];
    if (raised.length > 0) this.opts.onRaised?.(raised);
  }

  async close(partition: number): Promise<void> {
    this.partitions.delete(partition);
  }

  async shutdown(): Promise<void> {}

  private async residentContext(residentId: string): Promise<ResidentContext> {
    const now = this.clock();
    const cached = this.residents.get(residentId);
    if (cached && now - cached.loadedAt < RESIDENT_TTL_MS) return cached.context;
    const [resident, overrides] = await Promise.all([this.store.getResident(residentId), this.store.getSetting(residentSettingsKey(residentId))]);
    const context: ResidentContext = {
      residentId,
      timezone: knownTimeZone(resident?.timezone ?? 'UTC'),
      home: resident?.homeLocation ?? null,
      settings: effectiveSettings(this.opts.settings, overrides ? (JSON.parse(overrides) as DetectionOverrides) : null),
    };
    this.residents.set(residentId, { context, loadedAt: now });
    return context;
  }
}

/** Ids of condition alerts raised from late data whose condition cleared later in the same changes. */
export function pastAndOver(changes: AlertChange[]): Set<string> {
  const silent = new Set<string>();
  const pending = new Map<string, string>();
  for (const c of changes) {
    if (c.kind === 'raise') {
      if (!ALWAYS_PAGED.has(c.alert.type) && (c.alert.delayMs ?? 0) > LATE_MS) pending.set(`${c.alert.residentId}\n${c.alert.type}`, c.alert.id);
    } else {
      const key = `${c.residentId}\n${c.type}`;
      const id = pending.get(key);
      if (id) {
        silent.add(id);
        pending.delete(key);
      }
    }
  }
  return silent;
}
