/**
 * Faults: the disk fills up under the embedded backends, and the NATS server the stream lives
 * on stops. In both, ingest answers 503 with Retry-After and writes nothing of the refused
 * requests; the groups back off; once the fault is gone, the phones' retries are accepted as
 * new readings and every accepted reading reaches the warehouse exactly once and the archive.
 *
 * The disk is a small tmpfs mounted for the test (root, as on the CI machine); the NATS server
 * is one of this test's own, on its own port and store directory, so stopping it disturbs no
 * other suite.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, mkdirSync, openSync, rmSync, symlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { Vigil } from '../src/app.js';
import { ADMIN_KEY, api, freePort, readArchive, reading, readingKey, registerResident, startTestVigil, tempDir, waitFor } from './helpers.js';

const NATS_SERVER = '/usr/sbin/nats-server';

/** Whether this process may mount a tmpfs (root); CI requires it, a laptop run skips. Probed once. */
let mountable: boolean | undefined;
function canMount(): boolean {
  return (mountable ??= probeMount());
}

function probeMount(): boolean {
  const probe = tempDir('vigil-mount-probe-');
  const ok = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', probe]).status === 0;
  if (ok) spawnSync('umount', [probe]);
  rmSync(probe, { recursive: true, force: true });
  if (!ok && process.env.VIGIL_REQUIRE_SERVICES === '1') throw new Error('cannot mount a tmpfs (run as root) and VIGIL_REQUIRE_SERVICES=1');
  if (!ok) console.warn('skipping the disk-full test: mounting a tmpfs needs root');
  return ok;
}

/** Writes until the file system refuses; returns the filler's path (delete it to free the disk). */
function fillDisk(dir: string): string {
  const path = join(dir, 'filler');
  const fd = openSync(path, 'w');
  try {
    for (const size of [1 << 20, 1 << 12, 1]) {
      const chunk = Buffer.alloc(size, 1);
      for (;;) {
        try {
          writeSync(fd, chunk);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code === 'ENOSPC') break;
          throw err;
        }
      }
    }
  } finally {
    closeSync(fd);
  }
  return path;
}

interface Band {
  deviceId: string;
  token: string;
  residentId: string;
}

/** Posts readings `from`…`to-1` of a band in one request. */
const post = (vigil: Vigil, band: Band, t0: number, from: number, to: number) =>
  api(vigil.url, 'POST', '/v1/readings', {
    token: band.token,
    body: { readings: Array.from({ length: to - from }, (_, i) => reading(band.deviceId, from + i, t0 + (from + i) * 5_000)) },
  });

/** Every accepted reading is in the warehouse once and in the archive; nothing else is. */
async function expectAllStored(vigil: Vigil, band: Band, t0: number, count: number): Promise<void> {
  const seqs = await waitFor('the warehouse has every accepted reading', async () => {
    const res = await api(vigil.url, 'GET', `/v1/residents/${band.residentId}/readings?from=${t0 - 1}&limit=10000`, { token: ADMIN_KEY });
    const got = (res.body.readings ?? []).map((r: { seq: number }) => r.seq) as number[];
    return got.length >= count ? got : null;
  }, 60_000, 250);
  expect(seqs).toEqual(Array.from({ length: count }, (_, i) => i));
  const archived = await waitFor('the archive has every accepted reading', async () => {
    const keys = (await readArchive(vigil.config))?.lines.map((l) => readingKey(l.reading)).filter((k) => k.startsWith(`${band.deviceId}:`)) ?? [];
    return keys.length >= count ? keys : null;
  }, 60_000, 250);
  expect([...archived].sort()).toEqual(Array.from({ length: count }, (_, i) => `${band.deviceId}:${i}`).sort());
}

