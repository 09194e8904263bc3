/**
 * Whether an error says a backend (database, stream, object store) cannot be reached or cannot
 * take a write right now — a condition that passes — rather than a bug. The HTTP layer answers
 * such errors `503` with `Retry-After`, so a phone retries instead of dropping its readings, and
 * logs them as warnings, not as internal errors.
 */

/** Socket-level failures Node reports, whatever the client library. */
const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOSPC']);
/** SQLite: locked by another process, disk full, I/O failing. */
const SQLITE = /^SQLITE_(BUSY|LOCKED|FULL|IOERR|CANTOPEN|READONLY)/;
/** PostgreSQL SQLSTATEs: connection exceptions (08…), shutting down or starting (57P0x), too many connections, disk full, out of memory. */
const POSTGRES = /^(08...|57P0[123]|53[123]00)$/;
/** What pg says, without a code, when the server goes away mid-connection or the pool cannot connect. */
const POSTGRES_MESSAGES = /Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error/;
/** AWS SDK v3 error names of a service that is busy or away. */
const AWS_NAMES = new Set(['TimeoutError', 'ThrottlingException', 'ProvisionedThroughputExceededException', 'RequestLimitExceeded', 'ServiceUnavailable', 'InternalServerError', 'LimitExceededException']);

export function isBackendUnavailable(err: unknown, depth = 0): boolean {
  if (!(err instanceof Error) || depth > 4) return false;
  const e = err as Error & { code?: unknown; $metadata?: { httpStatusCode?: number } };
  const code = typeof e.code === 'string' ? e.code : '';
  if (NETWORK_CODES.has(code) || SQLITE.test(code) || POSTGRES.test(code)) return true;
  if (POSTGRES_MESSAGES.test(e.message) || /No space left on device/.test(e.message)) return true;
  if (AWS_NAMES.has(e.name) || (e.$metadata?.httpStatusCode ?? 0) >= 500) return true;
  return isBackendUnavailable(e.cause, depth + 1) || (e instanceof AggregateError && e.errors.some((x) => isBackendUnavailable(x, depth + 1)));
}
