/**
 * The packed stream record every backend writes: `{"deviceId","residentId","readings":[...]}`
 * of one entry's non-duplicate readings, built from their JSON text without re-serializing.
 * Backends with a size limit per message (NATS `max_payload`, Kinesis' 1 MiB) cut an entry,
 * in order, into consecutive records that each fit; consumers already expect a device's
 * readings to be spread over many records.
 */

export interface Packed {
  data: string;
  /** The `seq` of each reading in `data`. */
  seqs: number[];
}

const recordHead = (deviceId: string, residentId: string) =>
  `{"deviceId":${JSON.stringify(deviceId)},"residentId":${JSON.stringify(residentId)},"readings":[`;

/** One record with every reading (the embedded log has no size limit). */
export function packRecord(deviceId: string, residentId: string, readings: string[]): string {
  return `${recordHead(deviceId, residentId)}${readings.join(',')}]}`;
}

/** Records of at most `budget` bytes each; `what` names the limit in the error for a reading that cannot fit. */
export function packRecords(deviceId: string, residentId: string, readings: string[], seqs: number[], budget: number, what: string): Packed[] {
  const head = recordHead(deviceId, residentId);
  const whole = `${head}${readings.join(',')}]}`;
  // Length in UTF-16 units ≥ bytes / 3: most records skip counting bytes at all.
  if (whole.length * 3 <= budget || Buffer.byteLength(whole) <= budget) return [{ data: whole, seqs }];

  const out: Packed[] = [];
  const frame = Buffer.byteLength(head) + 2;
  let part: string[] = [];
  let partSeqs: number[] = [];
  let bytes = frame;
  for (let i = 0; i < readings.length; i++) {
    const size = Buffer.byteLength(readings[i]) + 1;
    if (frame + size > budget) {
      // Not a 503: retrying cannot help (ingest's limits keep a reading far below 1 MiB).
      throw new RangeError(`reading seq ${seqs[i]} of ${deviceId} is ${size} bytes, more than ${what} can carry`);
    }
    if (bytes + size > budget) {
      out.push({ data: `${head}${part.join(',')}]}`, seqs: partSeqs });
      part = [];
      partSeqs = [];
      bytes = frame;
    }
    part.push(readings[i]);
    partSeqs.push(seqs[i]);
    bytes += size;
  }
  out.push({ data: `${head}${part.join(',')}]}`, seqs: partSeqs });
  return out;
}
