/** Stream positions as people write them (CLI flags, the replay API). */
import { VigilError } from '../core/errors.js';
import type { Position } from './types.js';

/** `TRIM_HORIZON`, `LATEST`, an ISO-8601 time, or a sequence number (applied to every partition). */
export function parsePosition(from: string): Position {
  if (from === 'TRIM_HORIZON' || from === 'LATEST') return { type: from };
  if (/^\d+$/.test(from)) return { type: 'AFTER_SEQUENCE', sequence: from };
  const ms = Date.parse(from);
  if (/^\d{4}-\d{2}-\d{2}/.test(from) && Number.isFinite(ms)) return { type: 'AT_TIMESTAMP', timestamp: ms };
  throw new VigilError('INVALID_BODY', 'from must be TRIM_HORIZON, LATEST, an ISO-8601 time or a sequence number');
}
