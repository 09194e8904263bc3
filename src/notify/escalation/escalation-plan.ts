/**
 * Turns an alert and its policy into outbox rows, one per (step, contact, channel) — the
 * idempotency key of a notification (DESIGN §3.2) — all written with the alert in one
 * transaction, each due at its step's time. Timers are therefore rows: they survive restarts,
 * and a row whose alert was acknowledged or resolved before it came due is cancelled, not sent.
 *
 * A contact gets a channel only if they have an address for it (a phone for sms/voice, an
 * email, a push subscription, a webhook URL), accept it (`preferences.channels`), and the
 * channel is configured on this Vigil. Quiet hours hold back everything but critical alerts
 * until they end; low-severity alerts wait for the contact's digest time.
 *
 * Pure: the caller loads contacts and the policy (outboxFor must be free of side effects).
 */
import { clockFor, knownTimeZone } from '../../core/local-time.js';
import type { Alert, Contact, OutboxItem } from '../../store/types.js';
import type { EscalationPolicy, StepContacts } from './escalation-policy.js';

/** What the outbox sender needs to keep escalating after a row is sent. */
export interface EscalationPayload {
  /** A low-severity notice: sent with the contact's other notices due at the same digest time, as one message. */
  digest?: boolean;
  /** The last step repeats: the next row is queued when this one is sent. */
  repeat?: { everyMs: number; left: number };
  /** The webhook channel's request, built now since it carries no personal data. */
  webhook?: { url: string; secret: string; event: string; body: unknown };
}

export interface PlanInput {
  alert: Alert;
  policy: EscalationPolicy;
  contacts: Contact[];
  /** The resident's zone: quiet hours and digest times are the household's local time. */
  timezone: string;
  /** Channels this Vigil can send on. */
  channels: ReadonlySet<string>;
  /** Builds the webhook body (notify/alert-notifications.ts). */
  webhookBody: (alert: Alert) => unknown;
  now: number;
}

export const outboxId = (alertId: string, step: number, contactId: string, channel: string) => `${alertId}:${step}:${contactId}:${channel}`;

const DEFAULT_DIGEST_AT = '08:00';

export function planNotifications(input: PlanInput): OutboxItem[] {
  const { alert, policy, now } = input;
  const ranked = rankContacts(input.contacts);
  const rows: OutboxItem[] = [];
  policy.steps.forEach((step, index) => {
    const last = index === policy.steps.length - 1;
    for (const contact of pick(ranked, step.contacts)) {
      for (const channel of step.channels) {
        if (!reachable(contact, channel, input.channels)) continue;
        let due = alert.detectedAt + step.afterS * 1000;
        if (alert.severity === 'low') due = nextLocalTime(due, contact.preferences.digestAt ?? DEFAULT_DIGEST_AT, input.timezone);
        else if (alert.severity !== 'critical') due = afterQuietHours(due, contact, input.timezone);
        const payload: EscalationPayload = {};
        if (alert.severity === 'low' && channel !== 'webhook') payload.digest = true;
        if (last && policy.repeatEveryS && policy.maxRepeats > 0) payload.repeat = { everyMs: policy.repeatEveryS * 1000, left: policy.maxRepeats };
        if (channel === 'webhook') payload.webhook = { url: contact.webhookUrl!, secret: contact.webhookSecret!, event: 'alert.opened', body: input.webhookBody(alert) };
        rows.push({
          id: outboxId(alert.id, index, contact.id, channel),
          alertId: alert.id,
          step: index,
          contactId: contact.id,
          channel,
          payload: payload as Record<string, unknown>,
          status: 'queued',
          attempts: 0,
          nextAttemptAt: Math.max(due, now),
          lastError: null,
          providerId: null,
          createdAt: now,
          updatedAt: now,
        });
      }
    }
  });
  return rows;
}

/** The next repeat of a sent row of the last step, or null when the repeats are used up. */
export function nextRepeat(item: OutboxItem, now: number): OutboxItem | null {
  const repeat = (item.payload as EscalationPayload).repeat;
  if (!repeat || repeat.left <= 0) return null;
  const step = item.step + 1;
  return {
    ...item,
    id: outboxId(item.alertId, step, item.contactId, item.channel),
    step,
    payload: { ...item.payload, repeat: { everyMs: repeat.everyMs, left: repeat.left - 1 } },
    status: 'queued',
    attempts: 0,
    nextAttemptAt: now + repeat.everyMs,
    lastError: null,
    providerId: null,
    createdAt: now,
    updatedAt: now,
  };
}

/** Primary first: lowest `priority` (default 1), then the earliest created. */
function rankContacts(contacts: Contact[]): Contact[] {
  return [...contacts].sort((a, b) => (a.preferences.priority ?? 1) - (b.preferences.priority ?? 1) || a.createdAt - b.createdAt || a.id.localeCompare(b.id));
}

function pick(ranked: Contact[], who: StepContacts): Contact[] {
  if (who === 'all') return ranked;
  if (who === 'primary') return ranked.slice(0, 1);
  if (who === 'secondary') return ranked.slice(1, 2);
  return ranked.filter((c) => who.includes(c.id));
}

function reachable(contact: Contact, channel: string, configured: ReadonlySet<string>): boolean {
  if (!configured.has(channel)) return false;
  const accepted = contact.preferences.channels;
  if (accepted && !accepted.includes(channel)) return false;
  switch (channel) {
    case 'sms':
    case 'voice':
      return !!contact.phone;
    case 'email':
      return !!contact.email;
    case 'push':
      return (contact.preferences.pushSubscriptions?.length ?? 0) > 0;
    case 'webhook':
      return !!contact.webhookUrl && !!contact.webhookSecret;
    default:
      return false;
  }
}

const minutesOf = (hhmm: string) => {
  const [h, m] = hhmm.split(':').map(Number);
  return h * 60 + m;
};

/** If `ts` falls in the contact's quiet hours (local, may span midnight), their end; else `ts`. */
export function afterQuietHours(ts: number, contact: Contact, timezone: string): number {
  const quiet = contact.preferences.quietHours;
  if (!quiet) return ts;
  const start = minutesOf(quiet.start);
  const end = minutesOf(quiet.end);
  const { minute } = clockFor(knownTimeZone(timezone)).at(ts);
  const inside = start <= end ? minute >= start && minute < end : minute >= start || minute < end;
  return inside ? nextLocalTime(ts, quiet.end, timezone) : ts;
}

/** The first instant at or after `ts` whose local time is `hhmm`. */
export function nextLocalTime(ts: number, hhmm: string, timezone: string): number {
  const clock = clockFor(knownTimeZone(timezone));
  const { day, minute } = clock.at(ts);
  const target = minutesOf(hhmm);
  const at = clock.toEpoch(minute <= target ? day : day + 1, target);
  return at >= ts ? at : clock.toEpoch(day + 1, target);
}
