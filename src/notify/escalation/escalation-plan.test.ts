import { describe, expect, it } from 'vitest';
import type { Alert, Contact } from '../../store/types.js';
import { afterQuietHours, nextLocalTime, nextRepeat, planNotifications } from './escalation-plan.js';
import { DEFAULT_POLICIES, normalizePolicy, type EscalationPolicy } from './escalation-policy.js';

const T0 = Date.parse('2026-01-05T10:00:00Z'); // 11:00 in Paris
const alert = (over: Partial<Alert> = {}): Alert => ({
  id: 'alr-1', residentId: 'res-1', deviceId: 'band-1', type: 'SOS', severity: 'critical', state: 'open',
  openedAt: T0, detectedAt: T0, delayMs: 0, acknowledgedAt: null, acknowledgedBy: null, ackNote: null,
  resolvedAt: null, lastSeenAt: T0, occurrences: 1, evidence: {}, ...over,
});
const contact = (id: string, over: Partial<Contact> = {}, createdAt = 1): Contact => ({
  id, residentId: 'res-1', name: id, phone: '+33600000000', email: `${id}@example.test`, webhookUrl: null, webhookSecret: null,
  preferences: {}, createdAt, ...over,
});
const ALL = new Set(['push', 'sms', 'voice', 'email', 'webhook']);
const plan = (policy: EscalationPolicy, contacts: Contact[], a = alert(), channels: ReadonlySet<string> = ALL) =>
  planNotifications({ alert: a, policy, contacts, timezone: 'Europe/Paris', channels, webhookBody: (x) => ({ id: x.id }), now: T0 });
const ids = (rows: { id: string; nextAttemptAt: number }[]) => rows.map((r) => `${r.id}@${(r.nextAttemptAt - T0) / 1000}`);

describe('escalation plan', () => {
  const primary = contact('con-p', { preferences: { priority: 1 } }, 2);
  const secondary = contact('con-s', { preferences: { priority: 2 } }, 1);

  it('follows the default critical policy: SMS to all, SMS to the primary at 2 min, then calls', () => {
    const rows = plan(DEFAULT_POLICIES.critical, [secondary, primary]);
    expect(ids(rows)).toEqual([
      'alr-1:0:con-p:sms@0', 'alr-1:0:con-s:sms@0',
      'alr-1:1:con-p:sms@120',
      'alr-1:2:con-p:voice@300',
      'alr-1:3:con-s:voice@360',
    ]);
    expect(rows[4].payload).toMatchObject({ repeat: { everyMs: 600_000, left: 6 } });
    expect(rows[0].payload).not.toHaveProperty('repeat');
  });

  it('reaches a contact only on channels they have an address for, accept, and this Vigil has', () => {
    const webhookOnly = contact('con-w', { phone: null, email: null, webhookUrl: 'https://h.example/x', webhookSecret: 'whsec' });
    const pushFan = contact('con-push', { preferences: { channels: ['push'], pushSubscriptions: [{ endpoint: 'https://push.example/1', keys: { p256dh: 'k', auth: 'a' } }] } });
    const policy = normalizePolicy({ steps: [{ afterS: 0, contacts: 'all', channels: ['push', 'sms', 'webhook', 'email'] }] });
    expect(ids(plan(policy, [webhookOnly, pushFan])).sort()).toEqual(['alr-1:0:con-push:push@0', 'alr-1:0:con-w:webhook@0']);
    expect(ids(plan(policy, [webhookOnly, pushFan], alert(), new Set(['webhook'])))).toEqual(['alr-1:0:con-w:webhook@0']);
    expect(plan(policy, [webhookOnly])[0].payload).toMatchObject({ webhook: { url: 'https://h.example/x', secret: 'whsec', body: { id: 'alr-1' } } });
  });

  it('names contacts by id too, and skips a step with nobody to reach', () => {
    const policy = normalizePolicy({ steps: [{ afterS: 30, contacts: ['con-s'], channels: ['email'] }, { afterS: 60, contacts: 'secondary', channels: ['voice'] }] });
    expect(ids(plan(policy, [primary]))).toEqual([]);
    expect(ids(plan(policy, [primary, secondary]))).toEqual(['alr-1:0:con-s:email@30', 'alr-1:1:con-s:voice@60']);
  });

  it('holds non-critical alerts in quiet hours until they end, never critical ones', () => {
    const night = Date.parse('2026-01-05T22:30:00Z'); // 23:30 in Paris
    const sleeper = contact('con-q', { preferences: { quietHours: { start: '22:00', end: '07:00' } } });
    const policy = normalizePolicy({ steps: [{ afterS: 0, contacts: 'all', channels: ['sms'] }] });
    const high = planNotifications({ alert: alert({ severity: 'high', detectedAt: night }), policy, contacts: [sleeper], timezone: 'Europe/Paris', channels: ALL, webhookBody: () => ({}), now: night });
    expect(new Date(high[0].nextAttemptAt).toISOString()).toBe('2026-01-06T06:00:00.000Z');
    const critical = planNotifications({ alert: alert({ detectedAt: night }), policy, contacts: [sleeper], timezone: 'Europe/Paris', channels: ALL, webhookBody: () => ({}), now: night });
    expect(critical[0].nextAttemptAt).toBe(night);
    expect(afterQuietHours(T0, sleeper, 'Europe/Paris')).toBe(T0); // 11:00: not quiet
  });

  it('sends low-severity alerts at the contact’s digest time', () => {
    const rows = plan(DEFAULT_POLICIES.low, [contact('con-d', { preferences: { digestAt: '18:30' } })], alert({ severity: 'low', type: 'BATTERY_LOW' }));
    expect(rows.map((r) => `${r.channel} ${new Date(r.nextAttemptAt).toISOString()}`)).toEqual(['email 2026-01-05T17:30:00.000Z']);
    expect(new Date(nextLocalTime(T0, '08:00', 'Europe/Paris')).toISOString()).toBe('2026-01-06T07:00:00.000Z');
  });

  it('repeats the last step until the repeats are used up', () => {
    const last = plan(DEFAULT_POLICIES.critical, [primary, secondary]).at(-1)!;
    const first = nextRepeat(last, T0 + 1000)!;
    expect(first).toMatchObject({ id: 'alr-1:4:con-s:voice', step: 4, status: 'queued', attempts: 0, nextAttemptAt: T0 + 1000 + 600_000, payload: { repeat: { left: 5 } } });
    let row = first;
    for (let i = 0; i < 5; i++) row = nextRepeat(row, T0)!;
    expect(row.step).toBe(9);
    expect(nextRepeat(row, T0)).toBeNull();
    expect(nextRepeat(plan(DEFAULT_POLICIES.critical, [primary])[0], T0)).toBeNull();
  });
});
