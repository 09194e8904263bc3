/**
 * The words of a notification, built at send time from the alert and the resident (so no
 * name sits in clear in the outbox). Short enough for one SMS segment when the name is.
 */
import type { Alert, Resident } from '../store/types.js';

const WHAT: Record<string, string> = {
  FALL: 'may have fallen',
  SOS: 'pressed the SOS button',
  HR_HIGH: 'has a high heart rate',
  HR_LOW: 'has a low heart rate',
  HR_RISE: 'has a heart rate well above their resting rate',
  SPO2_LOW: 'has low blood oxygen',
  TEMP_HIGH: 'has a high skin temperature',
  TEMP_LOW: 'has a low skin temperature',
  INACTIVITY: 'has not moved for a long time',
  DEVICE_OFFLINE: "'s band has stopped sending",
  NOT_WORN: "is not wearing the band",
  BATTERY_LOW: "'s band battery is low",
  WANDERING: 'has left home',
  ACTIVITY_DROP: 'has been much less active this week',
};

export interface AlertMessage {
  title: string;
  text: string;
}

/**
 * The message for one alert, or — `digest` holding several — one message for all of them (a
 * daily digest of non-urgent notices instead of a page each).
 */
export function alertMessage(alert: Alert, resident: Resident | null, digest?: readonly Alert[]): AlertMessage {
  if (digest && digest.length > 1) return digestMessage(digest, resident);
  const who = resident?.name ?? 'A resident';
  const what = WHAT[alert.type] ?? `has an alert (${alert.type})`;
  const sentence = what.startsWith("'") ? `${who}${what}` : `${who} ${what}`;
  const when = new Date(alert.openedAt).toISOString().replace('T', ' ').slice(0, 16) + ' UTC';
  const late = alert.delayMs !== null && alert.delayMs > 120_000 ? ` (detected ${Math.round(alert.delayMs / 60_000)} min late)` : '';
  return { title: `Vigil: ${alert.type.replace(/_/g, ' ').toLowerCase()}`, text: `${sentence} at ${when}${late}.` };
}

function digestMessage(alerts: readonly Alert[], resident: Resident | null): AlertMessage {
  const lines = alerts.map((a) => `- ${alertMessage(a, resident).text}`);
  return { title: `Vigil: ${alerts.length} notices for ${resident?.name ?? 'a resident'}`, text: `Today's non-urgent notices:\n${lines.join('\n')}` };
}
