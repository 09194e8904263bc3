/**
 * Registers a simulated fleet through the admin API: one resident per band, a relative as
 * their contact, and the band itself (`band-0001`, ...). With a state file the fleet survives
 * restarts: devices listed there are reused, and new ones are added to it.
 *
 * State file invariant: it is only ever replaced whole (write to a temporary file, then
 * rename), so a crash leaves the previous version or the new one, never half of one.
 */
import { open, readFile, rename } from 'node:fs/promises';
import { Random } from './prng.js';

export interface ResidentInput {
  name: string;
  /** YYYY-MM-DD */
  birthDate?: string;
  timezone?: string;
  homeLocation?: HomeGeofence;
}

/** A resident's home and the geofence radius around it (WANDERING leaves it). */
export interface HomeGeofence {
  lat: number;
  lon: number;
  radiusM: number;
}

export interface ContactInput {
  name: string;
  phone?: string;
  email?: string;
  webhookUrl?: string;
}

/**
 * The admin operations provisioning needs, over HTTP (HttpAdminClient) or in-process. A device
 * id already taken must reject with an error whose `status` is 409, as both do.
 */
export interface AdminClient {
  createResident(r: ResidentInput): Promise<{ id: string }>;
  createDevice(d: { deviceId: string; residentId: string }): Promise<{ deviceId: string; token: string }>;
  createContact(residentId: string, c: ContactInput): Promise<{ id: string }>;
}

/** A non-2xx answer of the admin API, with its status and the problem+json `detail`. */
export class AdminApiError extends Error {
  constructor(
    readonly status: number,
    readonly detail: string,
    readonly code?: string,
  ) {
    super(`admin API answered ${status}: ${detail}`);
    this.name = 'AdminApiError';
  }
}

export class HttpAdminClient implements AdminClient {
  private readonly base: string;

  constructor(
    url: string,
    private readonly adminKey: string,
  ) {
    this.base = url.replace(/\/+$/, '');
  }

  createResident(r: ResidentInput): Promise<{ id: string }> {
    return this.post('/v1/residents', r);
  }

  createDevice(d: { deviceId: string; residentId: string }): Promise<{ deviceId: string; token: string }> {
    return this.post('/v1/devices', d);
  }

  createContact(residentId: string, c: ContactInput): Promise<{ id: string }> {
    return this.post(`/v1/residents/${encodeURIComponent(residentId)}/contacts`, c);
  }

