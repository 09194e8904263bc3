/**
 * Crash, api + workers: `vigil api` and two `vigil worker`s on NATS JetStream + PostgreSQL; each
 * of VIGIL_CRASH_KILLS (20) SIGKILLs picks one of the three at random and restarts it; the
 * checks are test/crash-harness.ts's.
 */
import { API_AND_WORKERS, crashSuite } from './crash-harness.js';

crashSuite(API_AND_WORKERS, Number(process.env.VIGIL_CRASH_KILLS ?? 20));
