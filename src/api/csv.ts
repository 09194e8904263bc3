/**
 * CSV answers (RFC 4180) for the listing routes, chosen with `Accept: text/csv`.
 *
 * - One header row, then one row per item, lines ended by CRLF.
 * - A field holding a comma, a double quote, CR or LF is enclosed in double quotes, with its
 *   double quotes doubled; others are written as they are.
 * - null and absent values are empty fields; booleans `true`/`false`; arrays and objects
 *   (events, flags, evidence) their JSON.
 * - A text value starting with `=`, `+`, `-`, `@`, tab or CR gets a leading `'`, so a
 *   spreadsheet opening the file does not run it as a formula (CSV injection). Numbers are
 *   never changed.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';

export const CSV_TYPE = 'text/csv; charset=utf-8; header=present';

/** True when the request's Accept header asks for text/csv (with a non-zero q). */
export function wantsCsv(req: FastifyRequest): boolean {
  const accept = req.headers.accept;
  if (!accept) return false;
  return accept.split(',').some((part) => {
    const [type, ...params] = part.trim().toLowerCase().split(';');
    if (type.trim() !== 'text/csv') return false;
    const q = params.map((p) => p.trim()).find((p) => p.startsWith('q='));
    return q === undefined || Number(q.slice(2)) > 0;
  });
}

const NEEDS_QUOTES = /[",\r\n]/;
const FORMULA = /^[=+\-@\t\r]/;

export function csvField(value: unknown): string {
  if (value === null || value === undefined) return '';
  let text: string;
  if (typeof value === 'string') text = FORMULA.test(value) ? `'${value}` : value;
  else if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') text = String(value);
  else text = JSON.stringify(value);
  return NEEDS_QUOTES.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

/** The CSV of `rows` with these columns, in this order. */
export function toCsv<T extends object>(columns: readonly (keyof T & string)[], rows: readonly T[]): string {
  const lines = [columns.map(csvField).join(',')];
  for (const row of rows) lines.push(columns.map((c) => csvField(row[c])).join(','));
  return lines.join('\r\n') + '\r\n';
}

/**
 * Sends `rows` as CSV. `next` (the cursor of the following page, when there is one) goes in
 * a `Link: <…>; rel="next"` header, the request's URL with `param` set to it.
 */
export function sendCsv<T extends object>(
  req: FastifyRequest,
  reply: FastifyReply,
  columns: readonly (keyof T & string)[],
  rows: readonly T[],
  next?: { param: string; cursor: string | null },
): FastifyReply {
  if (next?.cursor) reply.header('link', `<${withParam(req.url, next.param, next.cursor)}>; rel="next"`);
  return reply.type(CSV_TYPE).send(toCsv(columns, rows));
}

/** `url` (a path and query) with the query parameter `name` set to `value`. */
export function withParam(url: string, name: string, value: string): string {
  const parsed = new URL(url, 'http://x');
  parsed.searchParams.set(name, value);
  return parsed.pathname + parsed.search;
}
