import 'reflect-metadata';
import { randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import {
  Arg,
  Ctx,
  Field,
  Int,
  Mutation,
  ObjectType,
  Query,
  Resolver,
  Root,
  Subscription,
  type SubscriptionHandlerData,
} from 'type-graphql';
import { MODULES } from '../../src/modules/modules';
import {
  CurrentPrincipal,
  defineModule,
  type Principal,
  type RequestContext,
} from '../../src/modules/kernel';
import type { GraphQLPubSub } from '../../src/platform/pubsub/graphql-pubsub';
import type { JobContext, QueueDriver } from '../../src/platform/queue/queue.driver';
import type { FileStorage } from '../../src/platform/storage/file-storage';
import { createTenant, type TestTenant } from '../helpers/fixtures';
import { startTestApp, wsClient, type TestApp } from '../helpers/test-app';

/*
 * A capability written the way the next ones will be: one folder's worth of code (here, this file) and one line in the
 * module list. Its resolver, subscription, processor, scheduled job and routes work with no other file changed.
 */

const ToyQueue = { count: 'toy-count' } as const;
const ToyTopic = { progress: 'crm:gql:toy-progress' } as const;

interface ToyProgressEvent {
  jobId: string;
  companyId: string;
  ownerId: string;
  done: number;
  of: number;
}

@ObjectType()
class ToyProgress {
  @Field(() => String) jobId!: string;
  @Field(() => Int) done!: number;
  @Field(() => Int) of!: number;
}

@ObjectType()
class ToyEcho {
  @Field(() => String) text!: string;
  @Field(() => String) by!: string;
}

/** Counts scheduled runs in this test process (every worker below runs here). */
const scheduledRuns: number[] = [];

class ToyService {
  constructor(
    private readonly queue: QueueDriver,
    private readonly pubsub: GraphQLPubSub,
    readonly storage: FileStorage,
  ) {}

  async start(principal: Principal, steps: number): Promise<string> {
    const job = await this.queue.add(ToyQueue.count, 'count', {
      steps,
      companyId: principal.companyId,
      ownerId: principal.userId,
    });
    return job.id;
  }

  /** Runs in a worker: reports progress to the queue and publishes it to GraphQL subscribers on any gateway. */
  async count(job: JobContext<{ steps: number; companyId: string; ownerId: string }>): Promise<number> {
    for (let done = 1; done <= job.data.steps; done++) {
      await new Promise((resolve) => setTimeout(resolve, 30));
      await job.progress({ done, of: job.data.steps });
      const event: ToyProgressEvent = { jobId: job.id, ...job.data, done, of: job.data.steps };
      this.pubsub.publish(ToyTopic.progress, event);
    }
    return job.data.steps;
  }
}

@Resolver()
class ToyResolver {
  constructor(private readonly toy: ToyService) {}

  @Query(() => ToyEcho)
  toyEcho(@CurrentPrincipal() principal: Principal, @Arg('text', () => String) text: string): ToyEcho {
    return { text, by: principal.userId };
  }

  @Mutation(() => String)
  toyCount(
    @CurrentPrincipal() principal: Principal,
    @Arg('steps', () => Int) steps: number,
  ): Promise<string> {
    return this.toy.start(principal, steps);
  }

  // The filter checks the subscriber's right to each event: only the job's owner hears it.
  @Subscription(() => ToyProgress, {
    topics: ToyTopic.progress,
    filter: ({ payload, context }: SubscriptionHandlerData<ToyProgressEvent, unknown, RequestContext>) =>
      payload.companyId === context.principal?.companyId && payload.ownerId === context.principal.userId,
  })
  toyProgress(@Root() event: ToyProgressEvent, @Ctx() _context: RequestContext): ToyProgress {
    return event;
  }
}

declare module '../../src/modules/kernel/registries' {
  interface ServiceRegistry {
    toy?: ToyService;
  }
}

const toyModule = defineModule<{ toy: ToyService }>({
  name: 'toy',
  queues: Object.values(ToyQueue),
  createServices: ({ queue, pubsub, storage }) => ({ toy: new ToyService(queue, pubsub, storage) }),
  resolvers: (services) => [{ resolver: ToyResolver, create: () => new ToyResolver(services.toy!) }],
  processors: (services) => [
    { queue: ToyQueue.count, processor: (job: JobContext<never>) => services.toy!.count(job) },
  ],
  scheduledJobs: () => [
    {
      name: 'toy.tick',
      schedule: { everyMs: 400 },
      run: async () => {
        scheduledRuns.push(Date.now());
      },
    },
  ],
  routes: (services) => [
    {
      method: 'GET',
      path: '/toy/echo/:word',
      handler: async ({ caller, params }) => ({
        json: { word: params.word, by: (caller as Principal).userId },
      }),
    },
    {
      method: 'POST',
      path: '/toy/files/:name',
      handler: async ({ caller, params, body }) => {
        const key = `toy/${(caller as Principal).companyId}/${params.name}`;
        const stored = await services.toy!.storage.put(key, Readable.from([JSON.stringify(body)]), {
          contentType: 'application/json',
        });
        return { status: 201, json: { size: stored.size } };
      },
    },
    {
      method: 'GET',
      path: '/toy/files/:name',
      handler: async ({ caller, params }) => {
        const key = `toy/${(caller as Principal).companyId}/${params.name}`;
        const file = await services.toy!.storage.get(key);
        if (!file) return { status: 404, json: { error: 'no such file' } };
        return { stream: file, headers: { 'content-type': 'application/json' } };
      },
    },
  ],
});

describe.each([
  ['BullMQ, Redis pub/sub, two workers', {}, 2],
  ['in-process queue and pub/sub (no Redis): the gateway runs the jobs', { REDIS_URL: '' }, 0],
])(
  'the module contract: a toy capability plugs in as one module (%s)',
  (_drivers, env: Record<string, string>, workerCount) => {
    const modules = [...MODULES, toyModule];
    const queuePrefix = `toy-${randomUUID().slice(0, 8)}`;
    let gateway: TestApp;
    let workers: TestApp[];
    let a: TestTenant;
    let b: TestTenant;

    beforeAll(async () => {
      gateway = await startTestApp(env, 'gateway', { modules, queuePrefix });
      // With Redis, two workers: the scheduled job must still fire once per period, and either may take the job.
      workers = [];
      for (let i = 0; i < workerCount; i++)
        workers.push(await startTestApp(env, 'worker', { modules, queuePrefix }));
      a = await createTenant(gateway.app);
      b = await createTenant(gateway.app);
    });
    afterAll(async () => {
      for (const worker of workers) await worker.stop();
      await gateway.stop();
    });

    const http = (path: string, token?: string, init: RequestInit = {}) =>
      fetch(`${gateway.url}${path}`, {
        ...init,
        headers: {
          ...(token ? { authorization: `Bearer ${token}` } : {}),
          ...(init.body ? { 'content-type': 'application/json' } : {}),
        },
      });

    it('serves its resolver behind the gateway auth', async () => {
      const res = await gateway.gql('{ toyEcho(text: "hi") { text by } }', {}, a.rep.token);
      expect(res.data?.toyEcho).toEqual({ text: 'hi', by: a.rep.id });
      expect((await gateway.gql('{ toyEcho(text: "hi") { text } }')).errors?.[0]?.extensions?.code).toBe(
        'UNAUTHENTICATED',
      );
    });

    it("runs its processor on a worker; progress reaches the owner's subscription on the gateway, nobody else's", async () => {
      const owner = wsClient(gateway.url, `Bearer ${a.rep.token}`, { keepOpen: true });
      const stranger = wsClient(gateway.url, `Bearer ${b.rep.token}`, { keepOpen: true });
      const heard: { owner: unknown[]; stranger: unknown[] } = { owner: [], stranger: [] };
      const query = '{ _: toyProgress { jobId done of } }'.replace('{ _:', 'subscription { _:');
      const stop = [
        owner.subscribe(
          { query },
          { next: (v) => heard.owner.push(v.data), error: () => {}, complete: () => {} },
        ),
        stranger.subscribe(
          { query },
          { next: (v) => heard.stranger.push(v.data), error: () => {}, complete: () => {} },
        ),
      ];
      await new Promise((resolve) => setTimeout(resolve, 300)); // subscriptions registered

      const started = await gateway.gql('mutation { toyCount(steps: 3) }', {}, a.rep.token);
      const jobId = started.data?.toyCount as string;
      expect(jobId).toEqual(expect.any(String));
      // Any process can follow the job: here the gateway, while a worker runs it.
      const followed: unknown[] = [];
      const result = await new Promise<unknown>((resolve, reject) => {
        void gateway.app.queue.follow(ToyQueue.count, jobId, {
          progress: (value) => followed.push(value),
          completed: resolve,
          failed: (reason) => reject(new Error(reason)),
        });
      });
      expect(Number(result)).toBe(3);
      const deadline = Date.now() + 5000;
      while (heard.owner.length < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      expect(heard.owner).toEqual([1, 2, 3].map((done) => ({ _: { jobId, done, of: 3 } })));
      expect(heard.stranger).toEqual([]);
      expect(followed.length).toBeGreaterThanOrEqual(1);
      expect(followed.at(-1)).toEqual({ done: 3, of: 3 });
      stop.forEach((unsubscribe) => unsubscribe());
      await owner.dispose();
      await stranger.dispose();
    });

    it('fires its scheduled job once per period across every worker, and lists it for admins', async () => {
      scheduledRuns.length = 0;
      const windowMs = 3000;
      await new Promise((resolve) => setTimeout(resolve, windowMs));
      const runs = scheduledRuns.length;
      // One per 400 ms period is ~7.5; two workers each firing would make ~15.
      expect(runs).toBeGreaterThanOrEqual(4);
      expect(runs).toBeLessThanOrEqual(10);

      const listed = await gateway.gql(
        '{ scheduledJobs { name pattern lastRunAt nextRunAt } }',
        {},
        a.admin.token,
      );
      const tick = (listed.data?.scheduledJobs as Array<Record<string, string | null>>).find(
        (j) => j.name === 'toy.tick',
      );
      expect(tick).toMatchObject({ name: 'toy.tick', pattern: 'every 400 ms' });
      expect(Date.parse(tick!.lastRunAt!)).toBeGreaterThan(Date.now() - 5000);
      expect(Date.parse(tick!.nextRunAt!)).toBeGreaterThan(Date.now() - 1000);
      const denied = await gateway.gql('{ scheduledJobs { name } }', {}, a.rep.token);
      expect(denied.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    });

    it('mounts its routes behind auth, the JSON error shape and the metrics, and streams files from storage', async () => {
      const echo = await http('/toy/echo/hello', a.rep.token);
      expect(echo.status).toBe(200);
      expect(await echo.json()).toEqual({ word: 'hello', by: a.rep.id });

      const anonymous = await http('/toy/echo/hello');
      expect(anonymous.status).toBe(401);
      expect(await anonymous.json()).toEqual({
        errors: [
          {
            message: expect.stringMatching(/Authentication required/),
            extensions: { code: 'UNAUTHENTICATED' },
          },
        ],
      });

      const body = { rows: [1, 2, 3], note: 'x'.repeat(1000) };
      const put = await http('/toy/files/report.json', a.rep.token, {
        method: 'POST',
        body: JSON.stringify(body),
      });
      expect(put.status).toBe(201);
      const got = await http('/toy/files/report.json', a.rep.token);
      expect(got.headers.get('content-type')).toMatch(/application\/json/);
      expect(await got.json()).toEqual(body);
      // Another company's caller names the same file and finds nothing: keys are per company.
      expect((await http('/toy/files/report.json', b.rep.token)).status).toBe(404);

      const tooBig = await http('/toy/files/big.json', a.rep.token, {
        method: 'POST',
        body: JSON.stringify({ pad: 'x'.repeat(1_100_000) }),
      });
      expect(tooBig.status).toBe(413);

      const scrape = await gateway.app.metrics.registry.getSingleMetricAsString('crm_http_requests_total');
      expect(scrape).toContain('route="/toy/echo/:word"');
      expect(scrape).not.toContain('/toy/echo/hello');
    });
  },
);
