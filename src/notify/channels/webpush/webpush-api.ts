/**
 * Web Push registration (docs/notifications-push-email.md):
 * - `GET /v1/push/vapid-public-key` (no auth: a browser needs it to subscribe) → `{publicKey}`
 * - `POST /v1/contacts/:id/push-subscriptions` (admin key), body = `PushSubscription.toJSON()`
 *   → 201; the same endpoint again replaces its keys.
 * - `DELETE /v1/contacts/:id/push-subscriptions?endpoint=…` (admin key) → 204, also when the
 *   endpoint was not (or no longer) registered.
 */
import type { FastifyInstance } from 'fastify';
import { VigilError } from '../../../core/errors.js';
import type { PushSubscriptionJson, Store } from '../../../store/types.js';
import type { AdminAuth } from '../../../api/admin-auth.js';
import { addPushSubscription, removePushSubscription, subscriptionProblem } from './subscriptions.js';

const base64url = { type: 'string', pattern: '^[A-Za-z0-9_-]+={0,2}$' } as const;

const subscriptionBody = {
  type: 'object',
  required: ['endpoint', 'keys'],
  additionalProperties: false,
  properties: {
    endpoint: { type: 'string', pattern: '^https://', maxLength: 2048 },
    // Part of PushSubscription.toJSON(); push services do not set it in practice. Ignored.
    expirationTime: { type: ['number', 'null'] },
    keys: {
      type: 'object',
      required: ['p256dh', 'auth'],
      additionalProperties: false,
      properties: {
        p256dh: { ...base64url, minLength: 86, maxLength: 88 },
        auth: { ...base64url, minLength: 22, maxLength: 24 },
      },
    },
  },
} as const;

const deleteQuery = {
  type: 'object',
  required: ['endpoint'],
  additionalProperties: false,
  properties: { endpoint: { type: 'string', minLength: 1, maxLength: 2048 } },
} as const;

export function registerWebPushApi(app: FastifyInstance, store: Store, admin: AdminAuth, publicKey: string): void {
  app.get('/v1/push/vapid-public-key', async () => ({ publicKey }));

  app.register(async (scope) => {
    scope.addHook('onRequest', async (req) => admin.check(req));

    scope.post('/v1/contacts/:id/push-subscriptions', { schema: { body: subscriptionBody } }, async (req, reply) => {
      const { id } = req.params as { id: string };
      const sub = req.body as PushSubscriptionJson;
      const problem = subscriptionProblem(sub);
      if (problem) throw new VigilError('INVALID_BODY', problem);
      const count = await addPushSubscription(store, id, sub);
      if (count === null) throw new VigilError('NOT_FOUND', `no contact ${id}`);
      return reply.code(201).send({ contactId: id, endpoint: sub.endpoint, subscriptions: count });
    });

    scope.delete('/v1/contacts/:id/push-subscriptions', { schema: { querystring: deleteQuery } }, async (req, reply) => {
      const { id } = req.params as { id: string };
      const { endpoint } = req.query as { endpoint: string };
      if (!(await store.getContact(id))) throw new VigilError('NOT_FOUND', `no contact ${id}`);
      await removePushSubscription(store, id, endpoint);
      return reply.code(204).send();
    });
  });
}
