/**
 * The `vigil` command. Options of `start` are the config schema's flags (see `vigil config`);
 * the other commands have their own.
 */
import { parseArgs } from 'node:util';
import { ConfigError, configTable, flagName, loadConfig, SETTINGS } from '../core/config.js';
import { openStore } from '../store/registry.js';
import { AdminAuth } from '../api/admin-auth.js';
import { VigilError } from '../core/errors.js';
import { GROUP_NAMES, type GroupName } from '../processor/groups/registry.js';

const HELP = `Usage: vigil <command> [options]

Commands:
  start                       Run Vigil (ingest, API, stream, alerts/warehouse/archive groups) in one process.
                              Options: any config flag, e.g. --port 8080 --data-dir ./data --simulate 50
  api                         Only the HTTP API and ingest (no consumer groups): run any number behind a load balancer.
  worker --groups G,G         Only consumer groups (alerts, warehouse, archive), sharing partitions with other
                              workers through leases; serves /healthz and /metrics. Takes the config flags.
  simulate                    Drive a running Vigil over HTTP with a simulated fleet.
                              --url URL (default http://127.0.0.1:8080) --admin-key KEY (or VIGIL_ADMIN_KEY)
                              --devices N (default 50) --rate R (readings/s for the whole fleet, default N/5)
                              --batch B (readings per request, default 1) --duration S (seconds, default: until Ctrl-C)
                              --scenario S --device-index I (plays S on device I at start: SOS, FALL, TACHYCARDIA,
                              BRADYCARDIA, HYPOXIA, FALL_SILENT, NOT_WORN, SEDENTARY, LOW_BATTERY, FEVER,
                              HYPOTHERMIA, WANDERING, OUT_OF_RANGE) --acc-hz HZ (accelerometer rate, default 25)
                              --from-csv FILE... replays accelerometer recordings instead (header t,x,y,z in s and g,
                              or WEDA-FALL's accel_*_list in m/s²): one new band per file, 5-s readings ending now
  replay                      Rewind a consumer group and show progress until it has caught up.
                              --group alerts|warehouse|archive --from TRIM_HORIZON|LATEST|<ISO time>|<sequence>
                              --url URL --admin-key KEY
  residents erase ID          Erase a resident's personal data from the store, warehouse and archive (a running Vigil;
                              --url URL --admin-key KEY --by NAME), and print the record kept of it.
  admin-key reset             Replace the admin key (prints the new one once). Takes --data-dir.
  keys rotate                 New key for residents' and contacts' personal data, and re-encrypt them. Takes the config flags.
  sql "SELECT ..."            One read-only query against the DuckDB warehouse (<data-dir>/warehouse.duckdb, or
                              --file F), printed as a table; --format csv|json, --max-rows N (table, default 1000).
                              Vigil must be stopped: DuckDB lets no other process open a file Vigil has open.
  detect-falls FILE...        Run the fall detector over CSV recordings (header t,x,y,z; t in s, x/y/z in g); one JSON line per file.
  config                      Print every setting: key, env variable, flag, default, allowed values.
  help                        This text.
`;

const configOptions = Object.fromEntries(Object.keys(SETTINGS).map((k) => [flagName(k).slice(2), { type: 'string' as const }]));

function parse(argv: string[], extra: Record<string, { type: 'string' | 'boolean' }> = {}) {
  const { values, positionals } = parseArgs({ args: argv, options: { ...configOptions, ...extra, config: { type: 'string' } }, allowPositionals: true, strict: true });
  return { values: values as Record<string, string | boolean | undefined>, positionals };
}

/** Config flags only, in the `{ '--port': '9000' }` form loadConfig takes. */
function configFlags(values: Record<string, string | boolean | undefined>): Record<string, string> {
  const flags: Record<string, string> = {};
  for (const key of Object.keys(configOptions)) if (typeof values[key] === 'string') flags[`--${key}`] = values[key] as string;
  return flags;
}