describe.skipIf(!canMount())('fault: the disk is full (embedded backends)', () => {
  const mountPoint = tempDir('vigil-full-disk-');
  let vigil: Vigil | undefined;
  afterAll(async () => {
    await vigil?.stop().catch(() => undefined);
    spawnSync('umount', [mountPoint]);
    rmSync(mountPoint, { recursive: true, force: true });
  });

  it('refuses with 503 and Retry-After while full, writes nothing partial, and loses nothing once space is back', async () => {
    expect(spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=48m', 'tmpfs', mountPoint]).status).toBe(0);
    const dataDir = join(mountPoint, 'data');
    mkdirSync(dataDir);
    vigil = await startTestVigil({ 'archive.flushIntervalMs': 200 }, dataDir);
    const band = await registerResident(vigil.url, 'band-disk');
    const t0 = Date.now() - 3_600_000;
    expect((await post(vigil, band, t0, 0, 20)).status).toBe(202);
    await expectAllStored(vigil, band, t0, 20);

    const filler = fillDisk(mountPoint);
    // Pages SQLite already holds may take a few writes; then every append is refused.
    let refused: Awaited<ReturnType<typeof post>> | undefined;
    let accepted = 20;
    for (let attempt = 0; attempt < 50 && !refused; attempt++) {
      const res = await post(vigil, band, t0, accepted, accepted + 20);
      if (res.status === 202) accepted += 20;
      else refused = res;
    }
    expect(refused?.status).toBe(503);
    expect(refused!.headers.get('content-type')).toMatch(/problem\+json/);
    expect(refused!.body.code).toBe('STREAM_UNAVAILABLE');
    expect(Number(refused!.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    // The process is alive and says so while the groups cannot write.
    expect((await fetch(`${vigil.url}/healthz`)).status).toBeLessThan(600);

    rmSync(filler);
    // The phone retries the refused request: accepted as new readings, none a duplicate.
    const retry = await waitFor('the retry is accepted', async () => {
      const res = await post(vigil!, band, t0, accepted, accepted + 20);
      return res.status === 202 ? res : null;
    }, 30_000, 500);
    expect(retry.body).toEqual({ accepted: 20, duplicates: 0, rejected: [] });
    accepted += 20;
    await expectAllStored(vigil, band, t0, accepted);
    await vigil.stop();
    vigil = undefined;
  }, 180_000);

  it('keeps accepting when only the sinks are full: the groups back off, then catch up without losing or doubling anything', async () => {
    // The stream on the machine's disk (SQLite follows the links, its WAL goes beside the
    // target); the store, warehouse and archive on the small one that fills up.
    const dataDir = join(mountPoint, 'sinks-full');
    mkdirSync(dataDir);
    const streamDir = tempDir('vigil-stream-elsewhere-');
    symlinkSync(join(streamDir, 'stream.db'), join(dataDir, 'stream.db'));
    vigil = await startTestVigil({ 'archive.flushIntervalMs': 500 }, dataDir);
    const band = await registerResident(vigil.url, 'band-sinks');
    const t0 = Date.now() - 3_600_000;
    expect((await post(vigil, band, t0, 0, 20)).status).toBe(202);
    await expectAllStored(vigil, band, t0, 20);

    const filler = fillDisk(mountPoint);
    for (let from = 20; from < 60; from += 20) expect((await post(vigil, band, t0, from, from + 20)).status).toBe(202);
    // The archive cannot store a new object: it keeps its checkpoint, and so its lag, while full.
    const archiveLag = async () =>
      ((await api(vigil!.url, 'GET', '/v1/admin/groups', { token: ADMIN_KEY })).body.groups as { name: string; lag: number }[]).find((g) => g.name === 'archive')!.lag;
    await new Promise((r) => setTimeout(r, 3_000));
    expect(await archiveLag()).toBeGreaterThan(0);

    rmSync(filler);
    await expectAllStored(vigil, band, t0, 60);
    await waitFor('the archive caught up', async () => (await archiveLag()) === 0, 30_000, 250);
    rmSync(streamDir, { recursive: true, force: true });
  }, 180_000);
});

describe.skipIf(!(() => {
  const present = spawnSync(NATS_SERVER, ['--version']).status === 0;
  if (!present && process.env.VIGIL_REQUIRE_SERVICES === '1') throw new Error(`${NATS_SERVER} is missing and VIGIL_REQUIRE_SERVICES=1`);
  return present;
})())('fault: the NATS server stops (stream.backend nats)', () => {
  const storeDir = tempDir('vigil-nats-fault-');
  let nats: ChildProcess | undefined;
  let vigil: Vigil | undefined;
  let port = 0;

  async function startNats(): Promise<void> {
    nats = spawn(NATS_SERVER, ['-a', '127.0.0.1', '-p', String(port), '-js', '-sd', storeDir], { stdio: 'ignore' });
    await waitFor('nats up', async () => {
      const res = await fetch(`http://127.0.0.1:${port}`).catch((err: Error & { cause?: { code?: string } }) => err);
      // NATS answers a protocol INFO line, not HTTP: any answer other than "refused" means it listens.
      return !(res instanceof Error && res.cause?.code === 'ECONNREFUSED');
    }, 15_000, 100);
  }

  afterAll(async () => {
    await vigil?.stop().catch(() => undefined);
    nats?.kill('SIGKILL');
    rmSync(storeDir, { recursive: true, force: true });
  });

  it('refuses with 503 and Retry-After while the server is down, and loses nothing once it is back', async () => {
    port = await freePort();
    await startNats();
    vigil = await startTestVigil({ 'stream.backend': 'nats', 'nats.servers': `nats://127.0.0.1:${port}`, 'nats.stream': 'VIGIL_FAULT' });
    const band = await registerResident(vigil.url, 'band-nats');
    const t0 = Date.now() - 3_600_000;
    expect((await post(vigil, band, t0, 0, 20)).status).toBe(202);
    await expectAllStored(vigil, band, t0, 20);

    const stopped = new Promise((r) => nats!.once('exit', r));
    nats!.kill('SIGKILL');
    await stopped;
    const refused = await post(vigil, band, t0, 20, 40);
    expect(refused.status).toBe(503);
    expect(refused.body.code).toBe('STREAM_UNAVAILABLE');
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);

    await startNats();
    const retry = await waitFor('the retry is accepted', async () => {
      const res = await post(vigil!, band, t0, 20, 40);
      return res.status === 202 ? res : null;
    }, 60_000, 500);
    expect(retry.body).toEqual({ accepted: 20, duplicates: 0, rejected: [] });
    expect((await post(vigil, band, t0, 40, 60)).status).toBe(202);
    await expectAllStored(vigil, band, t0, 60);
  }, 180_000);
});

/** A PostgreSQL cluster of this test's own (initdb in a temp dir, its own port), so stopping it disturbs nobody. */
const PG_BIN = (() => {
  const versions = spawnSync('ls', ['/usr/lib/postgresql']).stdout?.toString().trim().split('\n').filter(Boolean) ?? [];
  return versions.length ? `/usr/lib/postgresql/${versions.sort().pop()}/bin` : null;
})();

describe.skipIf(!(() => {
  const ok = PG_BIN !== null && canMount(); // root: initdb runs as the postgres user
  if (!ok && process.env.VIGIL_REQUIRE_SERVICES === '1') throw new Error('PostgreSQL binaries or root are missing and VIGIL_REQUIRE_SERVICES=1');
  return ok;
})())('fault: PostgreSQL stops (store and warehouse on postgres)', () => {
  const dir = tempDir('vigil-pg-fault-');
  const dataDir = join(dir, 'cluster');
  let port = 0;
  let vigil: Vigil | undefined;
  const asPostgres = (cmd: string, ...args: string[]) => spawnSync('runuser', ['-u', 'postgres', '--', `${PG_BIN}/${cmd}`, ...args], { encoding: 'utf8' });
  const pgCtl = (...args: string[]) => {
    const res = asPostgres('pg_ctl', '-D', dataDir, ...args);
    if (res.status !== 0) throw new Error(`pg_ctl ${args.join(' ')}: ${res.stderr}`);
  };
  const startPg = () => pgCtl('-o', `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1`, '-l', join(dir, 'log'), '-w', 'start');

  afterAll(async () => {
    await vigil?.stop().catch(() => undefined);
    asPostgres('pg_ctl', '-D', dataDir, '-m', 'immediate', 'stop');
    rmSync(dir, { recursive: true, force: true });
  });

  it('refuses with 503 and Retry-After while the database is down, and loses nothing once it is back', async () => {
    spawnSync('chown', ['postgres', dir]);
    const init = asPostgres('initdb', '-D', dataDir, '-A', 'trust', '-U', 'postgres');
    expect(init.status, init.stderr).toBe(0);
    port = await freePort();
    startPg();
    const url = `postgres://postgres@127.0.0.1:${port}/postgres`;
    vigil = await startTestVigil({ 'store.backend': 'postgres', 'store.postgresUrl': url, 'warehouse.backend': 'postgres', 'warehouse.postgresUrl': url });
    const band = await registerResident(vigil.url, 'band-pg');
    const t0 = Date.now() - 3_600_000;
    expect((await post(vigil, band, t0, 0, 20)).status).toBe(202);
    await expectAllStored(vigil, band, t0, 20);

    pgCtl('-m', 'immediate', 'stop');
    // Past the 2 s a device token lookup is trusted, ingest must ask the store again.
    await new Promise((r) => setTimeout(r, 2_500));
    const refused = await post(vigil, band, t0, 20, 40);
    expect(refused.status).toBe(503);
    expect(refused.headers.get('content-type')).toMatch(/problem\+json/);
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);

    startPg();
    const retry = await waitFor('the retry is accepted', async () => {
      const res = await post(vigil!, band, t0, 20, 40);
      return res.status === 202 ? res : null;
    }, 60_000, 500);
    expect(retry.body).toEqual({ accepted: 20, duplicates: 0, rejected: [] });
    await expectAllStored(vigil, band, t0, 40);
  }, 180_000);
});
