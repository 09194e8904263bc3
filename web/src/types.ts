// The API's shapes the dashboard reads (docs/api.md; /openapi.json has them all).

export type Severity = 'critical' | 'high' | 'medium' | 'low';
export type AlertState = 'open' | 'acknowledged' | 'resolved';

export interface Alert {
  id: string;
  residentId: string;
  deviceId: string;
  type: string;
  severity: Severity;
  state: AlertState;
  openedAt: string;
  detectedAt: string;
  delayMs: number | null;
  acknowledgedAt: string | null;
  acknowledgedBy: string | null;
  ackNote: string | null;
  resolvedAt: string | null;
  lastSeenAt: string;
  occurrences: number;
  evidence: Record<string, unknown>;
}

export interface LastReading {
  deviceId: string;
  ts: string;
  receivedAt: string;
  hr: number | null;
  spo2: number | null;
  skinTemp: number | null;
  battery: number | null;
  worn: boolean | null;
  charging: boolean | null;
}

export interface Card {
  residentId: string;
  name: string | null;
  timezone: string;
  lastReading: LastReading | null;
  stepsToday: number | null;
  lastNight: { night: string; start: string; end: string; totalSleepMin: number; efficiency: number; awakenings: number } | null;
  alerts: Alert[] | null;
}

export interface Whoami {
  kind: 'admin' | 'apiKey';
  id: string;
  scopes: string[];
  residentIds: string[] | null;
}

export interface Notification {
  id: string;
  alertId: string;
  step: number;
  contactId: string;
  channel: string;
  status: 'queued' | 'sending' | 'sent' | 'delivered' | 'failed' | 'cancelled';
  attempts: number;
  nextAttemptAt: string | null;
  lastError: string | null;
  createdAt: string | null;
  updatedAt: string | null;
}

export interface VitalsBucket {
  bucket: string;
  hrAvg: number | null;
  hrMin: number | null;
  hrMax: number | null;
  spo2Avg: number | null;
  spo2Min: number | null;
  skinTempAvg: number | null;
  steps: number | null;
  readings: number;
}

export interface SleepSession {
  deviceId: string;
  night: string;
  start: string;
  end: string;
  totalSleepMin: number;
  efficiency: number;
  wasoMin: number;
  awakenings: number;
  onsetLatencyMin: number | null;
}

export interface ActivityDay {
  deviceId: string;
  day: string;
  steps: number;
  activeMinutes: number;
  longestSedentaryMin: number;
  wornMinutes: number;
  final: boolean;
}

export interface Contact {
  id: string;
  name: string;
  phone: string | null;
  email: string | null;
  webhookUrl: string | null;
  preferences: { priority?: number; channels?: string[]; pushSubscriptions?: unknown[] };
}

export interface ResidentDetail {
  id: string;
  name: string;
  birthDate: string | null;
  timezone: string;
  medicalNotes: string | null;
  devices: { deviceId: string; createdAt?: string }[];
  contacts: Contact[];
}

export interface EscalationStep {
  afterS: number;
  /** 'all', 'primary', 'secondary', or contact ids. */
  contacts: string | string[];
  channels: string[];
}

export interface EscalationView {
  effective: Record<Severity, { policy: { steps: EscalationStep[]; repeatEveryS: number | null; maxRepeats: number }; source: string }>;
}

/** What GET /v1/events sends as `vitals`. */
export interface LiveVitals {
  residentId: string;
  deviceId: string;
  ts: string;
  receivedAt: string;
  hr: number | null;
  spo2: number | null;
  skinTemp: number | null;
  battery: number | null;
  worn: boolean | null;
}
