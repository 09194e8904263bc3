/**
 * The `warehouse` consumer group: gathers a partition's readings and loads them into the
 * warehouse in big batches, then checkpoints (DESIGN §3.2: sink durable, then commit).
 * Replays after a restart load readings again, which the warehouse ignores on (deviceId, seq).
 */
import type { StreamRecord } from '../../stream/types.js';
import { decodeRecord } from '../../stream/types.js';
import type { Warehouse, WarehouseReading } from '../../warehouse/types.js';
import type { ConsumerGroup, FlushContext } from '../types.js';

export class WarehouseGroup implements ConsumerGroup {
  readonly name = 'warehouse';
  /** A load costs a transaction and an fsync whatever its size: make each one carry many readings. */
  readonly flushEveryRecords = 2000;
  readonly flushEveryMs = 1000;
  private readonly buffers = new Map<number, WarehouseReading[]>();

  constructor(private readonly warehouse: Warehouse) {}

  async open(partition: number): Promise<void> {
    this.buffers.set(partition, []);
  }

  async handle(partition: number, records: StreamRecord[]): Promise<void> {
    const buffer = this.bufferOf(partition);
    for (const record of records) {
      const batch = decodeRecord(record);
      for (const reading of batch.readings) {
        // Freshly parsed, so ours to extend in place rather than copy.
        (reading as WarehouseReading).residentId = batch.residentId;
        buffer.push(reading as WarehouseReading);
      }
    }
  }

  async flush(partition: number, ctx: FlushContext): Promise<void> {
    const buffer = this.bufferOf(partition);
    const loaded = buffer.length;
    if (loaded > 0) await this.warehouse.load(buffer);
    // Kept until loaded: a failed load leaves the rows for the retry, nothing is lost in between.
    buffer.splice(0, loaded);
    await ctx.commit(null);
  }

  async close(partition: number): Promise<void> {
    this.buffers.delete(partition);
  }

  async shutdown(): Promise<void> {
    await this.warehouse.close();
  }

  private bufferOf(partition: number): WarehouseReading[] {
    let buffer = this.buffers.get(partition);
    if (!buffer) {
      buffer = [];
      this.buffers.set(partition, buffer);
    }
    return buffer;
  }
}
