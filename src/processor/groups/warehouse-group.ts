/**
 * The `warehouse` consumer group: gathers a partition's readings and loads them into the
 * warehouse in big batches, with the per-day summaries derived from them (sleep sessions and
 * daily activity, detectors/device-summaries.ts), then checkpoints with the summaries' state
 * (DESIGN §3.2: sink durable, then commit). Replays after a restart load readings again,
 * which the warehouse ignores on (deviceId, seq), and recompute the same summaries from the
 * restored state, which replace their rows.
 */
import type { Reading } from '../../core/reading.js';
import type { StreamRecord } from '../../stream/types.js';
import { decodeRecord } from '../../stream/types.js';
import type { DailyActivity } from '../../detectors/activity/daily-activity.js';
import { activitySoFar, restoreSummaryState, summarizeReading, tickSummaries, type Summaries, type SummaryState } from '../../detectors/device-summaries.js';
import type { DailyActivityRow, SleepSessionRow, Warehouse, WarehouseReading } from '../../warehouse/types.js';
import type { ConsumerGroup, FlushContext } from '../types.js';
import { DeviceStates } from './device-states.js';

interface PartitionState {
  buffer: WarehouseReading[];
  devices: DeviceStates<SummaryState>;
  sleep: SleepSessionRow[];
  /** Latest row per (device, day): a day may end and be rewritten within one flush. */
  days: Map<string, DailyActivityRow>;
  /** Devices with readings since the last flush: their running day is rewritten. */
  touched: Set<string>;
}

export interface WarehouseGroupOptions {
  /** The resident's IANA time zone (their nights and days are local). */
  timezoneOf(residentId: string): Promise<string>;
}

/** How often the processing-time timers (silent devices, gaps given up on) are looked at. */
const TICK_EVERY_MS = 1000;

export class WarehouseGroup implements ConsumerGroup {
  readonly name = 'warehouse';
  /** A load costs a transaction and an fsync whatever its size: make each one carry many readings. */
  readonly flushEveryRecords = 2000;
  readonly flushEveryMs = 1000;
  private readonly partitions = new Map<number, PartitionState>();
  private lastTick = 0;

  constructor(
    private readonly warehouse: Warehouse,
    private readonly opts: WarehouseGroupOptions,
  ) {}

  async open(partition: number, snapshot: unknown, state: Map<string, unknown>): Promise<void> {
    const devices = new DeviceStates(restoreSummaryState, state, snapshot);
    this.partitions.set(partition, { buffer: [], devices, sleep: [], days: new Map(), touched: new Set() });
  }

  async handle(partition: number, records: StreamRecord[]): Promise<void> {
    const st = this.partitions.get(partition)!;
    for (const record of records) {
      const batch = decodeRecord(record);
      const timezone = await this.opts.timezoneOf(batch.residentId);
      const device = st.devices.touch(batch.deviceId, batch.residentId);
      const out: Summaries = { sleep: [], days: [] };
      const readings = batch.readings.length > 1 ? batch.readings.slice().sort((a, b) => a.seq - b.seq) : batch.readings;
      for (const reading of readings) {
        summarizeReading(device.state, reading, timezone, out);
        st.buffer.push(forWarehouse(reading, batch.residentId));
      }
      this.collect(st, batch.deviceId, device.residentId, out);
      st.touched.add(batch.deviceId);
    }
  }

  async tick(now: number, caughtUp: boolean): Promise<void> {
    // The runtime ticks after every pass; the timers here are per second at the finest, and a
    // pass over every device of a big fleet is not free.
    if (!caughtUp || now - this.lastTick < TICK_EVERY_MS) return;
    this.lastTick = now;
    for (const st of this.partitions.values()) {
      for (const [deviceId, device] of st.devices) {
        const out: Summaries = { sleep: [], days: [] };
        if (tickSummaries(device.state, await this.opts.timezoneOf(device.residentId), now, out)) st.devices.markChanged(deviceId);
        if (out.sleep.length + out.days.length > 0) {
          this.collect(st, deviceId, device.residentId, out);
          st.touched.add(deviceId);
        }
      }
    }
  }

  urgent(partition: number): boolean {
    const st = this.partitions.get(partition);
    return st !== undefined && st.buffer.length === 0 && (st.sleep.length > 0 || st.days.size > 0);
  }

  async flush(partition: number, ctx: FlushContext): Promise<void> {
    const st = this.partitions.get(partition)!;
    const loaded = st.buffer.length;
    if (loaded > 0) await this.warehouse.load(st.buffer);
    // Kept until loaded: a failed load leaves the rows for the retry, nothing is lost in between.
    st.buffer.splice(0, loaded);
    for (const deviceId of st.touched) {
      const device = st.devices.get(deviceId)!;
      const today = activitySoFar(device.state);
      if (today) st.days.set(`${deviceId}\n${today.day}`, activityRow(deviceId, device.residentId, today, false));
    }
    if (st.sleep.length > 0 || st.days.size > 0) await this.warehouse.saveInsights({ sleep: st.sleep, activity: [...st.days.values()] });
    st.sleep = [];
    st.days.clear();
    st.touched.clear();
    await ctx.commit(null, st.devices.changes());
    st.devices.committed();
  }

  async close(partition: number): Promise<void> {
    this.partitions.delete(partition);
  }

  async shutdown(): Promise<void> {
    await this.warehouse.close();
  }

  private collect(st: PartitionState, deviceId: string, residentId: string, out: Summaries): void {
    for (const s of out.sleep) {
      st.sleep.push({
        deviceId,
        residentId,
        night: s.night,
        start: new Date(s.start).toISOString(),
        end: new Date(s.end).toISOString(),
        totalSleepMin: s.totalSleepMin,
        efficiency: s.efficiency,
        wasoMin: s.wasoMin,
        awakenings: s.awakenings,
        onsetLatencyMin: s.onsetLatencyMin ?? null,
      });
    }
    for (const d of out.days) st.days.set(`${deviceId}\n${d.day}`, activityRow(deviceId, residentId, d, true));
  }
}

const activityRow = (deviceId: string, residentId: string, d: DailyActivity, final: boolean): DailyActivityRow => ({
  deviceId,
  residentId,
  day: d.day,
  steps: d.steps,
  activeMinutes: d.activeMinutes,
  longestSedentaryMin: d.longestSedentaryMin,
  wornMinutes: d.wornMinutes,
  final,
});

/**
 * What the buffer keeps of a reading until the flush: the burst's samples summarized to their
 * count. They are most of a parsed reading (125 [x, y, z] arrays at 25 Hz, ~8 KB of heap), and
 * a buffer holds up to `flushEveryRecords` records of every owned partition.
 */
function forWarehouse(reading: Reading, residentId: string): WarehouseReading {
  const { acc, ...rest } = reading;
  return { ...rest, residentId, acc: acc && { hz: acc.hz, sampleCount: acc.samples.length } };
}
