// Every call to Vigil's API: the key as a Bearer token, errors as the API's problem+json.
import { savedKey } from './session';

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** Called when the key stops working (revoked, reset): the app goes back to the login page. */
let onUnauthorized: () => void = () => undefined;
export const whenUnauthorized = (fn: () => void) => (onUnauthorized = fn);

export async function api<T>(path: string, init: { method?: string; body?: unknown; key?: string } = {}): Promise<T> {
  const key = init.key ?? savedKey();
  const headers: Record<string, string> = { accept: 'application/json' };
  if (key) headers.authorization = `Bearer ${key}`;
  if (init.body !== undefined) headers['content-type'] = 'application/json';
  let res: Response;
  try {
    res = await fetch(path, { method: init.method ?? 'GET', headers, body: init.body === undefined ? undefined : JSON.stringify(init.body) });
  } catch {
    throw new ApiError(0, 'NETWORK', 'Vigil cannot be reached: check the connection.');
  }
  if (res.status === 204) return undefined as T;
  const body = await res.json().catch(() => null);
  if (!res.ok) {
    const p = (body ?? {}) as { code?: string; detail?: string; title?: string };
    if (res.status === 401 && !init.key) onUnauthorized();
    throw new ApiError(res.status, p.code ?? 'ERROR', p.detail ?? p.title ?? `HTTP ${res.status}`);
  }
  return body as T;
}

/** Query string from the defined values. */
export function query(params: Record<string, string | number | undefined>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined) q.set(k, String(v));
  const s = q.toString();
  return s ? `?${s}` : '';
}
