/**
 * WANDERING: the phone's location is outside the resident's home geofence (home location and
 * radius in the store) — at night for `wanderingNightMs` (a short confirmation against one GPS
 * jump), by day for `wanderingAwayMs`. A fix counts as outside only if it is outside even
 * allowing for its reported accuracy; it resolves once back well inside (90 % of the radius),
 * so a resident at the fence edge does not flap.
 */
import type { GeoLocation, Reading } from '../core/reading.js';
import type { AlertChange, GeoPoint } from '../store/types.js';
import { raise, resolve, type DetectionContext } from './alert-changes.js';
import type { DetectionSettings } from './detection-settings.js';

export interface GeofenceState {
  awaySince: number | null;
  awaySeq: number;
  active: boolean;
}

export const newGeofenceState = (): GeofenceState => ({ awaySince: null, awaySeq: 0, active: false });

const EARTH_RADIUS_M = 6_371_008.8; // IUGG mean Earth radius

/** Great-circle distance (haversine), metres. */
export function distanceM(a: { lat: number; lon: number }, b: { lat: number; lon: number }): number {
  const rad = Math.PI / 180;
  const dLat = (b.lat - a.lat) * rad;
  const dLon = (b.lon - a.lon) * rad;
  const h = Math.sin(dLat / 2) ** 2 + Math.cos(a.lat * rad) * Math.cos(b.lat * rad) * Math.sin(dLon / 2) ** 2;
  return 2 * EARTH_RADIUS_M * Math.asin(Math.min(1, Math.sqrt(h)));
}

export function stepGeofence(
  st: GeofenceState,
  reading: Reading & { location: GeoLocation },
  home: GeoPoint,
  night: boolean,
  s: DetectionSettings,
  ctx: DetectionContext,
): AlertChange | null {
  const radius = home.radiusM ?? s.geofenceRadiusM;
  const d = distanceM(home, reading.location);
  const accuracy = reading.location.accuracyM ?? 0;
  if (d - accuracy > radius) {
    if (st.awaySince === null) {
      st.awaySince = reading.ts;
      st.awaySeq = reading.seq;
    }
    const limit = night ? s.wanderingNightMs : s.wanderingAwayMs;
    if (st.active || reading.ts - st.awaySince < limit) return null;
    st.active = true;
    return raise(ctx, 'WANDERING', night ? 'high' : 'medium', st.awaySeq, st.awaySince, reading.ts, {
      distanceM: Math.round(d),
      radiusM: radius,
      awayForMs: reading.ts - st.awaySince,
      night,
      location: reading.location,
      seq: reading.seq,
    });
  }
  if (d + accuracy < radius * 0.9) {
    st.awaySince = null;
    if (st.active) {
      st.active = false;
      return resolve(ctx, 'WANDERING', reading.ts, { distanceM: Math.round(d), seq: reading.seq });
    }
  }
  return null;
}
