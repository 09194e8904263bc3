/**
 * Device-side events (DESIGN §4): the band's SOS button and its on-device fall detection are
 * alerts at once — no window, no confirmation — because the resident or the band already
 * decided. SOS_CANCEL (the resident pressing "I'm OK") resolves an open SOS; the caller
 * decides whether it also resolves a recent fall (the "I'm OK" window).
 */
import type { Reading } from '../core/reading.js';
import type { AlertChange } from '../store/types.js';
import { raise, resolve, type DetectionContext } from './alert-changes.js';

export type { DetectionContext } from './alert-changes.js';

export function deviceEventChanges(reading: Reading, ctx: DetectionContext): AlertChange[] {
  if (!reading.events) return [];
  const changes: AlertChange[] = [];
  for (const event of reading.events) {
    if (event === 'SOS' || event === 'FALL') {
      const evidence = { source: 'device', seq: reading.seq, ...(reading.location && { location: reading.location }) };
      changes.push(raise(ctx, event, 'critical', reading.seq, reading.ts, reading.ts, evidence));
    } else if (event === 'SOS_CANCEL') {
      changes.push(resolve(ctx, 'SOS', reading.ts, { by: 'resident', seq: reading.seq }));
    }
  }
  return changes;
}
