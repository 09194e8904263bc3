/** Alerts, residents, contacts and outbox rows for the channel tests. */
import type { Alert, Contact, OutboxItem, Resident } from '../../store/types.js';
import type { Delivery } from '../types.js';

const T0 = Date.UTC(2025, 2, 14, 9, 30);

export function testAlert(patch: Partial<Alert> = {}): Alert {
  return {
    id: 'alr_fall1',
    residentId: 'res_1',
    deviceId: 'band-1',
    type: 'FALL',
    severity: 'critical',
    state: 'open',
    openedAt: T0,
    detectedAt: T0 + 2000,
    delayMs: null,
    acknowledgedAt: null,
    acknowledgedBy: null,
    ackNote: null,
    resolvedAt: null,
    lastSeenAt: T0,
    occurrences: 1,
    evidence: {},
    ...patch,
  };
}

export function testResident(patch: Partial<Resident> = {}): Resident {
  return { id: 'res_1', name: 'Rose Tyler', birthDate: null, timezone: 'Europe/London', homeLocation: null, medicalNotes: null, createdAt: T0, ...patch };
}

export function testContact(patch: Partial<Contact> = {}): Contact {
  return {
    id: 'con_1',
    residentId: 'res_1',
    name: 'Jackie',
    phone: '+447700900123',
    email: null,
    webhookUrl: null,
    webhookSecret: null,
    preferences: {},
    createdAt: T0,
    ...patch,
  };
}

/** The row of step 0 for (alert, contact, channel), as a sender has just claimed it. */
export function testItem(alert: Alert, contactId: string, channel: string): OutboxItem {
  return {
    id: `${alert.id}:0:${contactId}:${channel}`,
    alertId: alert.id,
    step: 0,
    contactId,
    channel,
    payload: {},
    status: 'sending',
    attempts: 1,
    nextAttemptAt: T0,
    lastError: null,
    providerId: null,
    createdAt: T0,
    updatedAt: T0,
  };
}

export function testDelivery(channel: string, patch: Partial<Delivery> = {}): Delivery {
  const alert = patch.alert ?? testAlert();
  const contact = patch.contact === undefined ? testContact() : patch.contact;
  return { item: testItem(alert, contact?.id ?? 'con_gone', channel), alert, resident: testResident(), contact, ...patch };
}
