/** Starts the bare baseline server (bare-server-child.ts) in its own process. */
import { fileURLToPath } from 'node:url';
import { freePort, spawnNode, waitForHttp, type Child } from './children.js';

export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));

export async function startBareServer(): Promise<{ url: string; child: Child }> {
  const port = await freePort();
  const child = spawnNode('bare server', ['--import', 'tsx', fileURLToPath(new URL('./bare-server-child.ts', import.meta.url)), String(port)], {
    cwd: REPO_ROOT,
  });
  const url = `http://127.0.0.1:${port}`;
  await waitForHttp(url, child, 20_000);
  return { url, child };
}
