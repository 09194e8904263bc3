/**
 * Where the team's labelled recordings are (DESIGN §6: `../shared/datasets/`, next to the
 * repository, not in it). A clone elsewhere (CI clones into a temp dir) finds them through
 * `WEDA_FALL_DIR` or the team's shared folder on this machine. Tests that need them skip on a
 * laptop without them, but with VIGIL_REQUIRE_SERVICES=1 (CI) a missing dataset is a failure.
 */
import { existsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const SHARED_ON_THIS_MACHINE = '/work/shared/datasets/weda-fall';

/** The WEDA-FALL folder (holding `50Hz/` and `fall_timestamps.csv`), or null when absent. */
export function wedaFallDir(): string | null {
  const candidates = [process.env.WEDA_FALL_DIR, resolve(REPO, '../shared/datasets/weda-fall'), SHARED_ON_THIS_MACHINE];
  const found = candidates.find((dir): dir is string => !!dir && existsSync(resolve(dir, '50Hz')));
  if (found) return found;
  if (process.env.VIGIL_REQUIRE_SERVICES === '1') throw new Error(`WEDA-FALL not found (${candidates.filter(Boolean).join(', ')}); set WEDA_FALL_DIR`);
  console.warn('skipping: the WEDA-FALL dataset is not next to the repository; set WEDA_FALL_DIR');
  return null;
}
