/**
 * Who calls the API, and what they may do (docs/api.md, Third-party API).
 *
 * A caller sends `Authorization: Bearer <key>`: the admin key (kind `admin`: every scope,
 * every resident) or an API key `vkey_…` an admin created (kind `apiKey`: its scopes, and
 * every resident or only a list of them). Either resolves to one `Principal`.
 *
 * A route opts in with its config: `{ scope: 'vitals:read' }` (or `'any'`: any valid key,
 * whatever its scopes), and `residentParam: 'id'` when a path parameter names the resident
 * the request is about. Such a route runs, in its onRequest hooks, before anything else:
 * 1. authentication → `req.principal` (401 `MISSING_TOKEN` / `INVALID_TOKEN`);
 * 2. the key's rate limit (@fastify/rate-limit, keyed by the key id; the admin key is not
 *    limited) → 429 `RATE_LIMITED` with `Retry-After`;
 * 3. the scope, then the resident of `residentParam` → 403 `FORBIDDEN`.
 * Handlers check the residents of what they load themselves (an alert's resident) with
 * `ApiAccess.checkResident`, and filter lists with `ApiAccess.residents`. Every 403 is
 * audited: a warn log line (key id, route, scope, resident) and `vigil_api_forbidden_total`.
 * Routes without `scope` keep their own auth (the admin-only routes call `AdminAuth.check`).
 *
 * Revocation: an API key lookup is trusted for at most `API_KEY_TTL_MS` (2 s), like the admin
 * key's hash (admin-auth.ts), so a key revoked by another process stops working within 2 s;
 * a revocation through this process's API evicts it at once. Unknown keys are remembered for
 * 2 s too, so a flood of bad keys costs one store lookup per key per 2 s.
 */
import rateLimit from '@fastify/rate-limit';
import type { FastifyInstance, FastifyRequest, onRequestHookHandler } from 'fastify';
import { VigilError } from '../core/errors.js';
import { hashSecret } from '../core/ids.js';
import type { Metrics } from '../core/metrics.js';
import type { ApiKey, Store } from '../store/types.js';
import { bearerToken } from '../ingest/http-ingest.js';
import type { AdminAuth } from './admin-auth.js';

export const SCOPES = ['readings:read', 'vitals:read', 'activity:read', 'sleep:read', 'alerts:read', 'alerts:ack', 'residents:read', 'admin'] as const;
export type Scope = (typeof SCOPES)[number];

export interface Principal {
  kind: 'admin' | 'apiKey';
  /** `admin` for the admin key, else the API key's id (`key_…`, not the secret). */
  id: string;
  scopes: readonly Scope[];
  /** The residents it may see; null: every resident. */
  residentIds: readonly string[] | null;
}

/** API keys are `vkey_<43 base64url chars>`; the prefix tells them from the admin key. */
export const API_KEY_PREFIX = 'vkey';
/** How long an API key lookup is trusted: the staleness bound of a revocation made by another process. */
export const API_KEY_TTL_MS = 2_000;
const MAX_ENTRIES = 100_000;

declare module 'fastify' {
  interface FastifyContextConfig {
    /** The scope a route needs (`any`: any valid key). Absent: the route does its own auth. */
    scope?: Scope | 'any';
    /** The path parameter naming the resident the request is about, checked against the key's residents. */
    residentParam?: string;
  }
  interface FastifyRequest {
    /** Set by a scoped route's first hook; null on other routes. */
    principal: Principal | null;
  }
}

const ADMIN: Principal = Object.freeze({ kind: 'admin', id: 'admin', scopes: Object.freeze([...SCOPES]), residentIds: null });

export const hasScope = (p: Principal, scope: Scope): boolean => p.scopes.includes('admin') || p.scopes.includes(scope);
export const mayAccessResident = (p: Principal, residentId: string): boolean => p.residentIds === null || p.residentIds.includes(residentId);

function principalOf(key: ApiKey): Principal {
  return {
    kind: 'apiKey',
    id: key.id,
    scopes: key.scopes.filter((s): s is Scope => (SCOPES as readonly string[]).includes(s)),
    residentIds: key.residentIds,
  };
}

/** Bearer key → Principal, with a 2 s cache of API key lookups (see the header). */
export class PrincipalAuth {
  private readonly cache = new Map<string, { key: ApiKey | null; until: number }>();
  /** Bumped by every invalidation: a lookup in flight meanwhile does not cache what it read. */
  private generation = 0;

  constructor(
    private readonly store: Pick<Store, 'findApiKeyByHash'>,
    private readonly admin: Pick<AdminAuth, 'check'>,
    private readonly now: () => number = Date.now,
  ) {}

  async authenticate(req: FastifyRequest): Promise<Principal> {
    const token = bearerToken(req);
    if (!token) throw new VigilError('MISSING_TOKEN', 'send Authorization: Bearer <API key or admin key>');
    return this.authenticateToken(token);
  }

  /** The same for a token that came some other way (e.g. a query parameter where headers cannot be sent). */
  async authenticateToken(token: string): Promise<Principal> {
    if (token.startsWith(`${API_KEY_PREFIX}_`)) {
      const key = await this.lookup(token);
      if (key && key.revokedAt !== null) throw new VigilError('INVALID_TOKEN', `API key ${key.id} was revoked`);
      if (key) return principalOf(key);
    }
    try {
      // AdminAuth reads the key from the Authorization header: handed the token the same way.
      await this.admin.check({ headers: { authorization: `Bearer ${token}` } } as FastifyRequest);
    } catch (err) {
      if (err instanceof VigilError && err.code === 'INVALID_TOKEN') throw new VigilError('INVALID_TOKEN', 'neither a known API key nor the admin key');
      throw err;
    }
    return ADMIN;
  }

