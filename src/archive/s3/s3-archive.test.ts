import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { rename, writeFile } from 'node:fs/promises';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HeadObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client, UploadPartCommand } from '@aws-sdk/client-s3';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import S3rver from 's3rver';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { archiveConformance } from '../testing/conformance.js';
import { S3Archive, type S3ArchiveOptions } from './s3-archive.js';

const BUCKET = 'vigil-test';
const credentials = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };

/*
 * s3rver is a good S3 fake but deviates from S3 in ways that would fail the conformance suite for
 * reasons that have nothing to do with S3Archive; the test makes it behave like S3 on three points:
 *
 * 1. ListObjectsV2 continuation tokens are DES-encrypted, and Node 20's OpenSSL 3 has no single DES
 *    (legacy provider): every truncated listing fails with InternalError. Single DES is exactly
 *    3DES-EDE with K1 = K2 = K3, which OpenSSL 3 still has, so 'des' is mapped onto that.
 * 2. Its FilesystemStore overwrites an object file in place and answers the PUT before the write
 *    stream has flushed; S3 replaces objects atomically. putObject is wrapped to write a temp file,
 *    wait for it, and rename it over the object.
 * 3. The object's bytes, size and md5 live in separate files read at different moments, so a GET
 *    racing a PUT can still mix versions. Requests on one object path are serialized (each holds a
 *    per-path lock until its response is finished), which is what S3's atomic PUT looks like.
 */
const nodeCrypto = createRequire(import.meta.url)('node:crypto') as typeof import('node:crypto');
for (const name of ['createCipheriv', 'createDecipheriv'] as const) {
  const original = nodeCrypto[name] as (...args: unknown[]) => unknown;
  (nodeCrypto as unknown as Record<string, unknown>)[name] = (algorithm: string, key: Buffer, iv: Buffer, ...rest: unknown[]) =>
    algorithm === 'des' ? original('des-ede3-cbc', Buffer.concat([key, key, key]), iv, ...rest) : original(algorithm, key, iv, ...rest);
}

const FilesystemStore = createRequire(import.meta.url)('s3rver/lib/stores/filesystem.js') as {
  prototype: Record<string, unknown> & {
    getResourcePath(bucket: string, key: string, resource: string): string;
    putMetadata(bucket: string, key: string, metadata: unknown, md5: string): Promise<void>;
  };
};
FilesystemStore.prototype.putObject = async function putObject(
  this: typeof FilesystemStore.prototype,
  object: { bucket: string; key: string; content: Buffer | NodeJS.ReadableStream; metadata: unknown },
) {
  const objectPath = this.getResourcePath(object.bucket, object.key, 'object');
  const { mkdir } = await import('node:fs/promises');
  const { dirname } = await import('node:path');
  await mkdir(dirname(objectPath), { recursive: true });
  let content: Buffer;
  if (Buffer.isBuffer(object.content)) content = object.content;
  else {
    const chunks: Buffer[] = [];
    for await (const chunk of object.content as AsyncIterable<Buffer | string>) chunks.push(Buffer.from(chunk));
    content = Buffer.concat(chunks);
  }
  const md5 = nodeCrypto.createHash('md5').update(content).digest('hex');
  const tmp = `${objectPath}.${randomBytes(6).toString('hex')}.tmp`;
  await writeFile(tmp, content);
  await rename(tmp, objectPath);
  await this.putMetadata(object.bucket, object.key, object.metadata, md5);
  return { size: content.length, md5 };
};

type Handler = (req: IncomingMessage, res: ServerResponse) => void;
function serializePerPath(handler: Handler): Handler {
  const tails = new Map<string, Promise<void>>();
  return (req, res) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    const previous = tails.get(path) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((resolve) => (release = resolve));
    const tail = previous.then(() => mine);
    tails.set(path, tail);
    res.once('close', () => {
      release();
      if (tails.get(path) === tail) tails.delete(path);
    });
    // The body stays buffered (paused, back-pressured) until the handler reads it.
    void previous.then(() => handler(req, res));
  };
}

let server: S3rver;
let directory: string;
let endpoint: string;
let prefixes = 0;

beforeAll(async () => {
  directory = mkdtempSync(join(tmpdir(), 'vigil-s3rver-'));
  server = new S3rver({ port: 0, address: '127.0.0.1', silent: true, directory, configureBuckets: [{ name: BUCKET }] });
  const { port } = await server.run();
  const httpServer = (server as unknown as { httpServer: Server }).httpServer;
  const [listener] = httpServer.listeners('request') as Handler[];
  httpServer.removeAllListeners('request');
  httpServer.on('request', serializePerPath(listener));
  endpoint = `http://127.0.0.1:${port}`;
});

afterAll(async () => {
  await server?.close();
  if (directory) rmSync(directory, { recursive: true, force: true });
});

/** Each archive gets its own prefix in the shared bucket, so it starts empty. */
const openArchive = (o: Partial<S3ArchiveOptions> = {}) =>
  S3Archive.open({
    bucket: BUCKET,
    prefix: `vigil-${++prefixes}/`,
    region: 'us-east-1',
    endpoint,
    forcePathStyle: true,
    credentials,
    ...o,
  });

const rawClient = () =>
  new S3Client({ region: 'us-east-1', endpoint, forcePathStyle: true, credentials, requestHandler: new NodeHttpHandler() });

archiveConformance('s3 (s3rver)', () => openArchive());

