import type { AddressInfo } from 'node:net';
import { SMTPServer, type SMTPServerAddress } from 'smtp-server';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Alert, Contact, OutboxItem, Resident } from '../../../store/types.js';
import { PermanentDeliveryError, type Delivery } from '../../types.js';
import { alertEmail, EmailChannel, messageIdFor } from './email-channel.js';

const T0 = Date.UTC(2026, 10, 26, 10, 0, 0);
const FROM = 'Vigil <vigil@care.example>';

const resident: Resident = { id: 'res-1', name: 'Ada <Lovelace>', birthDate: null, timezone: 'UTC', homeLocation: null, medicalNotes: null, createdAt: T0 };
const alert: Alert = {
  id: 'alr_1', residentId: 'res-1', deviceId: 'band-1', type: 'SOS', severity: 'critical', state: 'open',
  openedAt: T0, detectedAt: T0, delayMs: null, acknowledgedAt: null, acknowledgedBy: null, ackNote: null,
  resolvedAt: null, lastSeenAt: T0, occurrences: 1, evidence: {},
};
const contactTo = (email: string | null): Contact => ({
  id: 'con-1', residentId: 'res-1', name: 'Grace', phone: null, email, webhookUrl: null, webhookSecret: null, preferences: {}, createdAt: T0,
});
const item: OutboxItem = {
  id: 'alr_1:0:con-1:email', alertId: 'alr_1', step: 0, contactId: 'con-1', channel: 'email', payload: {},
  status: 'sending', attempts: 1, nextAttemptAt: T0, lastError: null, providerId: null, createdAt: T0, updatedAt: T0,
};
const delivery = (email: string | null): Delivery => ({ item, alert, resident, contact: contactTo(email) });

interface Received {
  from: string | false;
  to: string[];
  headers: Map<string, string>;
  raw: string;
}

/** Header block of a message (or MIME part), unfolded, names lower-cased. */
function parseHeaders(block: string): Map<string, string> {
  const headers = new Map<string, string>();
  for (const line of block.replace(/\r\n[ \t]+/g, ' ').split('\r\n')) {
    const i = line.indexOf(':');
    if (i > 0) headers.set(line.slice(0, i).toLowerCase(), line.slice(i + 1).trim());
  }
  return headers;
}

/** The decoded body of the message's part of this content type (multipart/alternative, 7bit or quoted-printable). */
function part(raw: string, type: string): string {
  const boundary = /boundary="?([^";\r\n]+)"?/.exec(raw)![1];
  for (const chunk of raw.split(`--${boundary}`)) {
    const [head, ...rest] = chunk.replace(/^\r\n/, '').split('\r\n\r\n');
    const headers = parseHeaders(head);
    if (!headers.get('content-type')?.startsWith(type)) continue;
    const body = rest.join('\r\n\r\n').replace(/\r\n$/, '');
    if (headers.get('content-transfer-encoding') !== 'quoted-printable') return body;
    const bytes = body.replace(/=\r\n/g, '').replace(/=([0-9A-F]{2})/g, (_, h: string) => String.fromCharCode(parseInt(h, 16)));
    return Buffer.from(bytes, 'latin1').toString('utf8');
  }
  throw new Error(`no ${type} part`);
}

let server: SMTPServer;
let port = 0;
const received: Received[] = [];

beforeAll(async () => {
  server = new SMTPServer({
    logger: false,
    authOptional: true,
    disabledCommands: ['STARTTLS', 'AUTH'],
    onRcptTo(address: SMTPServerAddress, _session, callback) {
      if (address.address.startsWith('nobody@')) return callback(Object.assign(new Error('5.1.1 No such user'), { responseCode: 550 }));
      if (address.address.startsWith('full@')) return callback(Object.assign(new Error('4.2.2 Mailbox full, try later'), { responseCode: 452 }));
      callback();
    },
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        const raw = Buffer.concat(chunks).toString('utf8');
        received.push({
          from: session.envelope.mailFrom && session.envelope.mailFrom.address,
          to: session.envelope.rcptTo.map((r) => r.address),
          headers: parseHeaders(raw.split('\r\n\r\n')[0]),
          raw,
        });
        callback();
      });
    },
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.server.address() as AddressInfo).port;
});
afterAll(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
});
beforeEach(() => {
  received.length = 0;
});

const channelFor = (smtpUrl = `smtp://127.0.0.1:${port}`, publicUrl?: string) => new EmailChannel({ smtpUrl, from: FROM, timeoutMs: 5000, publicUrl });

