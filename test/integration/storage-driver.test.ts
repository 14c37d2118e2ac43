import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { gunzipSync } from 'node:zlib';
import {
  PrefixedFileStorage,
  type ByteRange,
  type FileStorage,
  type StoredFile,
} from '../../src/platform/storage/file-storage';
import { LocalFileStorage } from '../../src/platform/storage/local-file.storage';
import { createTenant, insertAccount, type TestTenant } from '../helpers/fixtures';
import { startTestApp, type TestApp } from '../helpers/test-app';

/**
 * A store with no directories of its own (as an S3 driver is), recording each key written: what reaches it shows that
 * modules keep their files in the deployment's store, not in one of their own making.
 */
class RecordingStorage implements FileStorage {
  readonly driver = 's3' as const;
  readonly written: string[] = [];
  constructor(private readonly backing: FileStorage) {}
  async put(key: string, body: Readable, options?: { contentType?: string }): Promise<StoredFile> {
    this.written.push(key);
    return this.backing.put(key, body, options);
  }
  get(key: string, range?: ByteRange) {
    return this.backing.get(key, range);
  }
  stat(key: string) {
    return this.backing.stat(key);
  }
  delete(key: string) {
    return this.backing.delete(key);
  }
  deleteAll(prefix: string) {
    return this.backing.deleteAll(prefix);
  }
  scoped(prefix: string): FileStorage {
    return new PrefixedFileStorage(this, prefix);
  }
}

describe('the storage driver reaches every module that keeps files (exports, audit archives)', () => {
  const directory = mkdtempSync(join(tmpdir(), 'crm-storage-driver-'));
  const storage = new RecordingStorage(new LocalFileStorage(directory));
  let t: TestApp;
  let tenant: TestTenant;

  beforeAll(async () => {
    // In-process queue: the gateway runs the export itself.
    t = await startTestApp({ REDIS_URL: '' }, 'gateway', { storage });
    tenant = await createTenant(t.app);
    await insertAccount(t.app, tenant, tenant.admin.id, 'Stored Co');
  });
  afterAll(async () => {
    await t.stop();
    rmSync(directory, { recursive: true, force: true });
  });

  it('an export is written to and downloaded from the given store, under exports/', async () => {
    const started = await t.gql(
      `mutation($input: StartExportInput!) { startExport(input: $input) { id } }`,
      { input: { entityType: 'ACCOUNT', format: 'CSV', compression: 'GZIP', fields: ['name'] } },
      tenant.admin.token,
    );
    expect(started.errors).toBeUndefined();
    const id = started.data!.startExport.id as string;
    let job: Record<string, unknown> | undefined;
    for (let i = 0; i < 200 && job?.status !== 'COMPLETED'; i++) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      job = (
        await t.gql(
          `query($id: ID!) { exportJob(id: $id) { status downloadUrl } }`,
          { id },
          tenant.admin.token,
        )
      ).data!.exportJob as Record<string, unknown>;
    }
    expect(job?.status).toBe('COMPLETED');
    expect(storage.written).toEqual([expect.stringMatching(new RegExp(`^exports/.*${id}`))]);
    const response = await fetch(`${t.url}${job!.downloadUrl as string}`, {
      headers: { authorization: `Bearer ${tenant.admin.token}` },
    });
    expect(response.status).toBe(200);
    expect(gunzipSync(Buffer.from(await response.arrayBuffer())).toString('utf8')).toMatch(/Stored Co/);
  });

  it('an audit month past retention is archived into the given store, under audit-archive/', async () => {
    const now = new Date();
    const old = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() - 14, 1));
    await t.app.dataSource.query(
      `INSERT INTO audit_logs (company_id, action, object_type, occurred_at) VALUES ($1, 'UPDATE', 'LEAD', $2)`,
      [tenant.companyId, old.toISOString()],
    );
    const report = await t.app.services.auditMaintenance.run();
    expect(report.archive.failed).toEqual([]);
    const month = `y${old.getUTCFullYear()}m${String(old.getUTCMonth() + 1).padStart(2, '0')}`;
    expect(report.archive.archived).toEqual([
      expect.objectContaining({ partitionName: `audit_logs_${month}` }),
    ]);
    expect(storage.written).toContainEqual(expect.stringMatching(/^audit-archive\//));
  });
});
