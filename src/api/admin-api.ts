/**
 * Admin API (Bearer admin key): residents, their devices and contacts.
 * Contract: issue "pipeline spine" §3 and docs/api.md.
 */
import type { FastifyInstance } from 'fastify';
import { VigilError } from '../core/errors.js';
import { newSecret } from '../core/ids.js';
import type { Contact, ContactPatch, Resident, Severity, Store } from '../store/types.js';
import { CHANNEL_NAMES, DEFAULT_POLICIES, normalizePolicy, policyFor, policySchema, residentPolicyKey, sitePolicyKey } from '../notify/escalation/escalation-policy.js';
import type { AdminAuth } from './admin-auth.js';
import type { DeviceAuth } from '../ingest/device-auth.js';
import { addContact, createResident, registerDevice, revokeDeviceToken, rotateDeviceToken, type NewContact, type NewResident } from './admin-service.js';
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
    medicalNotes: { type: 'string', maxLength: 10_000 },
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

const deviceParams = {
  type: 'object',
  required: ['id'],
  properties: { id: deviceBody.properties.deviceId },
} as const;

const HHMM = '^([01][0-9]|2[0-3]):[0-5][0-9]$';

const preferencesSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    priority: { type: 'integer', minimum: 1, maximum: 100 },
    channels: { type: 'array', uniqueItems: true, items: { type: 'string', enum: CHANNEL_NAMES } },
    quietHours: {
      type: 'object',
      required: ['start', 'end'],
      additionalProperties: false,
      properties: { start: { type: 'string', pattern: HHMM }, end: { type: 'string', pattern: HHMM } },
    },
    digestAt: { type: 'string', pattern: HHMM },
  },
} as const;

const contactFields = {
  name: { type: 'string', minLength: 1, maxLength: 200 },
  phone: { type: 'string', pattern: '^\\+?[0-9 ()-]{3,32}$' },
  email: { type: 'string', pattern: '^[^@\\s]+@[^@\\s]+$', maxLength: 254 },
  webhookUrl: { type: 'string', pattern: '^https?://', maxLength: 2048 },
  preferences: preferencesSchema,
} as const;

const contactBody = { type: 'object', required: ['name'], additionalProperties: false, properties: contactFields } as const;
/** A patch: `null` clears an address; push subscriptions are kept (they have their own routes). */
const contactPatch = {
  type: 'object',
  additionalProperties: false,
  minProperties: 1,
  properties: {
    ...contactFields,
    phone: { anyOf: [contactFields.phone, { type: 'null' }] },
    email: { anyOf: [contactFields.email, { type: 'null' }] },
    webhookUrl: { anyOf: [contactFields.webhookUrl, { type: 'null' }] },
  },
} as const;

const SEVERITIES: Severity[] = ['critical', 'high', 'medium', 'low'];
const siteEscalationBody = {
  type: 'object',
  additionalProperties: false,
  minProperties: 1,
  properties: Object.fromEntries(SEVERITIES.map((k) => [k, policySchema])),
} as const;
const escalationBody = {
  type: 'object',
  additionalProperties: false,
  properties: Object.fromEntries(['all', ...SEVERITIES].map((k) => [k, policySchema])),
} as const;

const publicContact = (c: Contact) => ({
  id: c.id,
  name: c.name,
  phone: c.phone,
  email: c.email,
  webhookUrl: c.webhookUrl,
  preferences: { ...c.preferences, pushSubscriptions: c.preferences.pushSubscriptions?.length ?? 0 },
  createdAt: new Date(c.createdAt).toISOString(),
});
const publicResident = (r: Resident) => ({ ...r, createdAt: new Date(r.createdAt).toISOString() });

/**
 * `site`: the detection settings the deployment's config gives everyone (processor/groups/registry.ts).
 * `devices`: the ingest's token cache in this process, told when a device's token changes so
 * the old token is refused from the next request on (docs/api.md, Revocation).
 */