describe('EmailChannel', () => {
  it('mails the contact the alert, with the delivery id and a Message-ID stable across resends', async () => {
    const channel = channelFor(undefined, 'https://vigil.care.example/');
    const first = await channel.send(delivery('grace@family.example'));

    expect(received).toHaveLength(1);
    const [mail] = received;
    expect(mail.from).toBe('vigil@care.example');
    expect(mail.to).toEqual(['grace@family.example']);
    expect(mail.headers.get('to')).toBe('grace@family.example');
    expect(mail.headers.get('from')).toBe(FROM);
    expect(mail.headers.get('subject')).toBe('Vigil: sos');
    expect(mail.headers.get('x-vigil-delivery')).toBe(item.id);
    expect(mail.headers.get('auto-submitted')).toBe('auto-generated');
    expect(mail.headers.get('importance')).toBe('high');
    const messageId = mail.headers.get('message-id');
    expect(messageId).toMatch(/^<vigil\.[0-9a-f]{32}@care\.example>$/);
    expect(first.providerId).toBe(messageId);

    const text = part(mail.raw, 'text/plain');
    expect(text).toContain('Ada <Lovelace> pressed the SOS button at 2026-11-26 10:00 UTC.');
    expect(text).toContain('Severity: critical');
    expect(text).toContain('Time: 2026-11-26 10:00:00 UTC');
    expect(text).toContain('Acknowledge in Vigil: https://vigil.care.example/#/alerts/alr_1');
    const html = part(mail.raw, 'text/html');
    expect(html).toContain('Ada &lt;Lovelace&gt; pressed the SOS button'); // escaped
    expect(html).toContain('<b>SOS</b>');
    expect(html).toContain('<a href="https://vigil.care.example/#/alerts/alr_1" style="font-weight: bold">Acknowledge in Vigil</a>');

    // A resend of the same outbox row (after a crash) is recognisable.
    const second = await channel.send(delivery('grace@family.example'));
    expect(second.providerId).toBe(messageId);
    expect(received[1].headers.get('message-id')).toBe(messageId);
  });

  it('fails for good when the server refuses the recipient (550)', async () => {
    const err = await channelFor().send(delivery('nobody@family.example')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PermanentDeliveryError);
    expect((err as Error).message).toMatch(/^SMTP 550: .*No such user/);
    expect(received).toHaveLength(0);
  });

  it('lets the outbox retry a temporary refusal (4xx)', async () => {
    const err = await channelFor().send(delivery('full@family.example')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    expect(err).not.toBeInstanceOf(PermanentDeliveryError);
    expect((err as Error).message).toMatch(/^SMTP 452: /);
  });

  it('lets the outbox retry when the server cannot be reached', async () => {
    const closed = new SMTPServer({ logger: false });
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const deadPort = (closed.server.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const err = await channelFor(`smtp://127.0.0.1:${deadPort}`).send(delivery('grace@family.example')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    expect(err).not.toBeInstanceOf(PermanentDeliveryError);
    expect((err as Error).message).toMatch(/ECONNREFUSED|ECONNECTION|ESOCKET/);
  });

  it('fails for good without an address or a contact', async () => {
    await expect(channelFor().send(delivery(null))).rejects.toBeInstanceOf(PermanentDeliveryError);
    await expect(channelFor().send({ item, alert, resident, contact: null })).rejects.toBeInstanceOf(PermanentDeliveryError);
    expect(received).toHaveLength(0);
  });
});

describe('alertEmail and messageIdFor', () => {
  it('says where to acknowledge without a public URL', () => {
    const mail = alertEmail({ ...alert, severity: 'low', type: 'BATTERY_LOW' }, null);
    expect(mail.subject).toBe('Vigil: battery low');
    expect(mail.text).toContain("A resident's band battery is low");
    expect(mail.text).toContain('Acknowledge in Vigil (the dashboard, Alerts).');
    expect(mail.html).not.toContain('<a ');
  });

  it('gives each delivery its own id, the same every time', () => {
    expect(messageIdFor('a:0:c:email', FROM)).toBe(messageIdFor('a:0:c:email', FROM));
    expect(messageIdFor('a:1:c:email', FROM)).not.toBe(messageIdFor('a:0:c:email', FROM));
    expect(messageIdFor('x', 'vigil@localhost')).toMatch(/@localhost>$/);
    expect(messageIdFor('x', 'no address')).toMatch(/@vigil\.invalid>$/);
  });
});
