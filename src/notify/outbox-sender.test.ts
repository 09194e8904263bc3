/**
 * The outbox sender over a real SQLite store: low-severity notices due at the same digest time
 * go out as one message per contact and channel; rows of an alert acknowledged meanwhile are
 * cancelled, not sent. The channel here records what it is asked to send (it stands for a
 * provider; the channels themselves are tested against local providers).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { SqliteStore } from '../store/sqlite/sqlite-store.js';
import type { AlertChange } from '../store/types.js';
import { alertMessage } from './messages.js';
import { notificationsFor } from './alert-notifications.js';
import { OutboxSender } from './outbox-sender.js';
import type { Channel, Delivery } from './types.js';

const DAY = 86_400_000;

describe('outbox sender', () => {
  let dir = '';
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('sends due low-severity notices as one digest per contact and channel, and skips acknowledged ones', async () => {
    dir = mkdtempSync(join(tmpdir(), 'vigil-sender-'));
    const store = await SqliteStore.open(join(dir, 'store.db'));
    try {
      await store.createResident({ id: 'res-1', name: 'Ada', birthDate: null, timezone: 'Europe/Paris', homeLocation: null });
      const yesterday = Date.now() - DAY;
      // Their digest time an hour after the alerts: due since yesterday, whatever the hour now.
      const digestAt = new Date(yesterday + 3_600_000).toLocaleTimeString('en-GB', { timeZone: 'Europe/Paris', hour: '2-digit', minute: '2-digit', hourCycle: 'h23' });
      await store.createContact({ id: 'con-1', residentId: 'res-1', name: 'Son', phone: null, email: 'son@example.test', webhookUrl: null, webhookSecret: null, preferences: { digestAt } });
      const raise = (type: string, seq: number, severity: 'low' | 'critical' = 'low'): AlertChange => ({
        kind: 'raise',
        alert: { id: `alr-${type}`, residentId: 'res-1', deviceId: 'band-1', type, severity, openedAt: yesterday, detectedAt: yesterday, delayMs: 0, evidence: { seq } },
      });
      const lease = (await store.acquireLease('alerts', 0, 'w', 60_000, Date.now()))!;
      const outboxFor = notificationsFor(store, { channels: new Set(['email']), pageWithinMs: 2 * DAY, clock: () => yesterday });
      await store.commitAlertBatch([raise('BATTERY_LOW', 1), raise('NOT_WORN', 2), raise('ACTIVITY_DROP', 3)], outboxFor, {
        group: 'alerts', partition: 0, sequence: '1', snapshot: null, fence: { owner: 'w', epoch: lease.epoch },
      });
      await store.acknowledgeAlert('alr-NOT_WORN', 'nurse', null, Date.now());

      const sent: Delivery[] = [];
      const email: Channel = { name: 'email', send: async (d) => (sent.push(d), { providerId: `msg-${sent.length}` }) };
      const sender = new OutboxSender({ store, channels: [email], maxAttempts: 3, retryBaseMs: 10, stuckAfterMs: 10_000, log: pino({ level: 'silent' }), pollMs: 20 });
      await sender.start();
      await new Promise((r) => setTimeout(r, 300));
      await sender.stop();

      expect(sent).toHaveLength(1);
      expect(sent[0].digest!.map((a) => a.type).sort()).toEqual(['ACTIVITY_DROP', 'BATTERY_LOW']);
      const { title, text } = alertMessage(sent[0].alert, sent[0].resident, sent[0].digest);
      expect(title).toBe('Vigil: 2 notices for Ada');
      expect(text.split('\n')).toHaveLength(3);
      const status = async (type: string) => (await store.listOutbox(`alr-${type}`)).map((r) => [r.status, r.providerId]);
      expect(await status('BATTERY_LOW')).toEqual([['sent', 'msg-1']]);
      expect(await status('ACTIVITY_DROP')).toEqual([['sent', 'msg-1']]);
      expect((await status('NOT_WORN'))[0][0]).toBe('cancelled');
    } finally {
      await store.close();
    }
  });
});