async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'start': {
      const { values } = parse(rest);
      const { runStart } = await import('./start-command.js');
      await runStart(configFlags(values), values.config as string | undefined);
      return;
    }
    case 'api': {
      const { values } = parse(rest);
      const { runStart } = await import('./start-command.js');
      await runStart(configFlags(values), values.config as string | undefined, { api: true, groups: [] });
      return;
    }
    case 'worker': {
      const { values } = parse(rest, { groups: { type: 'string' } });
      const groups = ((values.groups as string | undefined) ?? GROUP_NAMES.join(',')).split(',').map((g) => g.trim());
      const unknown = groups.filter((g) => !GROUP_NAMES.includes(g as GroupName));
      if (unknown.length || groups.length === 0) throw new ConfigError(`--groups takes a comma-separated list of ${GROUP_NAMES.join(', ')}; got ${JSON.stringify(values.groups)}`);
      const { runStart } = await import('./start-command.js');
      await runStart(configFlags(values), values.config as string | undefined, { api: false, groups: [...new Set(groups)] as GroupName[] });
      return;
    }
    case 'simulate': {
      const { values, positionals } = parse(rest, {
        url: { type: 'string' },
        'admin-key': { type: 'string' },
        devices: { type: 'string' },
        rate: { type: 'string' },
        batch: { type: 'string' },
        duration: { type: 'string' },
        scenario: { type: 'string' },
        'device-index': { type: 'string' },
        'acc-hz': { type: 'string' },
        'from-csv': { type: 'string' },
      });
      const { runSimulateCli } = await import('./simulate-cli.js');
      await runSimulateCli(values, positionals);
      return;
    }
    case 'replay': {
      const { values } = parse(rest, { url: { type: 'string' }, 'admin-key': { type: 'string' }, group: { type: 'string' }, from: { type: 'string' } });
      if (!values.group || !values.from) throw new ConfigError('replay needs --group alerts|warehouse|archive and --from TRIM_HORIZON|LATEST|<ISO time>|<sequence>');
      const adminKey = (values['admin-key'] as string | undefined) ?? process.env.VIGIL_ADMIN_KEY;
      if (!adminKey) throw new ConfigError('replay needs --admin-key or VIGIL_ADMIN_KEY');
      const { runReplay } = await import('./replay-command.js');
      await runReplay({ url: (values.url as string | undefined) ?? 'http://127.0.0.1:8080', adminKey, group: values.group as string, from: values.from as string });
      return;
    }
    case 'admin-key': {
      const { values, positionals } = parse(rest);
      if (positionals[0] !== 'reset') throw new ConfigError('usage: vigil admin-key reset [--data-dir DIR]');
      const config = loadConfig({ flags: configFlags(values), file: values.config as string | undefined });
      const store = await openStore(config);
      const key = await AdminAuth.reset(store);
      await store.close();
      process.stdout.write(
        `new admin key: ${key}\n(takes effect within 2 s in every running Vigil on this store, no restart needed; a Vigil configured with adminKey / VIGIL_ADMIN_KEY sets that key back when it starts: change it there too)\n`,
      );
      return;
    }
    case 'keys': {
      const { values, positionals } = parse(rest);
      if (positionals[0] !== 'rotate') throw new ConfigError('usage: vigil keys rotate [--data-dir DIR] [config flags]');
      const config = loadConfig({ flags: configFlags(values), file: values.config as string | undefined });
      const { rotateKeys, formatRotation } = await import('../store/crypto/rotate.js');
      process.stdout.write(formatRotation(config, await rotateKeys(config)));
      return;
    }
    case 'residents': {
      const { values, positionals } = parse(rest, { url: { type: 'string' }, 'admin-key': { type: 'string' }, by: { type: 'string' } });
      if (positionals[0] !== 'erase' || !positionals[1]) throw new ConfigError('usage: vigil residents erase RESIDENT_ID [--by NAME] [--url URL] [--admin-key KEY]');
      const adminKey = (values['admin-key'] as string | undefined) ?? process.env.VIGIL_ADMIN_KEY;
      if (!adminKey) throw new ConfigError('residents erase needs --admin-key or VIGIL_ADMIN_KEY');
      const { runEraseResident, formatErasure } = await import('./residents-command.js');
      const record = await runEraseResident({
        url: (values.url as string | undefined) ?? 'http://127.0.0.1:8080',
        adminKey,
        residentId: positionals[1],
        by: (values.by as string | undefined) ?? process.env.USER ?? 'cli',
      });
      process.stdout.write(formatErasure(record));
      return;
    }
    case 'sql': {
      const { values, positionals } = parse(rest, { format: { type: 'string' }, file: { type: 'string' }, 'max-rows': { type: 'string' } });
      const format = (values.format as string | undefined) ?? 'table';
      if (format !== 'table' && format !== 'csv' && format !== 'json') throw new ConfigError(`--format takes table, csv or json; got ${JSON.stringify(format)}`);
      const maxRows = Number((values['max-rows'] as string | undefined) ?? 1000);
      if (!Number.isSafeInteger(maxRows) || maxRows < 1) throw new ConfigError(`--max-rows takes a positive integer; got ${JSON.stringify(values['max-rows'])}`);
      if (positionals.length !== 1) throw new ConfigError('usage: vigil sql "SELECT ..." [--format table|csv|json] [--max-rows N] [--data-dir DIR | --file FILE] (the query as one argument)');
      const { runSql, warehouseFile } = await import('./sql-command.js');
      let file = values.file as string | undefined;
      if (!file) {
        const config = loadConfig({ flags: configFlags(values), file: values.config as string | undefined });
        if (config['warehouse.backend'] !== 'duckdb') {
          throw new ConfigError('the warehouse is on PostgreSQL: query it with psql or a BI tool as a read-only role (docs/warehouse-postgres.md, "Read-only access for analysts")');
        }
        file = warehouseFile(config.dataDir);
      }
      // `vigil sql … | head` closes the pipe early: that ends the output, not an error.
      process.stdout.on('error', (err: NodeJS.ErrnoException) => process.exit(err.code === 'EPIPE' ? 0 : 1));
      const write = (text: string) => new Promise<void>((resolve) => (process.stdout.write(text) ? resolve() : process.stdout.once('drain', resolve)));
      await runSql({ sql: positionals[0], file, format, maxRows, write });
      return;
    }
    case 'detect-falls': {
      const { positionals } = parseArgs({ args: rest, options: {}, allowPositionals: true, strict: true });
      const { runDetectFalls } = await import('./detect-falls-command.js');
      await runDetectFalls(positionals);
      return;
    }
    case 'config':
      process.stdout.write(configTable() + '\n');
      return;
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(HELP);
      return;
    default:
      throw new ConfigError(`unknown command "${command}"\n\n${HELP}`);
  }
}

main(process.argv.slice(2)).catch((err: Error) => {
  const known = err instanceof ConfigError || err instanceof VigilError || (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS');
  process.stderr.write(`vigil: ${known ? err.message : (err.stack ?? err.message)}\n`);
  process.exit(known ? 2 : 1);
});
