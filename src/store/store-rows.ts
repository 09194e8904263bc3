/**
 * What the SQL stores (SQLite, PostgreSQL) share: their row shapes (one schema, the same
 * column names), the mapping of rows to domain objects, and the alert rules every store
 * applies. JSON columns arrive as text from SQLite and decoded from PostgreSQL, so the
 * mappers take the decoder.
 */
import type { Alert, AlertChange, Checkpoint, Contact, ContactPreferences, Device, GeoPoint, Lease, OutboxItem, Resident, Severity } from './types.js';

export interface ResidentRow {
  id: string;
  name: string;
  birth_date: string | null;
  timezone: string;
  home_location: unknown;
  medical_notes: string | null;
  created_at: number;
}
export interface DeviceRow {
  device_id: string;
  resident_id: string;
  created_at: number;
}
export interface ContactRow {
  id: string;
  resident_id: string;
  name: string;
  phone: string | null;
  email: string | null;
  webhook_url: string | null;
  webhook_secret: string | null;
  preferences: unknown;
  created_at: number;
}
export interface AlertRow {
  id: string;
  resident_id: string;
  device_id: string;
  type: string;
  severity: Severity;
  state: Alert['state'];
  opened_at: number;
  detected_at: number;
  delay_ms: number | null;
  acknowledged_at: number | null;
  acknowledged_by: string | null;
  ack_note: string | null;
  resolved_at: number | null;
  last_seen_at: number;
  occurrences: number;
  evidence: unknown;
}
export interface OutboxRow {
  id: string;
  alert_id: string;
  step: number;
  contact_id: string;
  channel: string;
  payload: unknown;
  status: OutboxItem['status'];
  attempts: number;
  next_attempt_at: number;
  last_error: string | null;
  provider_id: string | null;
  created_at: number;
  updated_at: number;
}
export interface LeaseRow {
  grp: string;
  part: number;
  owner: string;
  epoch: number;
  expires_at: number;
}
export interface CheckpointRow {
  grp: string;
  part: number;
  sequence: string | null;
  snapshot: unknown;
  updated_at: number;
}

/** Row → domain mappers; `json` decodes a JSON column as the driver returns it (null stays null). */
export function rowMappers(json: (value: unknown) => unknown) {
  const toResident = (r: ResidentRow): Resident => ({
    id: r.id,
    name: r.name,
    birthDate: r.birth_date,
    timezone: r.timezone,
    homeLocation: json(r.home_location) as GeoPoint | null,
    medicalNotes: r.medical_notes ?? null,
    createdAt: r.created_at,
  });

  const toDevice = (r: DeviceRow): Device => ({ deviceId: r.device_id, residentId: r.resident_id, createdAt: r.created_at });

  const toContact = (r: ContactRow): Contact => ({
    id: r.id,
    residentId: r.resident_id,
    name: r.name,
    phone: r.phone,
    email: r.email,
    webhookUrl: r.webhook_url,
    webhookSecret: r.webhook_secret,
    preferences: (json(r.preferences ?? null) as ContactPreferences | null) ?? {},
    createdAt: r.created_at,
  });

  const toAlert = (r: AlertRow): Alert => ({
    id: r.id,
    residentId: r.resident_id,
    deviceId: r.device_id,
    type: r.type,
    severity: r.severity,
    state: r.state,
    openedAt: r.opened_at,
    detectedAt: r.detected_at,
    delayMs: r.delay_ms,
    acknowledgedAt: r.acknowledged_at,
    acknowledgedBy: r.acknowledged_by,
    ackNote: r.ack_note,
    resolvedAt: r.resolved_at,
    lastSeenAt: r.last_seen_at,
    occurrences: r.occurrences,
    evidence: json(r.evidence) as Record<string, unknown>,
  });

  const toOutboxItem = (r: OutboxRow): OutboxItem => ({
    id: r.id,
    alertId: r.alert_id,
    step: r.step,
    contactId: r.contact_id,
    channel: r.channel,
    payload: json(r.payload) as Record<string, unknown>,
    status: r.status,
    attempts: r.attempts,
    nextAttemptAt: r.next_attempt_at,
    lastError: r.last_error,
    providerId: r.provider_id,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  });

  const toLease = (r: LeaseRow): Lease => ({ group: r.grp, partition: r.part, owner: r.owner, epoch: r.epoch, expiresAt: r.expires_at });

  const toCheckpoint = (r: CheckpointRow): Checkpoint => ({
    group: r.grp,
    partition: r.part,
    sequence: r.sequence,
    snapshot: json(r.snapshot),
    updatedAt: r.updated_at,
  });
  return { toResident, toDevice, toContact, toAlert, toOutboxItem, toLease, toCheckpoint };
}

/** The alert a raise creates when nothing of its (resident, type) is unresolved. */
export function newAlert(raise: Extract<AlertChange, { kind: 'raise' }>['alert']): Alert {
  return {
    ...raise,
    state: 'open',
    acknowledgedAt: null,
    acknowledgedBy: null,
    ackNote: null,
    resolvedAt: null,
    lastSeenAt: raise.openedAt,
    occurrences: 1,
  };
}

const SEVERITY_RANK: Record<Severity, number> = { low: 0, medium: 1, high: 2, critical: 3 };
/** A recurrence raises the open alert's severity, never lowers it. */
export const higherSeverity = (a: Severity, b: Severity): Severity => (SEVERITY_RANK[b] > SEVERITY_RANK[a] ? b : a);

const DEFAULT_LIMIT = 100;
const MAX_LIMIT = 1000;
export const clampLimit = (limit: number | undefined): number => Math.min(Math.max(Math.trunc(limit ?? DEFAULT_LIMIT), 1), MAX_LIMIT);

/** The entries of a patch that are set: `undefined` leaves a field as it is, `null` clears it. */
export function definedOnly<T extends object>(patch: T): Partial<T> {
  const out: Partial<T> = {};
  for (const [k, v] of Object.entries(patch)) if (v !== undefined) (out as Record<string, unknown>)[k] = v;
  return out;
}
