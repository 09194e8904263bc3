/**
 * Device-side events (DESIGN §4): the band's SOS button and its on-device fall detection are
 * alerts at once — no window, no confirmation — because the resident or the band already
 * decided. SOS_CANCEL (the resident pressing "I'm OK") resolves an open SOS.
 */
import { alertId } from '../core/ids.js';
import type { Reading } from '../core/reading.js';
import type { AlertChange } from '../store/types.js';

export interface DetectionContext {
  residentId: string;
  deviceId: string;
  /** Processing time (wall clock) of this detection. */
  now: number;
}

export function deviceEventChanges(reading: Reading, ctx: DetectionContext): AlertChange[] {
  if (!reading.events) return [];
  const changes: AlertChange[] = [];
  for (const event of reading.events) {
    if (event === 'SOS' || event === 'FALL') {
      changes.push({
        kind: 'raise',
        alert: {
          id: alertId(ctx.residentId, event, ctx.deviceId, reading.seq),
          residentId: ctx.residentId,
          deviceId: ctx.deviceId,
          type: event,
          severity: 'critical',
          openedAt: reading.ts,
          detectedAt: ctx.now,
          delayMs: Math.max(0, ctx.now - reading.ts),
          evidence: { source: 'device', seq: reading.seq, ...(reading.location && { location: reading.location }) },
        },
      });
    } else if (event === 'SOS_CANCEL') {
      changes.push({ kind: 'resolve', residentId: ctx.residentId, type: 'SOS', at: reading.ts, evidence: { by: 'resident', seq: reading.seq } });
    }
  }
  return changes;
}
