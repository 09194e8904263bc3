/**
 * The raw archive on S3 or any S3-compatible object store (MinIO, Ceph RGW, s3rver…): each key is
 * one object, stored under the configured key prefix of one bucket, so the archive keeps the same
 * Hive-style layout (`dt=YYYY-MM-DD/hour=HH/part-<partition>-<firstSeq>.ndjson.gz`) as the local
 * directory and can be scanned in place by Athena, DuckDB, Spark…
 *
 * How the `Archive` guarantees (../types.ts) map onto S3:
 * - `put` is atomic by S3's nature: a PUT replaces the object whole and readers see the old object
 *   or the new one. Bodies over `multipartThreshold` (8 MiB) go up as a multipart upload, which is
 *   just as atomic — the object appears only when CompleteMultipartUpload succeeds. A failed upload
 *   is aborted; a crash mid-upload can leave invisible, billed parts: give the bucket a lifecycle
 *   rule `AbortIncompleteMultipartUpload` (e.g. after 1 day). S3 is strongly read-after-write
 *   consistent (since 2020), so a resolved `put` is visible to every later `get` and `list`.
 * - `get` of a missing key resolves to null (S3 `NoSuchKey`); a missing bucket or denied access
 *   rejects instead of looking like an empty archive.
 * - `list` uses ListObjectsV2, following continuation tokens, and strips the configured prefix.
 *   Objects under the prefix whose remaining name is not a valid archive key (folder markers made by
 *   consoles, `foo/`, stray uploads) are skipped, so every listed key can be passed back to `get`.
 * - `delete` of a missing key succeeds (S3 DeleteObject does).
 * - `eraseResident` rewrites objects through `put` and removes emptied ones through `delete`. On
 *   a bucket with versioning these leave the previous versions behind as noncurrent: erasure
 *   needs a lifecycle rule expiring noncurrent versions (`NoncurrentVersionExpiration`) too.
 * - The "a key is not also a directory of another key" rule is not enforced here (S3 has no
 *   directories and checking would cost a LIST per PUT and still race); callers must keep it, as
 *   the local backend does reject such keys.
 */
