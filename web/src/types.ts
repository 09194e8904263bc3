// The API's shapes the dashboard reads (docs/api.md; /openapi.json has them all): the server's
// own types where it has them (type-only imports, erased from the bundle), the rest here.
export type { AlertView as Alert, OverviewCard as Card, VitalsView as LiveVitals } from '../../src/api/views';
import type { Severity } from '../../src/store/types';
export type { Severity, AlertState } from '../../src/store/types';
export type { VitalsRow as VitalsBucket, SleepSessionRow as SleepSession, DailyActivityRow as ActivityDay } from '../../src/warehouse/types';

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

