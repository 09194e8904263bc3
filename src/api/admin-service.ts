/**
 * What the admin API does, callable in-process too (the built-in simulator provisions its
 * fleet through it when the admin key in clear is not at hand).
 */
import { hashSecret, newId, newSecret } from '../core/ids.js';
import { VigilError } from '../core/errors.js';
import type { ContactPreferences, Resident, Store } from '../store/types.js';

export interface NewResident {
  name: string;
  birthDate?: string;
  timezone?: string;
  homeLocation?: Resident['homeLocation'];
  medicalNotes?: string;
}

export interface NewContact {
  name: string;
  phone?: string;
  email?: string;
  webhookUrl?: string;
  preferences?: ContactPreferences;
}

function validTimezone(tz: string): boolean {
  try {
    new Intl.DateTimeFormat('en', { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}

export async function createResident(store: Store, body: NewResident): Promise<{ id: string }> {
  if (body.birthDate && Number.isNaN(Date.parse(body.birthDate))) throw new VigilError('INVALID_BODY', 'birthDate is not a valid date');
  if (body.timezone && !validTimezone(body.timezone)) throw new VigilError('INVALID_BODY', `timezone ${body.timezone} is not an IANA time zone`);
  const resident = await store.createResident({
    id: newId('res'),
    name: body.name,
    birthDate: body.birthDate ?? null,
    timezone: body.timezone ?? 'UTC',
    homeLocation: body.homeLocation ?? null,
    medicalNotes: body.medicalNotes ?? null,
  });
  return { id: resident.id };
}

/** The token is returned once, here; only its hash is stored. */
export async function registerDevice(store: Store, body: { deviceId: string; residentId: string }): Promise<{ deviceId: string; token: string }> {
  const token = newSecret('vdev');
  await store.createDevice({ deviceId: body.deviceId, residentId: body.residentId, tokenHash: hashSecret(token) });
  return { deviceId: body.deviceId, token };
}

/**
 * A new token for a registered device, returned once; the old one finds nothing in the
 * store from now on. `NOT_FOUND` for an unknown device.
 */
export async function rotateDeviceToken(store: Store, deviceId: string): Promise<{ deviceId: string; token: string }> {
  const token = newSecret('vdev');
  if (!(await store.setDeviceToken(deviceId, hashSecret(token)))) throw new VigilError('NOT_FOUND', `no device ${deviceId}`);
  return { deviceId, token };
}

/** No token works for the device any more; it stays registered (a rotation gives it a new one). */
export async function revokeDeviceToken(store: Store, deviceId: string): Promise<void> {
  if (!(await store.setDeviceToken(deviceId, null))) throw new VigilError('NOT_FOUND', `no device ${deviceId}`);
}

export async function addContact(store: Store, residentId: string, body: NewContact): Promise<{ id: string; webhookSecret?: string }> {
  if (body.webhookUrl) {
    try {
      new URL(body.webhookUrl);
    } catch {
      throw new VigilError('INVALID_BODY', 'webhookUrl is not a valid URL');
    }
  }
  const webhookSecret = body.webhookUrl ? newSecret('vwhk') : null;
  const contact = await store.createContact({
    id: newId('con'),
    residentId,
    name: body.name,
    phone: body.phone ?? null,
    email: body.email ?? null,
    webhookUrl: body.webhookUrl ?? null,
    webhookSecret,
    preferences: body.preferences ?? {},
  });
  return webhookSecret ? { id: contact.id, webhookSecret } : { id: contact.id };
}
