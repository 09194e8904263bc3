/**
 * Shapes the API sends that the dashboard (web/) reads too: type-only and free of imports
 * with runtime or Node.js types, so the browser build can import them from here instead of
 * keeping copies that drift. Times are ISO-8601 strings on the wire.
 */
import type { Alert } from '../store/types.js';

/** An alert as the API shows it. */
export type AlertView = Omit<Alert, 'openedAt' | 'detectedAt' | 'acknowledgedAt' | 'resolvedAt' | 'lastSeenAt'> & {
  openedAt: string;
  detectedAt: string;
  acknowledgedAt: string | null;
  resolvedAt: string | null;
  lastSeenAt: string;
};

/** The latest values of a resident's band, as a `vitals` event carries them (GET /v1/events). */
export interface VitalsView {
  residentId: string;
  deviceId: string;
  /** Device time of the newest reading, ISO-8601. */
  ts: string;
  /** Server receive time of that reading, ISO-8601. */
  receivedAt: string;
  hr: number | null;
  spo2: number | null;
  skinTemp: number | null;
  battery: number | null;
  worn: boolean | null;
}

/** One resident in GET /v1/overview: each part null without the scope that guards it. */
export interface OverviewCard {
  residentId: string;
  name: string | null;
  timezone: string;
  lastReading: (Omit<VitalsView, 'residentId'> & { charging: boolean | null }) | null;
  stepsToday: number | null;
  lastNight: { night: string; start: string; end: string; totalSleepMin: number; efficiency: number; awakenings: number } | null;
  alerts: AlertView[] | null;
}
