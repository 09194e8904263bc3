/**
 * The one catalogue of errors Vigil answers with. Every HTTP error is an RFC 9457
 * `application/problem+json` body `{type, title, status, detail, code, ...extra}` built from
 * an entry here, so clients can switch on `code` and docs/api.md can list them all.
 */
export const ERRORS = {
  MALFORMED_JSON: { status: 400, title: 'Body is not valid JSON' },
  INVALID_BODY: { status: 400, title: 'Body does not match the schema' },
  UNSUPPORTED_ENCODING: { status: 415, title: 'Unsupported Content-Encoding' },
  UNSUPPORTED_MEDIA_TYPE: { status: 415, title: 'Unsupported Content-Type' },
  BAD_GZIP: { status: 400, title: 'Body is not valid gzip' },
  TOO_MANY_READINGS: { status: 413, title: 'Too many readings in one request' },
  BODY_TOO_LARGE: { status: 413, title: 'Body too large' },
  MISSING_TOKEN: { status: 401, title: 'Missing bearer token' },
  INVALID_TOKEN: { status: 401, title: 'Invalid token' },
  WRONG_DEVICE: { status: 403, title: 'Token does not belong to this device' },
  FORBIDDEN: { status: 403, title: 'Not allowed' },
  NOT_FOUND: { status: 404, title: 'Not found' },
  CONFLICT: { status: 409, title: 'Already exists' },
  RATE_LIMITED: { status: 429, title: 'Too many requests for this device' },
  STREAM_UNAVAILABLE: { status: 503, title: 'Stream cannot accept readings now' },
  UNAVAILABLE: { status: 503, title: 'Service unavailable' },
  INTERNAL: { status: 500, title: 'Internal error' },
} as const;

export type ErrorCode = keyof typeof ERRORS;

export class VigilError extends Error {
  readonly status: number;
  constructor(
    readonly code: ErrorCode,
    detail?: string,
    readonly extra: Record<string, unknown> = {},
    /** Sent as response headers (e.g. Retry-After). */
    readonly headers: Record<string, string> = {},
  ) {
    super(detail ?? ERRORS[code].title);
    this.name = 'VigilError';
    this.status = ERRORS[code].status;
  }
}

export interface Problem {
  type: string;
  title: string;
  status: number;
  code: ErrorCode;
  detail: string;
  [extra: string]: unknown;
}

export function problem(code: ErrorCode, detail?: string, extra: Record<string, unknown> = {}): Problem {
  const entry = ERRORS[code];
  return {
    type: `https://vigil.dev/problems/${code.toLowerCase().replace(/_/g, '-')}`,
    title: entry.title,
    status: entry.status,
    code,
    detail: detail ?? entry.title,
    ...extra,
  };
}
