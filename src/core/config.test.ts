import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, configTable, envName, flagName, loadConfig } from './config.js';

// No file named, and none in the working directory: defaults, env and flags only.
const noFile = undefined;

describe('config', () => {
  it('has defaults', () => {
    const c = loadConfig({ env: {}, file: undefined, flags: {} });
    expect(c.port).toBe(8080);
    expect(c['stream.partitions']).toBe(8);
    expect(c['ingest.rateLimitPerSecond']).toBe(100);
    expect(c['ingest.rateLimitBurst']).toBe(200);
    expect(c['stream.retentionHours']).toBe(168);
  });

  it('names env variables and flags from the key', () => {
    expect(envName('stream.partitions')).toBe('VIGIL_STREAM_PARTITIONS');
    expect(envName('dataDir')).toBe('VIGIL_DATA_DIR');
    expect(flagName('ingest.maxBodyBytes')).toBe('--ingest-max-body-bytes');
  });

  it('layers file < env < flags, coercing strings', () => {
    const dir = mkdtempSync(join(tmpdir(), 'vigil-config-'));
    const file = join(dir, 'vigil.config.json');
    writeFileSync(file, JSON.stringify({ port: 9000, stream: { partitions: 4 }, dataDir: '/from/file' }));
    const c = loadConfig({ file, env: { VIGIL_PORT: '9100', VIGIL_STREAM_PARTITIONS: '16' }, flags: { '--port': '9200' } });
    expect(c.port).toBe(9200);
    expect(c['stream.partitions']).toBe(16);
    expect(c.dataDir).toBe('/from/file');
  });

  it('stops on a bad value with the key, its source and what is allowed', () => {
    expect(() => loadConfig({ env: { VIGIL_STREAM_PARTITIONS: 'many' }, file: noFile })).toThrow(
      'config key stream.partitions (env VIGIL_STREAM_PARTITIONS): must be an integer from 1 to 1024; got "many"',
    );
    expect(() => loadConfig({ env: {}, file: noFile, flags: { '--port': '70000' } })).toThrow(/config key port \(flag --port\): must be an integer from 0 to 65535/);
    expect(() => loadConfig({ env: { VIGIL_LOG_LEVEL: 'loud' }, file: noFile })).toThrow(/must be one of "fatal", "error"/);
  });

  it('rejects unknown keys and flags, suggesting the right one', () => {
    const dir = mkdtempSync(join(tmpdir(), 'vigil-config-'));
    const file = join(dir, 'c.json');
    writeFileSync(file, JSON.stringify({ stream: { partitons: 4 } }));
    expect(() => loadConfig({ file, env: {} })).toThrow(ConfigError);
    expect(() => loadConfig({ env: {}, file: noFile, flags: { '--dataDir': 'x' } })).toThrow('unknown option --dataDir (did you mean --data-dir?)');
    writeFileSync(file, '{ not json');
    expect(() => loadConfig({ file, env: {} })).toThrow(/not valid JSON/);
  });

  it('documents every setting', () => {
    const table = configTable();
    expect(table).toContain('| `stream.partitions` | `VIGIL_STREAM_PARTITIONS` | `--stream-partitions` | 8 |');
    expect(table).toContain('(generated)');
  });
});

describe('docs/configuration.md', () => {
  it('lists exactly the schema', async () => {
    const { readFileSync } = await import('node:fs');
    const doc = readFileSync(new URL('../../docs/configuration.md', import.meta.url), 'utf8');
    expect(doc).toContain(configTable());
  });
});
