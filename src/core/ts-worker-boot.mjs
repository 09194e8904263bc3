// Starts a worker thread from TypeScript source (tests and `tsx` runs); built code
// starts the compiled .js directly. See threads.ts.
import { workerData } from 'node:worker_threads';
import { register } from 'tsx/esm/api';

register();
await import(workerData.__vigilEntry);
