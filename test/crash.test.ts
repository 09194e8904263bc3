/**
 * Crash, all-in-one: `vigil start` on the embedded backends is SIGKILLed VIGIL_CRASH_KILLS (20)
 * times under load and restarted; the checks are test/crash-harness.ts's.
 */
import { ALL_IN_ONE, crashSuite } from './crash-harness.js';

crashSuite(ALL_IN_ONE, Number(process.env.VIGIL_CRASH_KILLS ?? 20));
