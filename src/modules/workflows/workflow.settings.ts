import { createHmac } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { z } from 'zod';
import { claimMs, commaList, defineSettings, listEntries, positiveInt } from '../../config/settings';

/** Workflow queues, retries, claims and what steps may call (config.workflows). */
export const workflowSettings = defineSettings({
  variables: {
    /** Per workflow queue: steps run at once per worker process, a step's time limit, attempts before it fails. */
    WORKFLOW_IO_CONCURRENCY: positiveInt(20),
    WORKFLOW_IO_TIMEOUT_MS: positiveInt(30_000),
    WORKFLOW_IO_ATTEMPTS: positiveInt(3),
    /** CPU steps run in this many worker threads (default: the machine's cores). */
    WORKFLOW_CPU_CONCURRENCY: positiveInt(availableParallelism()),
    WORKFLOW_CPU_TIMEOUT_MS: positiveInt(60_000),
    WORKFLOW_CPU_ATTEMPTS: positiveInt(2),
    WORKFLOW_DEFAULT_CONCURRENCY: positiveInt(10),
    WORKFLOW_DEFAULT_TIMEOUT_MS: positiveInt(60_000),
    WORKFLOW_DEFAULT_ATTEMPTS: positiveInt(3),
    /** First retry delay (doubled each attempt) and the random fraction taken off each delay. */
    WORKFLOW_BACKOFF_MS: positiveInt(1_000),
    WORKFLOW_BACKOFF_JITTER: z.coerce.number().min(0).max(1).default(0.5),
    /** A worker's claim on a running step: a step whose worker died is run again after it. */
    WORKFLOW_LOCK_MS: claimMs(30_000),
    /** URL prefixes (comma-separated) http.request and notify.webhook may call; empty: none. */
    WORKFLOW_HTTP_ALLOWLIST: commaList(
      /^https?:\/\/[^\s/]+(\/\S*)?$/,
      'must be comma-separated http(s) URL prefixes',
    ),
    /** `single`: every step on one queue, CPU steps inline (the pre-partitioning behaviour, for comparison). */
    WORKFLOW_ROUTING: z.enum(['partitioned', 'single']).default('partitioned'),
    /** Signs notify.webhook bodies; default derived from JWT_SECRET. */
    WORKFLOW_WEBHOOK_SECRET: z.string().min(16).optional(),
  },
  read: (e, { jwtSecret }) => ({
    queues: {
      io: {
        concurrency: e.WORKFLOW_IO_CONCURRENCY,
        timeoutMs: e.WORKFLOW_IO_TIMEOUT_MS,
        attempts: e.WORKFLOW_IO_ATTEMPTS,
      },
      cpu: {
        concurrency: e.WORKFLOW_CPU_CONCURRENCY,
        timeoutMs: e.WORKFLOW_CPU_TIMEOUT_MS,
        attempts: e.WORKFLOW_CPU_ATTEMPTS,
      },
      default: {
        concurrency: e.WORKFLOW_DEFAULT_CONCURRENCY,
        timeoutMs: e.WORKFLOW_DEFAULT_TIMEOUT_MS,
        attempts: e.WORKFLOW_DEFAULT_ATTEMPTS,
      },
    },
    backoffMs: e.WORKFLOW_BACKOFF_MS,
    backoffJitter: e.WORKFLOW_BACKOFF_JITTER,
    routing: e.WORKFLOW_ROUTING,
    lockMs: e.WORKFLOW_LOCK_MS,
    httpAllowList: listEntries(e.WORKFLOW_HTTP_ALLOWLIST),
    webhookSecret:
      e.WORKFLOW_WEBHOOK_SECRET ?? createHmac('sha256', jwtSecret).update('workflow webhooks').digest('hex'),
  }),
});
