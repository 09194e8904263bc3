/**
 * `vigil detect-falls FILE...`: runs the streaming fall detector over CSV recordings
 * (`t,x,y,z`, t in seconds, x/y/z in g) exactly as the pipeline feeds it (5-s bursts), and prints
 * one JSON line per file: `{"file":..., "falls":[{"t":seconds,"peakG":...,"confidence":...}]}`.
 * A file that cannot be read or parsed is reported with its name and line; the others are still
 * processed, and the command then fails (exit code 2).
 */
import { ConfigError } from '../core/config.js';
import { detectFallsInFile, FallCsvError } from '../detectors/fall/fall-csv.js';

export async function runDetectFalls(files: string[], write: (line: string) => void = (l) => process.stdout.write(l)): Promise<void> {
  if (files.length === 0) throw new ConfigError('usage: vigil detect-falls FILE... (CSV with header t,x,y,z: t in seconds, x/y/z in g)');
  const errors: string[] = [];
  for (const file of files) {
    try {
      write(JSON.stringify(await detectFallsInFile(file)) + '\n');
    } catch (err) {
      if (!(err instanceof FallCsvError)) throw err;
      errors.push(err.message);
    }
  }
  if (errors.length) throw new ConfigError(errors.join('\n'));
}
