/**
 * The crash harness at soak length (`npm run test:soak`): 200 SIGKILLs (VIGIL_SOAK_CRASH_KILLS)
 * in each topology of test/crash.test.ts and test/crash-workers.test.ts, which run 20 each in
 * `npm test`. Same processes, same checks (test/crash-harness.ts).
 */
import { ALL_IN_ONE, API_AND_WORKERS, crashSuite } from '../crash-harness.js';

const KILLS = Number(process.env.VIGIL_SOAK_CRASH_KILLS ?? 200);

crashSuite(ALL_IN_ONE, KILLS);
crashSuite(API_AND_WORKERS, KILLS);
