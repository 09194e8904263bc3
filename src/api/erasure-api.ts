/**
 * `POST /v1/residents/{id}/erase` (admin key): the right to erasure (erasure-service.ts);
 * `GET /v1/residents/{id}/erasure`: the record of it.
 */
import type { FastifyInstance } from 'fastify';
import { VigilError } from '../core/errors.js';
import type { AdminAuth } from './admin-auth.js';
import { erasureKey, eraseResident, type ErasureTargets } from './erasure-service.js';

const eraseBody = {
  type: 'object',
  required: ['by'],
  additionalProperties: false,
  properties: { by: { type: 'string', minLength: 1, maxLength: 200 } },
} as const;

export function registerErasureApi(app: FastifyInstance, admin: AdminAuth, targets: ErasureTargets): void {
  app.register(async (scope) => {
    scope.addHook('onRequest', async (req) => admin.check(req));

    scope.post('/v1/residents/:id/erase', { schema: { body: eraseBody } }, async (req) => {
      const { id } = req.params as { id: string };
      return eraseResident(targets, id, (req.body as { by: string }).by);
    });

    scope.get('/v1/residents/:id/erasure', async (req) => {
      const { id } = req.params as { id: string };
      const record = await targets.store.getSetting(erasureKey(id));
      if (!record) throw new VigilError('NOT_FOUND', `resident ${id} was not erased`);
      return JSON.parse(record);
    });
  });
}
