/**
 * `vigil simulate`: command-line options → runSimulate, stopped by Ctrl-C or --duration; or,
 * with `--from-csv FILE...`, a replay of recorded accelerometer files (replayCsvFiles).
 */
import { ConfigError } from '../core/config.js';
import { runSimulate, statusLine } from '../simulator/simulate-command.js';
import type { ScenarioName } from '../simulator/resident-model.js';

function number(values: Record<string, unknown>, name: string, fallback?: number): number | undefined {
  const raw = values[name];
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || n < 0) throw new ConfigError(`--${name} must be a non-negative number; got ${JSON.stringify(raw)}`);
  return n;
}

/** `positionals`: the files after the first of `--from-csv a.csv b.csv ...`. */
export async function runSimulateCli(values: Record<string, string | boolean | undefined>, positionals: string[] = []): Promise<void> {
  const adminKey = (values['admin-key'] as string | undefined) ?? process.env.VIGIL_ADMIN_KEY;
  if (!adminKey) throw new ConfigError('simulate needs --admin-key or VIGIL_ADMIN_KEY (printed by `vigil start` at first start)');
  const url = (values.url as string | undefined) ?? 'http://127.0.0.1:8080';
  if (typeof values['from-csv'] === 'string') {
    const { CsvFormatError, replayCsvFiles } = await import('../simulator/csv-replay.js');
    const files = [values['from-csv'], ...positionals];
    process.stdout.write(`simulate: replaying ${files.length} recording(s) on ${url}, one new band each\n`);
    const results = await replayCsvFiles({ url, adminKey, files, log: (line) => process.stdout.write(line + '\n') }).catch((err: Error) => {
      if (err instanceof CsvFormatError || (err as NodeJS.ErrnoException).code === 'ENOENT') throw new ConfigError(err.message);
      throw err;
    });
    const accepted = results.reduce((n, r) => n + r.accepted, 0);
    const readings = results.reduce((n, r) => n + r.readings, 0);
    process.stdout.write(`done: ${accepted} of ${readings} readings accepted from ${results.length} file(s)\n`);
    return;
  }
  if (positionals.length > 0) throw new ConfigError(`simulate: unexpected argument ${JSON.stringify(positionals[0])} (files go after --from-csv)`);
  const devices = number(values, 'devices', 50)!;
  const duration = number(values, 'duration');
  const controller = new AbortController();
  process.once('SIGINT', () => controller.abort());
  process.once('SIGTERM', () => controller.abort());
  const stats = await runSimulate({
    url,
    adminKey,
    devices,
    rate: number(values, 'rate'),
    batch: number(values, 'batch'),
    accHz: number(values, 'acc-hz'),
    durationMs: duration === undefined ? undefined : duration * 1000,
    scenario: values.scenario ? { name: values.scenario as ScenarioName, deviceIndex: number(values, 'device-index', 0)! } : undefined,
    log: (line) => process.stdout.write(line + '\n'),
    signal: controller.signal,
  }).catch((err: Error) => {
    if (err instanceof RangeError) throw new ConfigError(err.message);
    throw err;
  });
  process.stdout.write(`done: ${statusLine(stats)}\n`);
}
