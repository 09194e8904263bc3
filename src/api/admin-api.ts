/**
 * Admin API (Bearer admin key): residents, their devices and contacts.
 * Contract: issue "pipeline spine" §3 and docs/api.md.
 */
import type { FastifyInstance } from 'fastify';
import { VigilError } from '../core/errors.js';
import type { Contact, Resident, Store } from '../store/types.js';
import type { AdminAuth } from './admin-auth.js';
import { addContact, createResident, registerDevice, type NewContact, type NewResident } from './admin-service.js';
import { effectiveSettings, overridesSchema, residentSettingsKey, type DetectionOverrides, type DetectionSettings } from '../detectors/detection-settings.js';

const residentBody = {
  type: 'object',
  required: ['name'],
  additionalProperties: false,
  properties: {
    name: { type: 'string', minLength: 1, maxLength: 200 },
    birthDate: { type: 'string', pattern: '^\\d{4}-\\d{2}-\\d{2}$' },
    timezone: { type: 'string', minLength: 1, maxLength: 64 },
    homeLocation: {
      type: 'object',
      required: ['lat', 'lon'],
      additionalProperties: false,
      properties: {
        lat: { type: 'number', minimum: -90, maximum: 90 },
        lon: { type: 'number', minimum: -180, maximum: 180 },
        radiusM: { type: 'number', exclusiveMinimum: 0, maximum: 100000 },
      },
    },
  },
} as const;

const deviceBody = {
  type: 'object',
  required: ['deviceId', 'residentId'],
  additionalProperties: false,
  properties: {
    deviceId: { type: 'string', pattern: '^[A-Za-z0-9._-]{1,64}$' },
    residentId: { type: 'string', minLength: 1, maxLength: 100 },
  },
} as const;

const contactBody = {
  type: 'object',
  required: ['name'],
  additionalProperties: false,
  properties: {
    name: { type: 'string', minLength: 1, maxLength: 200 },
    phone: { type: 'string', pattern: '^\\+?[0-9 ()-]{3,32}$' },
    email: { type: 'string', pattern: '^[^@\\s]+@[^@\\s]+$', maxLength: 254 },
    webhookUrl: { type: 'string', pattern: '^https?://', maxLength: 2048 },
  },
} as const;

const publicContact = (c: Contact) => ({ id: c.id, name: c.name, phone: c.phone, email: c.email, webhookUrl: c.webhookUrl, createdAt: new Date(c.createdAt).toISOString() });
const publicResident = (r: Resident) => ({ ...r, createdAt: new Date(r.createdAt).toISOString() });

/** `site`: the detection settings the deployment's config gives everyone (processor/groups/registry.ts). */
export function registerAdminApi(app: FastifyInstance, store: Store, admin: AdminAuth, site: DetectionSettings): void {
  const detectionOf = async (id: string) => {
    if (!(await store.getResident(id))) throw new VigilError('NOT_FOUND', `no resident ${id}`);
    const saved = await store.getSetting(residentSettingsKey(id));
    const overrides = saved ? (JSON.parse(saved) as DetectionOverrides) : {};
    return { overrides, effective: effectiveSettings(site, overrides) };
  };

  app.register(async (scope) => {
    scope.addHook('onRequest', async (req) => admin.check(req));

    scope.post('/v1/residents', { schema: { body: residentBody } }, async (req, reply) =>
      reply.code(201).send(await createResident(store, req.body as NewResident)),
    );

    scope.get('/v1/residents', {
      schema: { querystring: { type: 'object', properties: { limit: { type: 'string', pattern: '^[0-9]{1,4}$' }, after: { type: 'string' } } } },
    }, async (req) => {
      const q = req.query as { limit?: string; after?: string };
      const limit = Math.min(1000, Math.max(1, Number(q.limit ?? 100)));
      const residents = await store.listResidents({ limit, after: q.after });
      return { residents: residents.map(publicResident), next: residents.length === limit ? residents[residents.length - 1].id : null };
    });

    scope.get('/v1/residents/:id', async (req) => {
      const { id } = req.params as { id: string };
      const resident = await store.getResident(id);
      if (!resident) throw new VigilError('NOT_FOUND', `no resident ${id}`);
      const [devices, contacts] = await Promise.all([store.listDevices(id), store.listContacts(id)]);
      return {
        ...publicResident(resident),
        devices: devices.map((d) => ({ deviceId: d.deviceId, createdAt: new Date(d.createdAt).toISOString() })),
        contacts: contacts.map(publicContact),
      };
    });

    // A resident's detection thresholds: `overrides` replace the site's settings one by one.
    scope.get('/v1/residents/:id/detection', async (req) => detectionOf((req.params as { id: string }).id));

    scope.put('/v1/residents/:id/detection', { schema: { body: overridesSchema() } }, async (req) => {
      const { id } = req.params as { id: string };
      await detectionOf(id);
      await store.setSetting(residentSettingsKey(id), JSON.stringify(req.body));
      return detectionOf(id);
    });

    scope.post('/v1/devices', { schema: { body: deviceBody } }, async (req, reply) =>
      reply.code(201).send(await registerDevice(store, req.body as { deviceId: string; residentId: string })),
    );

    scope.post('/v1/residents/:id/contacts', { schema: { body: contactBody } }, async (req, reply) =>
      reply.code(201).send(await addContact(store, (req.params as { id: string }).id, req.body as NewContact)),
    );
  });
}
