/**
 * `POST /v1/simulator/scenarios` (admin key): plays a scenario on a band of the built-in
 * simulated fleet (`vigil start --simulate N`), for demos: `{"device": "band-0001" | 0,
 * "scenario": "SOS" | "FALL" | "TACHYCARDIA" | "BRADYCARDIA" | "HYPOXIA", "durationS"?: 120}`.
 */
import type { FastifyInstance } from 'fastify';
import { VigilError } from '../core/errors.js';
import type { Fleet } from '../simulator/fleet.js';
import { SCENARIO_NAMES, type ScenarioName } from '../simulator/resident-model.js';
import type { AdminAuth } from './admin-auth.js';

/** Filled once the fleet runs (it needs the server's URL, so it starts after the routes exist). */
export interface FleetHolder {
  fleet: Fleet | null;
}

const body = {
  type: 'object',
  required: ['device', 'scenario'],
  additionalProperties: false,
  properties: {
    device: { anyOf: [{ type: 'string', maxLength: 64 }, { type: 'integer', minimum: 0 }] },
    scenario: { type: 'string', enum: SCENARIO_NAMES as unknown as string[] },
    durationS: { type: 'number', exclusiveMinimum: 0, maximum: 86400 },
  },
} as const;

export function registerSimulatorApi(app: FastifyInstance, holder: FleetHolder, admin: AdminAuth): void {
  app.post('/v1/simulator/scenarios', { schema: { body }, onRequest: async (req) => admin.check(req) }, async (req, reply) => {
    const { device, scenario, durationS } = req.body as { device: string | number; scenario: ScenarioName; durationS?: number };
    if (!holder.fleet) throw new VigilError('NOT_FOUND', 'no simulated fleet runs in this process (start with --simulate N)');
    try {
      holder.fleet.inject(device, scenario, undefined, durationS === undefined ? undefined : durationS * 1000);
    } catch (err) {
      throw new VigilError('INVALID_BODY', (err as Error).message);
    }
    return reply.code(202).send({ device, scenario });
  });
}
