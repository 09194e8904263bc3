/**
 * Email notifications over SMTP (nodemailer), to `contact.email`
 * (docs/notifications-push-email.md).
 *
 * Every message carries `X-Vigil-Delivery: <outbox id>` and a `Message-ID` derived from that
 * id: a resend after a crash (the outbox is at-least-once) has the same Message-ID, so mail
 * clients and the contact can tell it is the same notification.
 *
 * Outcomes: a 5xx SMTP answer (recipient or message refused) fails the delivery for good; a
 * 4xx answer, a refused or broken connection or a timeout is retried by the outbox. A 5xx to
 * our own login (EAUTH) is retried too: it is Vigil's configuration, not the recipient.
 */
import { createHash } from 'node:crypto';
import nodemailer, { type Transporter } from 'nodemailer';
import type { Alert, Resident } from '../../../store/types.js';
import { alertMessage } from '../../messages.js';
import { PermanentDeliveryError, type Channel, type Delivery } from '../../types.js';

export interface EmailChannelOptions {
  /** `smtp://`, or `smtps://user:pass@host:465` (config email.smtpUrl); nodemailer URL options allowed. */
  smtpUrl: string;
  /** From address, e.g. `Vigil <vigil@example.org>` (config email.from). */
  from: string;
  /** Connection, greeting and idle-socket timeout, and the bound on one whole delivery, in milliseconds. */
  timeoutMs: number;
  /** Public base URL of the dashboard (config notify.publicUrl): the email links to the alert when set. */
  publicUrl?: string;
}

/** The domain of an address like `Vigil <vigil@example.org>`, for Message-IDs. */
function domainOf(from: string): string {
  const m = /@([A-Za-z0-9.-]+)>?\s*$/.exec(from.trim());
  return m ? m[1] : 'vigil.invalid';
}

/** The same for every attempt of one outbox row; a valid `msg-id` (RFC 5322) whatever the id holds. */
export const messageIdFor = (deliveryId: string, from: string): string =>
  `<vigil.${createHash('sha256').update(deliveryId).digest('hex').slice(0, 32)}@${domainOf(from)}>`;

const escapeHtml = (s: string): string =>
  s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

const iso = (ms: number) => new Date(ms).toISOString().replace('T', ' ').slice(0, 19) + ' UTC';

export interface AlertEmail {
  subject: string;
  text: string;
  html: string;
}

export function alertEmail(alert: Alert, resident: Resident | null, publicUrl?: string, digest?: Alert[]): AlertEmail {
  const { title, text } = alertMessage(alert, resident, digest);
  const link = publicUrl ? `${publicUrl.replace(/\/+$/, '')}/#/alerts/${encodeURIComponent(alert.id)}` : null;
  const rows: [string, string][] = [
    ['Alert', alert.type],
    ['Severity', alert.severity],
    ['Time', iso(alert.openedAt)],
    ['Alert id', alert.id],
  ];
  const ack = link ? `Acknowledge in Vigil: ${link}` : 'Acknowledge in Vigil (the dashboard, Alerts).';
  const plain = [text, '', ...rows.map(([k, v]) => `${k}: ${v}`), '', ack, ''].join('\n');
  const html = [
    '<!doctype html>',
    '<html><body style="font-family: sans-serif; line-height: 1.4">',
    `<h2 style="margin: 0 0 .5em">${escapeHtml(title)}</h2>`,
    `<p style="font-size: 1.1em">${escapeHtml(text)}</p>`,
    '<table style="border-collapse: collapse">',
    ...rows.map(([k, v]) => `<tr><td style="padding: 2px 12px 2px 0; color: #555">${escapeHtml(k)}</td><td><b>${escapeHtml(v)}</b></td></tr>`),
    '</table>',
    link
      ? `<p><a href="${escapeHtml(link)}" style="font-weight: bold">Acknowledge in Vigil</a></p>`
      : '<p>Acknowledge in Vigil (the dashboard, Alerts).</p>',
    '</body></html>',
  ].join('\n');
  return { subject: title, text: plain, html };
}

interface SmtpError extends Error {
  code?: string;
  responseCode?: number;
}

export class EmailChannel implements Channel {
  readonly name = 'email';
  private readonly transport: Transporter;

  constructor(private readonly o: EmailChannelOptions) {
    this.transport = nodemailer.createTransport({
      url: o.smtpUrl,
      connectionTimeout: o.timeoutMs,
      greetingTimeout: o.timeoutMs,
      socketTimeout: o.timeoutMs,
    });
  }

  async send({ item, alert, resident, contact, digest }: Delivery): Promise<{ providerId?: string }> {
    if (!contact) throw new PermanentDeliveryError('the contact was deleted');
    if (!contact.email) throw new PermanentDeliveryError(`contact ${contact.id} has no email address`);
    const { subject, text, html } = alertEmail(alert, resident, this.o.publicUrl, digest);
    const messageId = messageIdFor(item.id, this.o.from);
    const urgent = alert.severity === 'critical' || alert.severity === 'high';
    try {
      const info = await deadline(
        this.transport.sendMail({
          from: this.o.from,
          to: contact.email,
          subject,
          text,
          html,
          messageId,
          headers: {
            'X-Vigil-Delivery': item.id,
            'X-Vigil-Alert': alert.id,
            // RFC 3834: no out-of-office replies to a robot.
            'Auto-Submitted': 'auto-generated',
            ...(urgent && { Importance: 'high', 'X-Priority': '1' }),
          },
        }),
        this.o.timeoutMs,
      );
      return { providerId: (info as { messageId?: string }).messageId ?? messageId };
    } catch (err) {
      throw classify(err as SmtpError);
    }
  }
}

function classify(err: SmtpError): Error {
  const code = err.responseCode;
  if (code !== undefined && code >= 500 && code < 600 && err.code !== 'EAUTH') return new PermanentDeliveryError(`SMTP ${code}: ${err.message}`);
  // An address nodemailer itself cannot use (no SMTP answer at all) will not get better either.
  if (code === undefined && err.code === 'EENVELOPE') return new PermanentDeliveryError(err.message);
  return new Error(code !== undefined ? `SMTP ${code}: ${err.message}` : `SMTP ${err.code ?? 'error'}: ${err.message}`);
}

/** Rejects after `ms` (the send itself goes on, and its result is dropped). */
function deadline<T>(work: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(Object.assign(new Error(`email delivery took longer than ${ms} ms`), { code: 'ETIMEDOUT' })), ms);
  });
  return Promise.race([work, late]).finally(() => clearTimeout(timer));
}