export function registerAdminApi(
  app: FastifyInstance,
  store: Store,
  admin: AdminAuth,
  site: DetectionSettings,
  devices: Pick<DeviceAuth, 'invalidateDevice'>,
): void {
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

    // GET /v1/residents is in third-party-api.ts: API keys list residents too (the admin key sees it as before).

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

    // A resident's escalation policies: per severity, or `all`; absent ones fall back to the site's.
    const escalationOf = async (id: string) => {
      if (!(await store.getResident(id))) throw new VigilError('NOT_FOUND', `no resident ${id}`);
      const saved = await store.getSetting(residentPolicyKey(id));
      const effective = Object.fromEntries(await Promise.all(SEVERITIES.map(async (sev) => [sev, await policyFor(store, id, sev)] as const)));
      return { policies: saved ? JSON.parse(saved) : {}, effective };
    };
    scope.get('/v1/residents/:id/escalation', async (req) => escalationOf((req.params as { id: string }).id));
    scope.put('/v1/residents/:id/escalation', { schema: { body: escalationBody } }, async (req) => {
      const { id } = req.params as { id: string };
      await escalationOf(id);
      await store.setSetting(residentPolicyKey(id), JSON.stringify(req.body));
      return escalationOf(id);
    });

    // The site's default policy per severity (residents without their own use it).
    const siteDefaults = async () =>
      Object.fromEntries(
        await Promise.all(
          SEVERITIES.map(async (sev) => {
            const saved = await store.getSetting(sitePolicyKey(sev));
            return [sev, saved ? { policy: normalizePolicy(JSON.parse(saved)), source: 'site' } : { policy: DEFAULT_POLICIES[sev], source: 'default' }] as const;
          }),
        ),
      );
    scope.get('/v1/escalation/defaults', async () => siteDefaults());
    scope.put('/v1/escalation/defaults', { schema: { body: siteEscalationBody } }, async (req) => {
      for (const [sev, policy] of Object.entries(req.body as Record<string, unknown>)) await store.setSetting(sitePolicyKey(sev as Severity), JSON.stringify(policy));
      return siteDefaults();
    });

    scope.patch('/v1/contacts/:id', { schema: { body: contactPatch } }, async (req) => {
      const { id } = req.params as { id: string };
      const current = await store.getContact(id);
      if (!current) throw new VigilError('NOT_FOUND', `no contact ${id}`);
      const patch = req.body as ContactPatch;
      if (patch.preferences) patch.preferences = { ...patch.preferences, pushSubscriptions: current.preferences.pushSubscriptions };
      // A webhook URL given to a contact that had none gets its signing secret, shown once.
      const webhookSecret = patch.webhookUrl && !current.webhookSecret ? newSecret('vwhk') : undefined;
      const updated = (await store.updateContact(id, { ...patch, ...(webhookSecret && { webhookSecret }) } as ContactPatch))!;
      return { ...publicContact(updated), ...(webhookSecret && { webhookSecret }) };
    });

    scope.delete('/v1/contacts/:id', async (req, reply) => {
      const { id } = req.params as { id: string };
      if (!(await store.deleteContact(id))) throw new VigilError('NOT_FOUND', `no contact ${id}`);
      return reply.code(204).send();
    });

    scope.post('/v1/devices', { schema: { body: deviceBody } }, async (req, reply) =>
      reply.code(201).send(await registerDevice(store, req.body as { deviceId: string; residentId: string })),
    );

    // A new token, shown once; the old one stops working (docs/api.md, Revocation).
    scope.post('/v1/devices/:id/token', { schema: { params: deviceParams } }, async (req, reply) => {
      const { id } = req.params as { id: string };
      const rotated = await rotateDeviceToken(store, id);
      devices.invalidateDevice(id);
      return reply.code(201).send(rotated);
    });

    // No token works for the device any more; it stays registered.
    scope.delete('/v1/devices/:id/token', { schema: { params: deviceParams } }, async (req, reply) => {
      const { id } = req.params as { id: string };
      await revokeDeviceToken(store, id);
      devices.invalidateDevice(id);
      return reply.code(204).send();
    });

    scope.post('/v1/residents/:id/contacts', { schema: { body: contactBody } }, async (req, reply) =>
      reply.code(201).send(await addContact(store, (req.params as { id: string }).id, req.body as NewContact)),
    );
  });
}
