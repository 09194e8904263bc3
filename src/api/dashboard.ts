/**
 * The dashboard (web/, built by Vite into dist/web by `npm run build`) served at `/`.
 *
 * It is static files only: the page logs in with a key the user types (kept in the browser's
 * session storage) and then talks to the same API as everybody else, so it needs nothing on
 * the server but these files. Hash routing (`/#/alerts`) keeps every page at `/`; the service
 * worker `/sw.js` (Web Push) must be served from the root to control the whole page.
 *
 * When the build is missing (a checkout run without `npm run build`), `/` says so in plain
 * words instead of a bare 404.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import fastifyStatic from '@fastify/static';
import type { FastifyInstance } from 'fastify';

/** dist/web beside src/ and dist/ (this module runs from either). */
export const DASHBOARD_DIR = fileURLToPath(new URL('../../dist/web/', import.meta.url));

/**
 * The page's scripts and styles come from this origin only; uPlot sets inline styles from
 * script, which `style-src 'unsafe-inline'` allows. No framing: the page acknowledges alerts.
 */
const CSP = [
  "default-src 'self'",
  "img-src 'self' data:",
  "style-src 'self' 'unsafe-inline'",
  "connect-src 'self'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
  "form-action 'self'",
].join('; ');

export async function registerDashboard(app: FastifyInstance, dir = DASHBOARD_DIR): Promise<void> {
  if (!existsSync(`${dir}index.html`)) {
    app.get('/', { schema: { hide: true } }, async (_req, reply) =>
      reply.code(503).type('text/plain; charset=utf-8').send('The dashboard is not built: run `npm run build` (npm install and npm start do it), then reload.\n'),
    );
    return;
  }
  await app.register(fastifyStatic, {
    root: dir,
    prefix: '/',
    index: ['index.html'],
    wildcard: false, // only the files the build produced, listed once at start
    schemaHide: true,
    setHeaders: (res, path) => {
      res.header('Content-Security-Policy', CSP);
      res.header('X-Content-Type-Options', 'nosniff');
      res.header('Referrer-Policy', 'no-referrer');
      // Vite fingerprints what is under assets/: cache it for good; the rest must be revalidated.
      res.header('Cache-Control', path.includes('/assets/') ? 'public, max-age=31536000, immutable' : 'no-cache');
      if (path.endsWith('sw.js')) res.header('Service-Worker-Allowed', '/');
    },
  });
}
