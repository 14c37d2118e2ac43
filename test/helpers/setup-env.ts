import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_TEST_DATABASE_URL, DEFAULT_TEST_REDIS_URL } from './test-databases';

// Every test process talks to its own database and Redis DB index on the machine's real servers.
process.env.NODE_ENV = 'test';
process.env.LOG_LEVEL ??= 'silent';
process.env.TEST_DATABASE_URL ??= DEFAULT_TEST_DATABASE_URL;
process.env.TEST_REDIS_URL ??= DEFAULT_TEST_REDIS_URL;
process.env.DATABASE_URL = process.env.TEST_DATABASE_URL;
process.env.REDIS_URL = process.env.TEST_REDIS_URL;
process.env.JWT_SECRET ??= 'test-secret-0123456789abcdef0123456789abcdef';
process.env.METRICS_PORT ??= '0';
// Tests send bursts from one user far past a production quota; rate-limits.test.ts turns the limits on itself.
process.env.RATE_LIMITS ??= 'false';
process.env.STORAGE_DIR ??= join(tmpdir(), 'crm-test-storage');
process.env.AUDIT_ARCHIVE_DIR ??= join(tmpdir(), 'crm-test-audit-archive');
process.env.EXPORT_DIR ??= join(tmpdir(), 'crm-test-exports');