  private async post<T>(path: string, body: unknown): Promise<T> {
    const res = await fetch(this.base + path, {
      method: 'POST',
      headers: { authorization: `Bearer ${this.adminKey}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    const text = await res.text();
    let json: Record<string, unknown> | undefined;
    try {
      json = JSON.parse(text) as Record<string, unknown>;
    } catch {
      json = undefined;
    }
    if (!res.ok) {
      const detail = typeof json?.detail === 'string' ? json.detail : text.slice(0, 200) || res.statusText;
      throw new AdminApiError(res.status, `POST ${path}: ${detail}`, typeof json?.code === 'string' ? json.code : undefined);
    }
    if (json === undefined) throw new AdminApiError(res.status, `POST ${path}: answer is not JSON`);
    return json as T;
  }
}

export interface ProvisionedDevice {
  deviceId: string;
  token: string;
  residentId: string;
  timezone: string;
  /** The resident's homeLocation, which the band's readings are located around. */
  homeLocation: HomeGeofence;
}

export interface ProvisionOptions {
  stateFile?: string;
  timezone?: string;
  /** City the residents live around. Default Paris. */
  center?: { lat: number; lon: number };
  /** Given to each resident's contact, so a demo can watch notifications arrive. */
  contactWebhookUrl?: string;
  /** Device ids are `<prefix>0001`, ... Default `band-`. */
  deviceIdPrefix?: string;
  /** Called for each device registered by this call (not for those of the state file). */
  onCreated?: (device: ProvisionedDevice) => void;
}

const FIRST_NAMES = [
  'Jeanne', 'Marie', 'Louise', 'Madeleine', 'Simone', 'Germaine', 'Yvonne', 'Suzanne', 'Paulette', 'Odette', 'Colette', 'Denise',
  'Jean', 'Pierre', 'André', 'Louis', 'René', 'Marcel', 'Roger', 'Georges', 'Henri', 'Robert', 'Lucien', 'Raymond',
];
const LAST_NAMES = [
  'Martin', 'Bernard', 'Dubois', 'Thomas', 'Robert', 'Richard', 'Petit', 'Durand', 'Leroy', 'Moreau', 'Simon', 'Laurent',
  'Lefebvre', 'Michel', 'Garcia', 'David', 'Bertrand', 'Roux', 'Vincent', 'Fournier', 'Morel', 'Girard', 'Bonnet', 'Mercier',
];
const RELATIVE_NAMES = ['Sophie', 'Nathalie', 'Isabelle', 'Sylvie', 'Philippe', 'Thierry', 'Laurent', 'Christophe'];
const PARIS = { lat: 48.8566, lon: 2.3522 };
const HOME_RADIUS_KM = 8;
/**
 * Geofence around each home: a garden, the street, the corner shop. The simulated residents'
 * walks stay within it; WANDERING leaves it.
 */
export const HOME_GEOFENCE_M = 200;
const KM_PER_DEG_LAT = 111.32;
/** Write the state file every this many new devices: a crash loses at most these (see below). */
const SAVE_EVERY = 25;

export const deviceIdFor = (n: number, prefix = 'band-'): string => `${prefix}${String(n).padStart(4, '0')}`;

/** Home of the n-th resident of the simulated town (n from 1), as provisioning registers it. */
export function homeLocationFor(n: number, center?: { lat: number; lon: number }): HomeGeofence {
  return residentFor(n, { center }).resident.homeLocation!;
}

/**
 * The n-th resident of the simulated town. Phone numbers are in the French range set aside for
 * fiction (+33 6 39 98 ...) and e-mails at example.com, so no notification can reach a stranger.
 */
function residentFor(n: number, opts: ProvisionOptions): { resident: ResidentInput; contact: ContactInput } {
  const r = new Random(n);
  const first = FIRST_NAMES[r.int(0, FIRST_NAMES.length - 1)];
  const last = LAST_NAMES[r.int(0, LAST_NAMES.length - 1)];
  const born = new Date(Date.UTC(1930, 0, 1) + r.float() * (Date.UTC(1950, 11, 31) - Date.UTC(1930, 0, 1)));
  const center = opts.center ?? PARIS;
  const distanceKm = HOME_RADIUS_KM * Math.sqrt(r.float()); // uniform over the disc
  const bearing = r.uniform(0, 2 * Math.PI);
  const lat = center.lat + (distanceKm * Math.cos(bearing)) / KM_PER_DEG_LAT;
  const lon = center.lon + (distanceKm * Math.sin(bearing)) / (KM_PER_DEG_LAT * Math.cos((center.lat * Math.PI) / 180));
  const relative = RELATIVE_NAMES[r.int(0, RELATIVE_NAMES.length - 1)];
  const ascii = (s: string) => s.normalize('NFD').replace(/[^A-Za-z]/g, '').toLowerCase();
  const contact: ContactInput = {
    name: `${relative} ${last}`,
    phone: `+336399800${String(r.int(0, 99)).padStart(2, '0')}`,
    email: `${ascii(relative)}.${ascii(last)}.${n}@example.com`,
  };
  if (opts.contactWebhookUrl) contact.webhookUrl = opts.contactWebhookUrl;
  return {
    resident: {
      name: `${first} ${last}`,
      birthDate: born.toISOString().slice(0, 10),
      timezone: opts.timezone ?? 'Europe/Paris',
      homeLocation: { lat: Math.round(lat * 1e5) / 1e5, lon: Math.round(lon * 1e5) / 1e5, radiusM: HOME_GEOFENCE_M },
    },
    contact,
  };
}

/**
 * Returns n provisioned devices: those of the state file first, then new ones. A device id
 * already taken on the server (409, e.g. by a run without a state file, or by devices created
 * after the last save before a crash) is skipped for the next number, keeping the resident.
 */
export async function provisionFleet(admin: AdminClient, n: number, opts: ProvisionOptions = {}): Promise<ProvisionedDevice[]> {
  const devices = opts.stateFile ? await readState(opts.stateFile, opts) : [];
  if (devices.length >= n) return devices.slice(0, n);
  const used = new Set(devices.map((d) => d.deviceId));
  let next = 1;
  let unsaved = 0;
  try {
    while (devices.length < n) {
      const { resident, contact } = residentFor(devices.length + 1, opts);
      const { id: residentId } = await admin.createResident(resident);
      await admin.createContact(residentId, contact);
      for (;;) {
        while (used.has(deviceIdFor(next, opts.deviceIdPrefix))) next++;
        const deviceId = deviceIdFor(next, opts.deviceIdPrefix);
        used.add(deviceId);
        try {
          const { token } = await admin.createDevice({ deviceId, residentId });
          const device: ProvisionedDevice = { deviceId, token, residentId, timezone: resident.timezone ?? 'Europe/Paris', homeLocation: resident.homeLocation! };
          devices.push(device);
          opts.onCreated?.(device);
          break;
        } catch (err) {
          if ((err as { status?: unknown }).status !== 409) throw err;
        }
      }
      if (opts.stateFile && ++unsaved >= SAVE_EVERY) {
        await writeState(opts.stateFile, devices);
        unsaved = 0;
      }
    }
  } finally {
    if (opts.stateFile && unsaved > 0) await writeState(opts.stateFile, devices);
  }
  return devices;
}

async function readState(file: string, opts: ProvisionOptions): Promise<ProvisionedDevice[]> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  const state = JSON.parse(text) as { devices?: unknown };
  if (!Array.isArray(state.devices)) throw new Error(`${file}: expected {"devices": [...]}`);
  return state.devices.map((d: Partial<ProvisionedDevice>, i) => {
    if (typeof d?.deviceId !== 'string' || typeof d.token !== 'string' || typeof d.residentId !== 'string')
      throw new Error(`${file}: devices[${i}] needs deviceId, token and residentId`);
    // State files written before homes were kept: the i-th device's resident is the (i+1)-th of the town.
    const homeLocation = d.homeLocation ?? residentFor(i + 1, opts).resident.homeLocation!;
    return { deviceId: d.deviceId, token: d.token, residentId: d.residentId, timezone: d.timezone ?? 'Europe/Paris', homeLocation };
  });
}

async function writeState(file: string, devices: ProvisionedDevice[]): Promise<void> {
  const tmp = `${file}.${process.pid}.tmp`;
  const fh = await open(tmp, 'w', 0o600); // it holds device tokens
  try {
    await fh.writeFile(JSON.stringify({ devices }, null, 2) + '\n');
    await fh.sync(); // or a power cut could leave the renamed file empty
  } finally {
    await fh.close();
  }
  await rename(tmp, file);
}
