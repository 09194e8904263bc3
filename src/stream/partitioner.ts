/**
 * Stable placement of a device on a partition: FNV-1a (32 bit) of the deviceId's UTF-8 bytes,
 * modulo the partition count. Stable across processes and versions, so a device's readings
 * always land in the same partition and stay ordered.
 */
export function partitionOf(deviceId: string, partitions: number): number {
  let h = 0x811c9dc5;
  for (const byte of Buffer.from(deviceId, 'utf8')) {
    h ^= byte;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h % partitions;
}
