/**
 * The demo's stand-in for a family's phone: the simulated residents' contacts get a webhook to
 * `POST /v1/simulator/inbox` on Vigil itself, and a short escalation policy, so `npm start`
 * shows a whole escalation — step after step, until someone acknowledges — in its output.
 * Demo only: it trusts what it receives (a real receiver checks X-Vigil-Signature, docs/webhooks.md).
 */
import type { FastifyInstance } from 'fastify';
import type { EscalationPolicy } from '../notify/escalation/escalation-policy.js';

/**
 * Critical and high alerts of simulated residents: everyone at once, the primary contact again
 * after 10 s, everyone after 20 s, then every minute twice more — minutes compressed to seconds.
 */
const DEMO_POLICY: EscalationPolicy = {
  steps: [
    { afterS: 0, contacts: 'all', channels: ['webhook', 'push', 'sms', 'email'] },
    { afterS: 10, contacts: 'primary', channels: ['webhook', 'sms'] },
    { afterS: 20, contacts: 'all', channels: ['webhook', 'voice'] },
  ],
  repeatEveryS: 60,
  maxRepeats: 2,
};
export const DEMO_POLICIES = { critical: DEMO_POLICY, high: DEMO_POLICY };

export const DEMO_INBOX_PATH = '/v1/simulator/inbox';

interface Received {
  event?: string;
  alert?: { id?: string; type?: string; residentId?: string; severity?: string };
}

export function registerDemoInbox(app: FastifyInstance, print: (line: string) => void): void {
  app.post(DEMO_INBOX_PATH, async (req, reply) => {
    const body = (req.body ?? {}) as Received;
    // x-vigil-delivery is the outbox key: <alert>:<step>:<contact>:<channel>.
    const [, step = '?', contact = '?'] = String(req.headers['x-vigil-delivery'] ?? '').split(':');
    const time = new Date().toISOString().slice(11, 19);
    print(`[${time}] notify  ${body.alert?.type ?? '?'} (${body.alert?.severity ?? '?'}) of ${body.alert?.residentId ?? '?'}: step ${step} reached contact ${contact} by webhook`);
    return reply.code(204).send();
  });
}
