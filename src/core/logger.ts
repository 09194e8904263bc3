import { pino, type Logger } from 'pino';

/** pino to stdout; worker threads log through the same stream with their `name`. */
export function createLogger(level: string, name?: string): Logger {
  return pino({ level, name, base: { pid: process.pid } });
}
