/**
 * Diagnostic: Vigil's compiled HTTP ingest and stream writer with no consumer group, to
 * separate what ingest costs from what the groups sharing its cores cost. Takes the same
 * flags as `vigil start`. Not a way to run Vigil: nothing reads the stream.
 */
// The compiled code (what `vigil start` runs), typed from its source.
const { loadConfig } = (await import(new URL('../../dist/core/config.js', import.meta.url).href)) as typeof import('../../src/core/config.js');
const { startVigil } = (await import(new URL('../../dist/app.js', import.meta.url).href)) as typeof import('../../src/app.js');

// `--flag value` pairs, in the form loadConfig takes (it rejects unknown flags).
const argv = process.argv.slice(2);
const flags: Record<string, string> = {};
for (let i = 0; i + 1 < argv.length; i += 2) flags[argv[i]] = argv[i + 1];
const config = loadConfig({ flags });
const vigil = await startVigil({ config, groups: [] });
process.on('SIGTERM', () => void vigil.stop().then(() => process.exit(0)));