describe('s3 archive', () => {
  it('stores each key under the configured prefix with the Hive layout and ndjson/gzip metadata', async () => {
    const archive = await openArchive({ prefix: 'layout/vigil' });
    const client = rawClient();
    try {
      await archive.put('dt=2024-05-01/hour=07/part-3-42.ndjson.gz', Buffer.from('body'));
      await archive.put('other/blob', Buffer.from('x'));
      const listed = await client.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: 'layout/' }));
      expect(listed.Contents?.map((o) => o.Key).sort()).toEqual([
        'layout/vigil/dt=2024-05-01/hour=07/part-3-42.ndjson.gz',
        'layout/vigil/other/blob',
      ]);
      const head = await client.send(
        new HeadObjectCommand({ Bucket: BUCKET, Key: 'layout/vigil/dt=2024-05-01/hour=07/part-3-42.ndjson.gz' }),
      );
      expect(head.ContentType).toBe('application/x-ndjson');
      expect(head.ContentEncoding).toBe('gzip');
      expect(await archive.list('dt=')).toEqual(['dt=2024-05-01/hour=07/part-3-42.ndjson.gz']);
    } finally {
      client.destroy();
      await archive.close();
    }
  });

  it('round-trips a ~12 MiB body through a multipart upload', async () => {
    const archive = await openArchive();
    const send = vi.spyOn(S3Client.prototype, 'send');
    try {
      const body = randomBytes(12 * 1024 * 1024 + 12345);
      await archive.put('dt=2024-05-01/hour=08/part-0-1.ndjson.gz', body);
      // 12 MiB in 5 MiB parts: 3 parts.
      expect(send.mock.calls.filter(([command]) => command instanceof UploadPartCommand)).toHaveLength(3);
      expect(send.mock.calls.filter(([command]) => command instanceof PutObjectCommand)).toHaveLength(0);
      send.mockRestore();
      const got = await archive.get('dt=2024-05-01/hour=08/part-0-1.ndjson.gz');
      expect(got?.length).toBe(body.length);
      expect(got?.equals(body)).toBe(true);
      // Overwriting a multipart object with a small one replaces it whole.
      await archive.put('dt=2024-05-01/hour=08/part-0-1.ndjson.gz', Buffer.from('small'));
      expect((await archive.get('dt=2024-05-01/hour=08/part-0-1.ndjson.gz'))?.toString()).toBe('small');
    } finally {
      send.mockRestore();
      await archive.close();
    }
  });

  it('follows continuation tokens across listing pages', async () => {
    const writer = await openArchive();
    const prefix = `vigil-${prefixes}/`;
    const keys: string[] = [];
    for (let h = 0; h < 3; h++) for (let p = 0; p < 4; p++) keys.push(`dt=2024-05-01/hour=0${h}/part-${p}-${h * 100 + p}.ndjson.gz`);
    keys.push('z');
    await Promise.all(keys.map((k) => writer.put(k, Buffer.from(k))));
    // The server honours MaxKeys, so small pages really paginate.
    const client = rawClient();
    const firstPage = await client.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: prefix, MaxKeys: 2 }));
    client.destroy();
    expect(firstPage.Contents).toHaveLength(2);
    expect(firstPage.IsTruncated).toBe(true);
    for (const listPageSize of [1, 2, 5]) {
      const reader = await openArchive({ prefix, listPageSize });
      try {
        expect(await reader.list('')).toEqual([...keys].sort());
        expect(await reader.list('dt=2024-05-01/hour=01/')).toEqual(keys.filter((k) => k.includes('hour=01/')).sort());
      } finally {
        await reader.close();
      }
    }
    await writer.close();
  });

  it('lists only valid keys and nothing outside its prefix', async () => {
    const archive = await openArchive();
    const prefix = `vigil-${prefixes}/`;
    const client = rawClient();
    try {
      await client.send(new PutObjectCommand({ Bucket: BUCKET, Key: `${prefix}folder/`, Body: '' }));
      await client.send(new PutObjectCommand({ Bucket: BUCKET, Key: `${prefix}a/.hidden`, Body: 'x' }));
      await client.send(new PutObjectCommand({ Bucket: BUCKET, Key: `${prefix.slice(0, -1)}x/outside`, Body: 'x' }));
      await archive.put('a/b', Buffer.from('kept'));
      expect(await archive.list('')).toEqual(['a/b']);
    } finally {
      client.destroy();
      await archive.close();
    }
  });

  it('uses the bucket root when the prefix is empty', async () => {
    const archive = await openArchive({ prefix: '' });
    try {
      await archive.put('root-object-test/k', Buffer.from('v'));
      expect(await archive.list('root-object-test/')).toEqual(['root-object-test/k']);
      expect((await archive.get('root-object-test/k'))?.toString()).toBe('v');
      await archive.delete('root-object-test/k');
      expect(await archive.list('root-object-test/')).toEqual([]);
    } finally {
      await archive.close();
    }
  });

  it('refuses to open a bucket that does not exist, without creating it', async () => {
    await expect(openArchive({ bucket: 'no-such-bucket' })).rejects.toThrow(/s3:\/\/no-such-bucket.*does not exist/);
    const client = rawClient();
    try {
      await expect(client.send(new ListObjectsV2Command({ Bucket: 'no-such-bucket' }))).rejects.toThrow();
    } finally {
      client.destroy();
    }
  });
});
