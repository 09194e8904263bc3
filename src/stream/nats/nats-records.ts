/**
 * What one JetStream message holds: a packed record, byte for byte the JSON the embedded log
 * writes (`{"deviceId","residentId","readings":[...]}`), of an entry's non-duplicate readings.
 *
 * One message per entry, unless the record is larger than the server's `max_payload` (1 MiB by
 * default, while a request may carry 8 MiB of readings): then the readings are cut, in order,
 * into consecutive records that each fit. Consumers already expect a device's readings to be
 * spread over many records.
 */
import { packRecords as packInto, type Packed } from '../record-packing.js';

export type { Packed };

/** Room kept in a message for the headers (`Nats-Msg-Id`) and protocol framing. */
const HEADER_ROOM = 1024;

export function packRecords(deviceId: string, residentId: string, readings: string[], seqs: number[], maxPayload: number): Packed[] {
  return packInto(deviceId, residentId, readings, seqs, maxPayload - HEADER_ROOM, `a NATS message (max_payload ${maxPayload})`);
}

/**
 * `Nats-Msg-Id` of a record: it names the set of (deviceId, seq) the record carries, so that
 * JetStream drops a second publish of the same readings within its duplicate window (a retry
 * after a lost ack, or after a crash before the dedupe ranges were written). A phone numbers
 * readings consecutively, so the set is nearly always the range `<lowest>..<lowest+count-1>`;
 * any other set also gets a hash of its seqs, so that two different sets never share an id.
 */
export function msgIdOf(deviceId: string, seqs: number[]): string {
  // `seqs` are distinct (duplicates were removed), so lo..hi holding `length` values means a range.
  let lo = Infinity;
  let hi = -Infinity;
  for (const s of seqs) {
    if (s < lo) lo = s;
    if (s > hi) hi = s;
  }
  const id = `${deviceId}:${lo}:${seqs.length}`;
  if (hi - lo + 1 === seqs.length) return id;
  let h = 0x811c9dc5;
  for (const s of [...seqs].sort((a, b) => a - b)) {
    for (const c of `${s},`) h = Math.imul(h ^ c.charCodeAt(0), 0x01000193) >>> 0;
  }
  return `${id}:${h.toString(16)}`;
}
