/**
 * The `alerts` consumer group: runs the detectors per device in event time and commits the
 * alerts they raise, the notifications those alerts queue, the detector state and the
 * checkpoint in one store transaction — so a crash can neither lose an alert nor send one
 * twice, and a restart resumes every window where it was (DESIGN §3.2).
 *
 * Ordering: readings are taken per device in `seq` order within a record. A reading older
 * (in event time) than one already seen for its device still raises device events (SOS,
 * FALL) but does not feed the vital windows, which need time to move forward.
 */
import type { ReadingBatchRecord } from '../../core/reading.js';
import { decodeRecord, type StreamRecord } from '../../stream/types.js';
import type { Alert, AlertChange, OutboxItem, Store } from '../../store/types.js';
import { deviceEventChanges, type DetectionContext } from '../../detectors/device-events.js';
import { newVitalState, stepVital, VITAL_RULES, type VitalState } from '../../detectors/vitals.js';
import type { ConsumerGroup, FlushContext } from '../types.js';

interface DeviceState {
  lastTs: number;
  vitals: Record<string, VitalState>;
}

interface PartitionState {
  devices: Map<string, DeviceState>;
  changes: AlertChange[];
}

export interface AlertsGroupOptions {
  sustainMs: number;
  /** Builds the notifications an alert queues when it is first raised. */
  outboxFor: (alert: Alert) => Promise<OutboxItem[]>;
  /** Called after a commit that created alerts (wakes the notifier). */
  onRaised?: (alerts: Alert[]) => void;
  clock?: () => number;
}

export class AlertsGroup implements ConsumerGroup {
  readonly name = 'alerts';
  /**
   * A batch that changes an alert is committed at once (`urgent`); otherwise detector state and
   * checkpoint are committed every 200 ms, not every batch, so quiet traffic costs few fsyncs.
   */
  readonly flushEveryRecords = 5000;
  readonly flushEveryMs = 200;
  private readonly partitions = new Map<number, PartitionState>();
  private readonly clock: () => number;

  constructor(
    private readonly store: Store,
    private readonly opts: AlertsGroupOptions,
  ) {
    this.clock = opts.clock ?? Date.now;
  }

  async open(partition: number, snapshot: unknown): Promise<void> {
    const devices = new Map<string, DeviceState>();
    const saved = (snapshot as { devices?: Record<string, DeviceState> } | undefined)?.devices;
    if (saved) for (const [id, st] of Object.entries(saved)) devices.set(id, st);
    this.partitions.set(partition, { devices, changes: [] });
  }

  async handle(partition: number, records: StreamRecord[]): Promise<void> {
    const st = this.partitions.get(partition)!;
    const now = this.clock();
    for (const record of records) this.detect(st, decodeRecord(record), now);
  }

  private detect(st: PartitionState, batch: ReadingBatchRecord, now: number): void {
    const ctx: DetectionContext = { residentId: batch.residentId, deviceId: batch.deviceId, now };
    let device = st.devices.get(batch.deviceId);
    if (!device) {
      device = { lastTs: 0, vitals: {} };
      st.devices.set(batch.deviceId, device);
    }
    const readings = batch.readings.slice().sort((a, b) => a.seq - b.seq);
    for (const reading of readings) {
      st.changes.push(...deviceEventChanges(reading, ctx));
      if (reading.ts < device.lastTs) continue;
      device.lastTs = reading.ts;
      for (const rule of VITAL_RULES) {
        const vital = (device.vitals[rule.type] ??= newVitalState());
        const change = stepVital(rule, vital, reading, this.opts.sustainMs, ctx);
        if (change) st.changes.push(change);
      }
    }
  }

  urgent(partition: number): boolean {
    return (this.partitions.get(partition)?.changes.length ?? 0) > 0;
  }

  async flush(partition: number, ctx: FlushContext): Promise<void> {
    const st = this.partitions.get(partition)!;
    const { group, sequence, fence } = ctx.checkpoint;
    const snapshot = { devices: Object.fromEntries(st.devices) };
    const raised = await this.store.commitAlertBatch(st.changes, this.opts.outboxFor, { group, partition, sequence, snapshot, fence });
    st.changes = [];
    if (raised.length > 0) this.opts.onRaised?.(raised);
  }

  async close(partition: number): Promise<void> {
    this.partitions.delete(partition);
  }

  async shutdown(): Promise<void> {}
}
