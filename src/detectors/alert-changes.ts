/** Builds the alert changes detectors return, so every detector stamps them the same way. */
import { alertId } from '../core/ids.js';
import type { AlertChange, Severity } from '../store/types.js';

export interface DetectionContext {
  residentId: string;
  deviceId: string;
  /** Processing time (wall clock) of this detection. */
  now: number;
}

/**
 * A raise whose id derives from the triggering (device, seq) (DESIGN §3.2), opened at
 * `openedAt` (event time) and decided on data of event time `dataTs`: how late that data
 * was processed is its `delayMs`.
 */
export function raise(
  ctx: DetectionContext,
  type: string,
  severity: Severity,
  seq: number,
  openedAt: number,
  dataTs: number,
  evidence: Record<string, unknown>,
): AlertChange {
  return {
    kind: 'raise',
    alert: {
      id: alertId(ctx.residentId, type, ctx.deviceId, seq),
      residentId: ctx.residentId,
      deviceId: ctx.deviceId,
      type,
      severity,
      openedAt,
      detectedAt: ctx.now,
      delayMs: Math.max(0, ctx.now - dataTs),
      evidence,
    },
  };
}

export function resolve(ctx: DetectionContext, type: string, at: number, evidence: Record<string, unknown>): AlertChange {
  return { kind: 'resolve', residentId: ctx.residentId, type, at, evidence };
}
