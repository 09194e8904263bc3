/**
 * Escalation policies: who is reached, how and when, until someone acknowledges. A policy is
 * an ordered list of steps, each at a delay after the alert was detected (processing time),
 * naming the contacts (all, the primary, the secondary, or ids) and the channels; the last
 * step may repeat until the alert is acknowledged or resolved.
 *
 * Where a policy comes from, first match wins: the resident's own (store setting
 * `escalation:<residentId>`), the site's for the alert's severity (`escalation:default:<severity>`),
 * the built-in default below.
 */
import type { Severity, Store } from '../../store/types.js';

export type StepContacts = 'all' | 'primary' | 'secondary' | string[];

export interface EscalationStep {
  /** Seconds after the alert was detected. */
  afterS: number;
  contacts: StepContacts;
  /** Channel names: push, sms, voice, email, webhook. */
  channels: string[];
}

export interface EscalationPolicy {
  steps: EscalationStep[];
  /** Repeat the last step this often until acknowledged; null: no repeat. */
  repeatEveryS: number | null;
  /** At most this many repeats (a band left on the floor must not call all night). */
  maxRepeats: number;
}

/**
 * Built-in defaults per severity (the example for critical alerts): everyone at once on
 * the quiet channels, then an SMS to the primary contact, then calls. Low-severity alerts
 * (battery, activity drop) wait for each contact's daily digest time instead of paging.
 */
export const DEFAULT_POLICIES: Readonly<Record<Severity, EscalationPolicy>> = {
  critical: {
    steps: [
      { afterS: 0, contacts: 'all', channels: ['push', 'webhook', 'sms'] },
      { afterS: 120, contacts: 'primary', channels: ['sms'] },
      { afterS: 300, contacts: 'primary', channels: ['voice'] },
      { afterS: 360, contacts: 'secondary', channels: ['voice'] },
    ],
    repeatEveryS: 600,
    maxRepeats: 6,
  },
  high: {
    steps: [
      { afterS: 0, contacts: 'all', channels: ['push', 'webhook', 'sms'] },
      { afterS: 600, contacts: 'primary', channels: ['voice'] },
    ],
    repeatEveryS: 1800,
    maxRepeats: 4,
  },
  medium: {
    steps: [
      { afterS: 0, contacts: 'all', channels: ['push', 'webhook', 'email'] },
      { afterS: 1800, contacts: 'primary', channels: ['sms'] },
    ],
    repeatEveryS: null,
    maxRepeats: 0,
  },
  low: { steps: [{ afterS: 0, contacts: 'all', channels: ['email', 'push', 'webhook'] }], repeatEveryS: null, maxRepeats: 0 },
};

export const CHANNEL_NAMES = ['push', 'sms', 'voice', 'email', 'webhook'] as const;

/** JSON schema of a policy (admin API body). */
export const policySchema = {
  type: 'object',
  required: ['steps'],
  additionalProperties: false,
  properties: {
    steps: {
      type: 'array',
      minItems: 1,
      maxItems: 20,
      items: {
        type: 'object',
        required: ['afterS', 'contacts', 'channels'],
        additionalProperties: false,
        properties: {
          afterS: { type: 'number', minimum: 0, maximum: 86_400 },
          contacts: {
            anyOf: [
              { type: 'string', enum: ['all', 'primary', 'secondary'] },
              { type: 'array', minItems: 1, maxItems: 50, items: { type: 'string', minLength: 1, maxLength: 100 } },
            ],
          },
          channels: { type: 'array', minItems: 1, uniqueItems: true, items: { type: 'string', enum: CHANNEL_NAMES } },
        },
      },
    },
    repeatEveryS: { type: ['number', 'null'], minimum: 60, maximum: 86_400 },
    maxRepeats: { type: 'integer', minimum: 0, maximum: 100 },
  },
} as const;

export const residentPolicyKey = (residentId: string) => `escalation:${residentId}`;
export const sitePolicyKey = (severity: Severity) => `escalation:default:${severity}`;

/** Fills what a stored policy may leave out, and orders its steps by delay. */
export function normalizePolicy(p: Partial<EscalationPolicy> & { steps: EscalationStep[] }): EscalationPolicy {
  return {
    steps: [...p.steps].sort((a, b) => a.afterS - b.afterS),
    repeatEveryS: p.repeatEveryS ?? null,
    maxRepeats: p.repeatEveryS ? (p.maxRepeats ?? 6) : 0,
  };
}

/** The policy for an alert of `severity` raised for `residentId`, and where it came from. */
export async function policyFor(store: Store, residentId: string, severity: Severity): Promise<{ policy: EscalationPolicy; source: 'resident' | 'site' | 'default' }> {
  const own = await store.getSetting(residentPolicyKey(residentId));
  if (own) {
    const byResident = JSON.parse(own) as Partial<Record<Severity, EscalationPolicy>> & { all?: EscalationPolicy };
    const chosen = byResident[severity] ?? byResident.all;
    if (chosen) return { policy: normalizePolicy(chosen), source: 'resident' };
  }
  const site = await store.getSetting(sitePolicyKey(severity));
  if (site) return { policy: normalizePolicy(JSON.parse(site) as EscalationPolicy), source: 'site' };
  return { policy: DEFAULT_POLICIES[severity], source: 'default' };
}
