/** Consumer groups: lag per partition, and rewinds for replay (`vigil replay`). Admin key. */
import type { FastifyInstance } from 'fastify';
import { VigilError } from '../core/errors.js';
import type { GroupHost } from '../processor/group-host.js';
import { GROUP_NAMES, type GroupName } from '../processor/groups/registry.js';
import { parsePosition } from '../stream/positions.js';
import type { AdminAuth } from './admin-auth.js';

export function groupsView(host: GroupHost) {
  return host.stats().map(({ name, running, stats, counters }) => ({
    name,
    running,
    caughtUp: stats?.caughtUp ?? false,
    lag: stats ? stats.partitions.reduce((n, p) => n + p.lag, 0) : null,
    handledRecords: stats?.handledRecords ?? 0,
    counters,
    partitions: stats?.partitions ?? [],
  }));
}

export function registerGroupsApi(app: FastifyInstance, host: GroupHost, admin: AdminAuth): void {
  app.register(async (scope) => {
    scope.addHook('onRequest', async (req) => admin.check(req));
    scope.get('/v1/admin/groups', async () => ({ groups: groupsView(host) }));
    scope.post('/v1/admin/groups/:group/replay', {
      schema: { body: { type: 'object', required: ['from'], additionalProperties: false, properties: { from: { type: 'string', maxLength: 64 } } } },
    }, async (req, reply) => {
      const { group } = req.params as { group: string };
      if (!GROUP_NAMES.includes(group as GroupName) || !host.has(group as GroupName)) throw new VigilError('NOT_FOUND', `no group ${group} runs here`);
      const position = parsePosition((req.body as { from: string }).from);
      await host.rewind(group as GroupName, position);
      return reply.code(202).send({ group, position });
    });
  });
}
