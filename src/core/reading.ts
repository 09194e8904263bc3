/**
 * The reading as it travels after ingest (DESIGN §3.1): validated, sanitized, with `ts` and
 * `receivedAt` as epoch milliseconds. (deviceId, seq) is the idempotency key end to end.
 */
export type DeviceEvent = 'SOS' | 'SOS_CANCEL' | 'FALL';
export const DEVICE_EVENTS: readonly DeviceEvent[] = ['SOS', 'SOS_CANCEL', 'FALL'];

export interface Accelerometer {
  hz: number;
  /** [x, y, z] in g. */
  samples: [number, number, number][];
}

export interface GeoLocation {
  lat: number;
  lon: number;
  accuracyM?: number;
}

export interface Reading {
  deviceId: string;
  seq: number;
  /** Device time, epoch ms (replaced by receivedAt when it was too far in the future). */
  ts: number;
  /** Server receive time, epoch ms. */
  receivedAt: number;
  hr?: number;
  spo2?: number;
  skinTemp?: number;
  steps?: number;
  battery?: number;
  worn?: boolean;
  charging?: boolean;
  acc?: Accelerometer;
  events?: DeviceEvent[];
  location?: GeoLocation;
  /** What sanitizing changed: `hr:out_of_range`, `ts:future`, `events:unknown`, ... */
  flags?: string[];
}

/**
 * One stream record: the readings of one device accepted by one request, in request order.
 * Packing a request into one record keeps the log's per-record cost off the hot path (and is
 * what Kinesis needs to stay under its records/s per shard limit).
 */
export interface ReadingBatchRecord {
  deviceId: string;
  residentId: string;
  readings: Reading[];
}
