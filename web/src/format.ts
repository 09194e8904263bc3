// How values read on screen.

const LABELS: Record<string, string> = {
  FALL: 'Possible fall',
  SOS: 'SOS button',
  HR_HIGH: 'High heart rate',
  HR_LOW: 'Low heart rate',
  HR_RISE: 'Heart rate above resting',
  SPO2_LOW: 'Low blood oxygen',
  TEMP_HIGH: 'High skin temperature',
  TEMP_LOW: 'Low skin temperature',
  INACTIVITY: 'Not moving',
  DEVICE_OFFLINE: 'Band offline',
  NOT_WORN: 'Band not worn',
  BATTERY_LOW: 'Battery low',
  WANDERING: 'Left home',
  ACTIVITY_DROP: 'Less active this week',
};

export const alertLabel = (type: string): string => LABELS[type] ?? type.replace(/_/g, ' ').toLowerCase();

export const CHANNEL_LABELS: Record<string, string> = { push: 'push', webhook: 'app', sms: 'SMS', voice: 'call', email: 'email' };

/** "just now", "4 min ago", "2 h ago", "3 days ago". */
export function ago(iso: string | null | undefined, now: number): string {
  if (!iso) return 'never';
  const s = Math.max(0, Math.round((now - Date.parse(iso)) / 1000));
  if (s < 45) return 'just now';
  if (s < 90 * 60) return `${Math.max(1, Math.round(s / 60))} min ago`;
  if (s < 36 * 3600) return `${Math.round(s / 3600)} h ago`;
  return `${Math.round(s / 86400)} days ago`;
}

/** "7 h 12 min". */
export function duration(minutes: number): string {
  const m = Math.round(minutes);
  return m < 60 ? `${m} min` : `${Math.floor(m / 60)} h ${String(m % 60).padStart(2, '0')} min`;
}

export const clock = (iso: string) => new Date(iso).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
export const dateTime = (iso: string) => new Date(iso).toLocaleString([], { weekday: 'short', day: 'numeric', month: 'short', hour: '2-digit', minute: '2-digit' });

export function age(birthDate: string | null, now: number): number | null {
  if (!birthDate) return null;
  const b = new Date(birthDate);
  const n = new Date(now);
  return n.getFullYear() - b.getFullYear() - (n.getMonth() * 100 + n.getDate() < b.getMonth() * 100 + b.getDate() ? 1 : 0);
}

export const round = (v: number | null | undefined, digits = 0): string => (v === null || v === undefined ? '–' : v.toFixed(digits));

/** Evidence as short "key: value" pairs, numbers rounded. */
export function evidenceLines(evidence: Record<string, unknown>): string[] {
  return Object.entries(evidence)
    .filter(([, v]) => v !== null && v !== undefined && typeof v !== 'object')
    .slice(0, 6)
    .map(([k, v]) => `${k.replace(/([a-z])([A-Z])/g, '$1 $2').toLowerCase()}: ${typeof v === 'number' ? Number(v.toFixed(2)) : String(v)}`);
}