import { createHash } from 'node:crypto';
import {
  DeleteObjectCommand,
  GetObjectCommand,
  HeadBucketCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  type S3ClientConfig,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { eraseResidentLines } from '../erase.js';
import { assertValidKey, assertValidPrefix, type Archive, type ArchiveErasure, type EraseProgress } from '../types.js';

const MiB = 1024 * 1024;
/** S3's minimum part size (except the last part). */
const MIN_PART_SIZE = 5 * MiB;

export interface S3ArchiveOptions {
  bucket: string;
  /** Key prefix inside the bucket, e.g. `vigil/`; '' for the bucket root. A missing trailing '/' is added. */
  prefix?: string;
  /** AWS region; S3-compatible servers usually accept any (default `us-east-1`). */
  region?: string;
  /** Endpoint URL of an S3-compatible server; empty/undefined for AWS S3. */
  endpoint?: string;
  /** Path-style addressing (`http://host/bucket/key`), needed by most S3-compatible servers. */
  forcePathStyle?: boolean;
  /** Explicit credentials; by default the SDK's provider chain (env, profile, instance role…). */
  credentials?: S3ClientConfig['credentials'];
  /** Bodies larger than this many bytes are uploaded as multipart (default 8 MiB). */
  multipartThreshold?: number;
  /** Multipart part size in bytes (default and minimum 5 MiB). */
  partSize?: number;
  /** ListObjectsV2 `MaxKeys` per page (default: the server's, 1000 on S3). For tests of pagination. */
  listPageSize?: number;
}

export class S3Archive implements Archive {
  private closed = false;

  private constructor(
    private readonly client: S3Client,
    private readonly bucket: string,
    /** '' or ends with '/'. */
    private readonly prefix: string,
    private readonly multipartThreshold: number,
    private readonly partSize: number,
    private readonly listPageSize: number | undefined,
  ) {}

  /**
   * Connects and checks (HeadBucket) that the bucket exists and is reachable with these
   * credentials, failing with a clear message otherwise.
   *
   * The bucket is deliberately never created here: its region, owner, encryption, versioning,
   * retention, public-access block and lifecycle rules (e.g. aborting incomplete multipart uploads)
   * are the operator's decisions and decide how durable and private the archive is; a typo in
   * `s3.bucket` would otherwise silently scatter the archive into a fresh, unconfigured bucket; and
   * the service would need `s3:CreateBucket`, far more than the object-level permissions it needs.
   */
  static async open(o: S3ArchiveOptions): Promise<S3Archive> {
    if (!o.bucket) throw new Error('S3 archive: s3.bucket is empty');
    const prefix = normalizePrefix(o.prefix ?? '');
    const endpoint = o.endpoint || undefined;
    const client = new S3Client({
      region: o.region || 'us-east-1',
      endpoint,
      forcePathStyle: o.forcePathStyle ?? false,
      credentials: o.credentials,
      requestHandler: new NodeHttpHandler({ connectionTimeout: 10_000 }),
      // Many S3-compatible servers reject the SDK's default CRC trailers (aws-chunked bodies);
      // there every PutObject carries a Content-MD5 instead (see put).
      ...(endpoint ? { requestChecksumCalculation: 'WHEN_REQUIRED', responseChecksumValidation: 'WHEN_REQUIRED' } : {}),
    });
    const where = `s3://${o.bucket}${endpoint ? ` at ${endpoint}` : ` in ${o.region || 'us-east-1'}`}`;
    try {
      await client.send(new HeadBucketCommand({ Bucket: o.bucket }));
    } catch (err) {
      client.destroy();
      const status = httpStatus(err);
      const detail =
        status === 404 || errorName(err) === 'NotFound' || errorName(err) === 'NoSuchBucket'
          ? 'bucket does not exist; create it first (Vigil never creates buckets: region, encryption, ' +
            'versioning and lifecycle rules are yours to choose)'
          : status === 403
            ? 'access denied; check the credentials and that they may s3:ListBucket, s3:GetObject, s3:PutObject and s3:DeleteObject'
            : `cannot reach the bucket: ${err instanceof Error ? err.message : String(err)}`;
      throw new Error(`S3 archive ${where}: ${detail}`, { cause: err });
    }
    const partSize = Math.max(MIN_PART_SIZE, o.partSize ?? MIN_PART_SIZE);
    const multipartThreshold = Math.max(partSize, o.multipartThreshold ?? 8 * MiB);
    return new S3Archive(client, o.bucket, prefix, multipartThreshold, partSize, o.listPageSize);
  }

  async put(key: string, body: Buffer): Promise<void> {
    const params = {
      Bucket: this.bucket,
      Key: this.objectKey(key),
      Body: body,
      ...(key.endsWith('.ndjson.gz')
        ? { ContentType: 'application/x-ndjson', ContentEncoding: 'gzip' }
        : { ContentType: 'application/octet-stream' }),
    };
    if (body.length <= this.multipartThreshold) {
      const ContentMD5 = createHash('md5').update(body).digest('base64');
      await this.client.send(new PutObjectCommand({ ...params, ContentMD5 }));
      return;
    }
    // The object becomes visible only on CompleteMultipartUpload; on error lib-storage aborts it.
    const upload = new Upload({ client: this.client, params, partSize: this.partSize, queueSize: 4, leavePartsOnError: false });
    await upload.done();
  }

  async get(key: string): Promise<Buffer | null> {
    const Key = this.objectKey(key);
    try {
      const out = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key }));
      if (!out.Body) return Buffer.alloc(0);
      return Buffer.from(await out.Body.transformToByteArray());
    } catch (err) {
      if (errorName(err) === 'NoSuchKey') return null;
      throw err;
    }
  }

  async list(prefix: string): Promise<string[]> {
    this.assertOpen();
    assertValidPrefix(prefix);
    const keys: string[] = [];
    let ContinuationToken: string | undefined;
    do {
      const page = await this.client.send(
        new ListObjectsV2Command({
          Bucket: this.bucket,
          Prefix: this.prefix + prefix,
          ContinuationToken,
          MaxKeys: this.listPageSize,
        }),
      );
      for (const object of page.Contents ?? []) {
        if (object.Key === undefined || !object.Key.startsWith(this.prefix)) continue;
        const key = object.Key.slice(this.prefix.length);
        if (isValidKey(key)) keys.push(key);
      }
      ContinuationToken = page.IsTruncated ? page.NextContinuationToken : undefined;
      if (page.IsTruncated && !ContinuationToken) throw new Error('S3 archive: truncated listing without a continuation token');
    } while (ContinuationToken);
    // S3 already lists in UTF-8 byte order (keys are ASCII, so JS order is byte order); some
    // S3-compatible servers do not, hence the sort.
    return keys.sort();
  }

  async delete(key: string): Promise<void> {
    const Key = this.objectKey(key);
    await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key }));
  }

  /** Rewrites through `put` (one PUT or multipart upload, atomic as above) and `delete`: see ../erase.ts. */
  eraseResident(residentId: string, onProgress?: EraseProgress): Promise<ArchiveErasure> {
    return eraseResidentLines(this, residentId, onProgress);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.client.destroy();
  }

  private objectKey(key: string): string {
    this.assertOpen();
    assertValidKey(key);
    return this.prefix + key;
  }

  private assertOpen(): void {
    if (this.closed) throw new Error('archive is closed');
  }
}

/** '' stays ''; otherwise leading '/' dropped, trailing '/' added, and the rest must be a valid key. */
function normalizePrefix(raw: string): string {
  const trimmed = raw.replace(/^\/+/, '').replace(/\/+$/, '');
  if (trimmed === '') return '';
  assertValidKey(trimmed);
  return `${trimmed}/`;
}

function isValidKey(key: string): boolean {
  try {
    assertValidKey(key);
    return true;
  } catch {
    return false;
  }
}

function errorName(err: unknown): string | undefined {
  return err instanceof Error ? err.name : undefined;
}

function httpStatus(err: unknown): number | undefined {
  return (err as { $metadata?: { httpStatusCode?: number } } | null)?.$metadata?.httpStatusCode;
}
