/**
 * Integration suites need the real services of the development machine (DESIGN §6). A suite
 * whose service is down is skipped on a laptop, but with VIGIL_REQUIRE_SERVICES=1 (CI) a
 * missing service is a failure, never a silent skip.
 */
import { existsSync } from 'node:fs';
import { connect } from 'node:net';

export const SERVICES = {
  postgres: { host: '127.0.0.1', port: 5432 },
  nats: { host: '127.0.0.1', port: 4222 },
  mosquitto: { host: '127.0.0.1', port: 1883 },
} as const;

export type ServiceName = keyof typeof SERVICES;

function reachable(host: string, port: number, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

/** True when the service answers; false (skip) when it does not, unless CI requires it. */
export async function serviceUp(name: ServiceName): Promise<boolean> {
  const { host, port } = SERVICES[name];
  if (await reachable(host, port)) return true;
  if (process.env.VIGIL_REQUIRE_SERVICES === '1') {
    throw new Error(`${name} is not reachable on ${host}:${port} and VIGIL_REQUIRE_SERVICES=1: start it (see .ci/run)`);
  }
  console.warn(`skipping: ${name} is not reachable on ${host}:${port}`);
  return false;
}

/** Debian's Chromium, driven by playwright-core in the browser tests (never a downloaded one). */
export const CHROMIUM_PATH = '/usr/bin/chromium';
export const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'];

/** True when Chromium is installed; false (skip) when not, unless CI requires it (`.ci/run` installs it). */
export function chromiumInstalled(): boolean {
  if (existsSync(CHROMIUM_PATH)) return true;
  if (process.env.VIGIL_REQUIRE_SERVICES === '1') throw new Error(`${CHROMIUM_PATH} is missing and VIGIL_REQUIRE_SERVICES=1: apt-get install chromium (see .ci/run)`);
  console.warn(`skipping: ${CHROMIUM_PATH} is not installed (apt-get install chromium)`);
  return false;
}