  /** Forgets the cached lookups of a key (call after revoking it), so this process refuses it at once. */
  invalidate(keyId: string): void {
    this.generation++;
    for (const [token, entry] of this.cache) if (entry.key?.id === keyId) this.cache.delete(token);
  }

  private async lookup(token: string): Promise<ApiKey | null> {
    const now = this.now();
    const hit = this.cache.get(token);
    if (hit && hit.until > now) return hit.key;
    const generation = this.generation;
    let key: ApiKey | null;
    try {
      key = await this.store.findApiKeyByHash(hashSecret(token));
    } catch (err) {
      throw new VigilError('UNAVAILABLE', `cannot read API keys from the store: ${(err as Error).message}`);
    }
    if (generation === this.generation) {
      if (this.cache.size >= MAX_ENTRIES) this.cache.clear();
      this.cache.set(token, { key, until: now + API_KEY_TTL_MS });
    }
    return key;
  }
}

/** What route modules use: the principal of a request, resident checks, and the audit of refusals. */
export class ApiAccess {
  constructor(
    readonly auth: PrincipalAuth,
    private readonly metrics: Pick<Metrics, 'apiForbidden'>,
  ) {}

  /** The principal of a request on a scoped route. */
  principal(req: FastifyRequest): Principal {
    if (!req.principal) throw new VigilError('INTERNAL', `route ${req.routeOptions.url} has no scope config`);
    return req.principal;
  }

  has(req: FastifyRequest, scope: Scope): boolean {
    return hasScope(this.principal(req), scope);
  }

  /** The residents a listing is limited to; null: every resident. */
  residents(req: FastifyRequest): readonly string[] | null {
    return this.principal(req).residentIds;
  }

  /** Throws an audited 403 unless the caller may see the resident. */
  checkResident(req: FastifyRequest, residentId: string): void {
    if (!mayAccessResident(this.principal(req), residentId)) throw this.forbidden(req, 'resident', residentId);
  }

  /** Logs and counts a refusal; returns the error to throw. */
  forbidden(req: FastifyRequest, reason: 'scope' | 'resident', residentId?: string): VigilError {
    const p = req.principal;
    const scope = req.routeOptions.config.scope ?? 'none';
    req.log.warn(
      { audit: 'api.forbidden', principal: p?.kind, keyId: p?.id, route: `${req.method} ${req.routeOptions.url}`, scope, residentId, reason },
      'API request refused',
    );
    this.metrics.apiForbidden.inc({ scope, reason });
    return new VigilError(
      'FORBIDDEN',
      reason === 'scope' ? `this key lacks the scope ${scope}` : `this key may not see resident ${residentId}`,
      { scope, ...(residentId !== undefined && { residentId }) },
    );
  }
}

export interface ApiAuthOptions {
  /** Requests per minute per API key (`api.rateLimitPerMinute`). */
  rateLimitPerMinute: number;
}

/**
 * Installs the hooks of scoped routes (see the header). Call, and await, before registering
 * any route: the hooks are added as each route is declared.
 */
export async function registerApiAuth(app: FastifyInstance, access: ApiAccess, opts: ApiAuthOptions): Promise<void> {
  app.decorateRequest('principal', null);
  // `global: false`: only the routes given the limiter below are limited (not the ingest, which has its own).
  await app.register(rateLimit, { global: false });
  const limit = app.rateLimit({
    max: opts.rateLimitPerMinute,
    timeWindow: 60_000,
    keyGenerator: (req) => req.principal?.id ?? req.ip,
    allowList: (req) => req.principal?.kind === 'admin',
    errorResponseBuilder: (req, ctx) =>
      new VigilError('RATE_LIMITED', `API key ${req.principal?.id} is over ${ctx.max} requests per minute; retry in ${ctx.after}`, {}, {
        'retry-after': String(Math.max(1, Math.ceil(ctx.ttl / 1000))),
      }),
  }) as unknown as onRequestHookHandler;

  const authenticate = async (req: FastifyRequest) => {
    req.principal = await access.auth.authenticate(req);
  };
  const authorize = async (req: FastifyRequest) => {
    const { scope, residentParam } = req.routeOptions.config;
    const principal = req.principal!;
    if (scope && scope !== 'any' && !hasScope(principal, scope)) throw access.forbidden(req, 'scope');
    if (residentParam) {
      const residentId = (req.params as Record<string, string>)[residentParam];
      if (!mayAccessResident(principal, residentId)) throw access.forbidden(req, 'resident', residentId);
    }
  };
  const hooks = [authenticate, limit, authorize] as onRequestHookHandler[];

  app.addHook('onRoute', (route) => {
    if (!route.config?.scope) return;
    const own = route.onRequest === undefined ? [] : Array.isArray(route.onRequest) ? route.onRequest : [route.onRequest];
    if (own.includes(hooks[0])) return; // a HEAD route copied from its GET
    route.onRequest = [...hooks, ...own];
  });
}
