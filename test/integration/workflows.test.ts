import { randomUUID } from 'node:crypto';
import { createTenant, insertLead, type TestTenant } from '../helpers/fixtures';
import { StepServer } from '../helpers/step-server';
import { startTestApp, wsClient, type TestApp } from '../helpers/test-app';

const CREATE = `mutation ($input: CreateWorkflowInput!) { createWorkflow(input: $input) { id plan { steps { key kind queue } } } }`;
const RUN = `mutation ($id: ID!, $input: JSON) { runWorkflow(id: $id, input: $input) { id status } }`;
const RUN_VIEW = `query ($id: ID!) { workflowRun(id: $id) { id status error
  steps { key status queue kind attempts queuedAt startedAt finishedAt output error } } }`;

interface StepRun {
  key: string;
  status: string;
  queue: string;
  kind: string;
  attempts: number;
  queuedAt: string | null;
  startedAt: string | null;
  finishedAt: string | null;
  output: any;
  error: string | null;
}
interface Run {
  id: string;
  status: string;
  error: string | null;
  steps: StepRun[];
}

describe('workflows on BullMQ (real Redis, two worker processes, a local HTTP server for I/O steps)', () => {
  const server = new StepServer();
  let t: TestApp;
  let workerA: TestApp;
  let workerB: TestApp;
  let tenant: TestTenant;

  async function create(token: string, steps: unknown[], name = 'wf'): Promise<string> {
    const res = await t.gql(CREATE, { input: { name, steps } }, token);
    expect(res.errors).toBeUndefined();
    return res.data!.createWorkflow.id as string;
  }

  async function start(token: string, workflowId: string, input: unknown = {}): Promise<string> {
    const res = await t.gql(RUN, { id: workflowId, input }, token);
    expect(res.errors).toBeUndefined();
    return res.data!.runWorkflow.id as string;
  }

  async function until(
    token: string,
    runId: string,
    accept: (run: Run) => boolean,
    timeoutMs = 30_000,
  ): Promise<Run> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const res = await t.gql<{ workflowRun: Run }>(RUN_VIEW, { id: runId }, token);
      const run = res.data!.workflowRun;
      if (accept(run)) return run;
      if (Date.now() > deadline) throw new Error(`run ${runId} never got there: ${JSON.stringify(run)}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
  const finished = (run: Run) => ['COMPLETED', 'FAILED', 'CANCELLED'].includes(run.status);
  const stepOf = (run: Run, key: string) => run.steps.find((step) => step.key === key)!;

  beforeAll(async () => {
    const url = await server.start();
    const env = {
      WORKFLOW_HTTP_ALLOWLIST: `${url}/`,
      WORKFLOW_BACKOFF_MS: '200',
      WORKFLOW_CPU_TIMEOUT_MS: '1500',
      WORKFLOW_CPU_ATTEMPTS: '1',
      WORKFLOW_CPU_CONCURRENCY: '2',
      // Above the 1 MB a run's input may hold, so the service's own limit is what answers.
      BODY_LIMIT: '2mb',
    };
    const queuePrefix = `test-${randomUUID().slice(0, 8)}`;
    t = await startTestApp(env, 'gateway', { queuePrefix });
    workerA = await startTestApp(env, 'worker', { queuePrefix });
    workerB = await startTestApp(env, 'worker', { queuePrefix });
    tenant = await createTenant(t.app, { extraUsers: 1 });
  });

  afterAll(async () => {
    await Promise.all([t?.stop(), workerA?.stop(), workerB?.stop()]);
    await server.stop();
  });

  it('refuses bad definitions and inputs, naming the step and the rule, and stores or queues nothing', async () => {
    const count = async () =>
      (
        await t.app.dataSource.query<[{ w: number; r: number }]>(
          `SELECT (SELECT count(*) FROM workflows WHERE company_id = $1)::int AS w,
                  (SELECT count(*) FROM workflow_runs WHERE company_id = $1)::int AS r`,
          [tenant.companyId],
        )
      )[0];
    const before = await count();
    const http = (key: string, dependsOn: string[] = [], url = `${server.url}/slow`) => ({
      key,
      name: key,
      type: 'http',
      action: 'http.request',
      config: { url },
      dependsOn,
    });
    const mapStep = (key: string, dependsOn: string[], mapping: Record<string, string>) => ({
      key,
      name: key,
      type: 'transform',
      action: 'transform.map',
      config: { mapping },
      dependsOn,
    });
    const cases: Array<[unknown[], RegExp]> = [
      [[http('a', ['b']), http('b', ['a'])], /input\.steps must not form a cycle \(among a, b\)/],
      [[http('a', ['ghost'])], /input\.steps\[0\]\.dependsOn names no step "ghost"/],
      [[http('a'), http('a')], /input\.steps\[1\]\.key "a" is used by another step/],
      [[{ ...http('a'), action: 'shell.exec' }], /input\.steps\[0\]\.action must be one of http\.request/],
      [[{ ...http('a'), type: 'HTTP!' }], /input\.steps\[0\]\.type must be a lower-case word/],
      [
        [http('a', [], 'http://169.254.169.254/latest/meta-data')],
        /input\.steps\[0\]\.config\.url must start with an allow-listed prefix/,
      ],
      [[{ ...http('a'), config: { url: `${server.url}/slow`, verb: 'GET' } }], /input\.steps\[0\]\.config/],
      [
        [
          {
            key: 'm',
            name: 'm',
            type: 'transform',
            action: 'transform.map',
            config: { mapping: { x: 'input.(' } },
          },
        ],
        /input\.steps\[0\]\.config\.mapping is not a valid expression/,
      ],
      [
        [{ ...http('a'), type: 'compute' }],
        /http\.request waits on services or the network and cannot run on the CPU queue/,
      ],
      // A step sees only its direct dependencies' outputs: a read of any other step would be null, so it is refused.
      [
        [http('a'), http('b', ['a']), mapStep('c', ['b'], { x: 'steps.a.status', y: 'steps.b.status' })],
        /input\.steps\[2\]\.config\.mapping reads steps\.a, which is not a step this one depends on \(dependsOn: b\)/,
      ],
      [
        [http('a'), mapStep('c', [], { x: '$upper(steps.ghost.body)' })],
        /input\.steps\[1\]\.config\.mapping reads steps\.ghost, .*\(the step has no dependsOn\)/,
      ],
      [
        [http('a'), mapStep('c', ['a'], { x: 'steps[input.which].status' })],
        /input\.steps\[1\]\.config\.mapping names a step by a computed value/,
      ],
    ];
    for (const [steps, message] of cases) {
      const res = await t.gql(CREATE, { input: { name: 'bad', steps } }, tenant.rep.token);
      expect(res.errors?.[0]).toMatchObject({
        message: expect.stringMatching(message),
        extensions: { code: 'BAD_USER_INPUT' },
      });
    }
    const id = await create(tenant.rep.token, [http('a')]);
    const big = await t.gql(RUN, { id, input: { blob: 'x'.repeat(1024 * 1024) } }, tenant.rep.token);
    expect(big.errors?.[0]?.message).toMatch(/input must be at most 1048576 bytes/);
    expect(await count()).toEqual({ w: before.w + 1, r: before.r });
    expect(server.hits).toHaveLength(0);
  });

  it('runs a DAG: roots first, independent steps in parallel on both workers, outputs flowing, no step twice', async () => {
    const id = await create(tenant.rep.token, [
      {
        key: 'fetch',
        name: 'Fetch',
        type: 'api',
        action: 'http.request',
        config: {
          method: 'POST',
          url: `${server.url}/slow?ms=150`,
          body: { tag: 'input.tag', step: "'fetch'" },
        },
      },
      {
        key: 'left',
        name: 'Left',
        type: 'http',
        action: 'http.request',
        dependsOn: ['fetch'],
        config: {
          method: 'POST',
          url: `${server.url}/slow?ms=400`,
          body: { tag: 'input.tag', step: "'left'" },
        },
      },
      {
        key: 'right',
        name: 'Right',
        type: 'http',
        action: 'http.request',
        dependsOn: ['fetch'],
        config: {
          method: 'POST',
          url: `${server.url}/slow?ms=400`,
          body: { tag: 'input.tag', step: "'right'" },
        },
      },
      {
        key: 'score',
        name: 'Score',
        type: 'score',
        action: 'compute.leadScore',
        dependsOn: ['fetch'],
        config: { lead: 'input.lead' },
      },
      {
        key: 'merge',
        name: 'Merge',
        type: 'transform',
        action: 'transform.map',
        dependsOn: ['left', 'right', 'score'],
        config: {
          mapping: {
            tag: 'input.tag',
            both: "steps.left.body.echo.step & '+' & steps.right.body.echo.step",
            score: 'steps.score.score',
          },
        },
      },
    ]);
    const lead = { email: 'vp@bigco.com', industry: 'FINANCE', status: 'QUALIFIED', estimatedValue: 50_000 };
    const tags = Array.from({ length: 6 }, (_, i) => `dag-${i}-${randomUUID().slice(0, 6)}`);
    const runIds = await Promise.all(tags.map((tag) => start(tenant.rep.token, id, { tag, lead })));
    const runs = await Promise.all(runIds.map((runId) => until(tenant.rep.token, runId, finished)));
    for (const [i, run] of runs.entries()) {
      expect(run.status).toBe('COMPLETED');
      expect(run.steps.map((s) => [s.key, s.queue, s.attempts])).toEqual([
        ['fetch', 'workflow_io', 1],
        ['left', 'workflow_io', 1],
        ['right', 'workflow_io', 1],
        ['score', 'workflow_cpu', 1],
        ['merge', 'workflow_cpu', 1],
      ]);
      const at = (key: string, field: 'startedAt' | 'finishedAt') => Date.parse(stepOf(run, key)[field]!);
      // Dependencies first; the two independent branches overlapped in time.
      expect(at('left', 'startedAt')).toBeGreaterThanOrEqual(at('fetch', 'finishedAt'));
      expect(at('left', 'startedAt')).toBeLessThan(at('right', 'finishedAt'));
      expect(at('right', 'startedAt')).toBeLessThan(at('left', 'finishedAt'));
      expect(at('merge', 'startedAt')).toBeGreaterThanOrEqual(
        Math.max(at('left', 'finishedAt'), at('right', 'finishedAt')),
      );
      expect(stepOf(run, 'merge').output).toEqual({
        tag: tags[i],
        both: 'left+right',
        score: expect.any(Number),
      });
      expect(stepOf(run, 'merge').output.score).toBe(stepOf(run, 'score').output.score);
      // Each step of each run reached the far side exactly once.
      for (const step of ['fetch', 'left', 'right'])
        expect(
          server.hits.filter(
            (hit) =>
              (hit.body as { tag?: string })?.tag === tags[i] && (hit.body as { step: string }).step === step,
          ),
        ).toHaveLength(1);
    }
    // Both worker processes took steps.
    for (const worker of [workerA, workerB]) {
      const metric = await worker.app.metrics.registry
        .getSingleMetric('crm_workflow_step_duration_seconds')
        ?.get();
      const count = (metric?.values ?? [])
        .filter((v) => (v as { metricName?: string }).metricName?.endsWith('_count'))
        .reduce((sum, v) => sum + v.value, 0);
      expect(count).toBeGreaterThan(0);
    }
  });

  it('a CPU step past its timeout is really stopped (its thread terminated), and the pool keeps serving', async () => {
    const slow = await create(tenant.rep.token, [
      {
        key: 'grind',
        name: 'Grind',
        type: 'hash',
        action: 'compute.hash',
        config: { of: 'input', rounds: 10_000_000 },
      },
    ]);
    const started = Date.now();
    const run = await until(tenant.rep.token, await start(tenant.rep.token, slow), finished);
    expect(run.status).toBe('FAILED');
    expect(stepOf(run, 'grind')).toMatchObject({
      status: 'FAILED',
      attempts: 1,
      error: 'timed out after 1500 ms',
    });
    expect(Date.now() - started).toBeLessThan(10_000);
    // A fresh thread took the stopped one's place: a small CPU step completes at once on both threads.
    const quick = await create(tenant.rep.token, [
      {
        key: 'h1',
        name: 'h1',
        type: 'hash',
        action: 'compute.hash',
        config: { of: 'input.x', rounds: 1000 },
      },
      {
        key: 'h2',
        name: 'h2',
        type: 'hash',
        action: 'compute.hash',
        config: { of: 'input.x', rounds: 1000 },
      },
    ]);
    const done = await until(
      tenant.rep.token,
      await start(tenant.rep.token, quick, { x: 'abc' }),
      finished,
      10_000,
    );
    expect(done.status).toBe('COMPLETED');
    expect(stepOf(done, 'h1').output).toEqual(stepOf(done, 'h2').output);
    expect(stepOf(done, 'h1').output.sha256).toMatch(/^[0-9a-f]{64}$/);
  });

  it('retries a failing step with growing, jittered delays; a 4xx fails at once', async () => {
    const key = randomUUID();
    const id = await create(tenant.rep.token, [
      {
        key: 'flaky',
        name: 'Flaky',
        type: 'http',
        action: 'http.request',
        config: { url: `${server.url}/flaky?key=${key}&fail=2` },
      },
    ]);
    const run = await until(tenant.rep.token, await start(tenant.rep.token, id), finished);
    expect(run.status).toBe('COMPLETED');
    expect(stepOf(run, 'flaky')).toMatchObject({
      attempts: 3,
      output: { status: 200, body: { ok: true, after: 2 } },
    });
    const times = server.hits.filter((hit) => hit.query.get('key') === key).map((hit) => hit.startedAt);
    expect(times).toHaveLength(3);
    // Backoff 200 ms doubled per attempt, minus up to half of it at random.
    expect(times[1]! - times[0]!).toBeGreaterThanOrEqual(100);
    expect(times[2]! - times[1]!).toBeGreaterThanOrEqual(200);

    const rejected = await create(tenant.rep.token, [
      {
        key: 'bad',
        name: 'Bad',
        type: 'http',
        action: 'http.request',
        config: { url: `${server.url}/status/422` },
      },
      {
        key: 'after',
        name: 'After',
        type: 'transform',
        action: 'transform.map',
        dependsOn: ['bad'],
        config: { mapping: { x: '1' } },
      },
    ]);
    const failed = await until(tenant.rep.token, await start(tenant.rep.token, rejected), finished);
    expect(failed).toMatchObject({
      status: 'FAILED',
      error: expect.stringMatching(/step bad failed: .*answered 422/),
    });
    expect(stepOf(failed, 'bad')).toMatchObject({ status: 'FAILED', attempts: 1 });
    expect(stepOf(failed, 'after').status).toBe('CANCELLED');
  });

  it("CRM steps act with the run's user: queries see what they see, edits need EDIT access", async () => {
    const own = await insertLead(t.app, tenant, tenant.rep.id, 'Mine');
    const theirs = await insertLead(t.app, tenant, tenant.admin.id, 'Theirs');
    const readOnly = await insertLead(t.app, tenant, tenant.admin.id, 'ReadOnly');
    await t.app.dataSource.query(
      `INSERT INTO record_shares (company_id, object_type, record_id, grantee_type, grantee_id, access_level)
       VALUES ($1, 'LEAD', $2, 'USER', $3, 'READ')`,
      [tenant.companyId, readOnly, tenant.rep.id],
    );
    const id = await create(tenant.rep.token, [
      {
        key: 'find',
        name: 'Find',
        type: 'db',
        action: 'crm.query',
        config: {
          entity: 'LEAD',
          filters: [{ field: 'lastName', op: 'IN', values: ['Mine', 'Theirs', 'ReadOnly'] }],
          sort: [{ field: 'lastName', direction: 'ASC' }],
        },
      },
      {
        key: 'edit',
        name: 'Edit',
        type: 'db',
        action: 'crm.updateRecord',
        dependsOn: ['find'],
        config: {
          entity: 'LEAD',
          id: 'input.leadId',
          changes: { lastName: "'Renamed by workflow'", score: 'steps.find.count * 10' },
        },
      },
    ]);
    const run = await until(tenant.rep.token, await start(tenant.rep.token, id, { leadId: own }), finished);
    expect(run.status).toBe('COMPLETED');
    // What the rep may read: their own lead and the one shared with them, never the admin's other lead.
    expect(stepOf(run, 'find').output.items.map((item: { id: string }) => item.id)).toEqual([own, readOnly]);
    const [row] = await t.app.dataSource.query('SELECT last_name, score FROM leads WHERE id = $1', [own]);
    expect(row).toEqual({ last_name: 'Renamed by workflow', score: 20 });

    const hidden = await until(
      tenant.rep.token,
      await start(tenant.rep.token, id, { leadId: theirs }),
      finished,
    );
    expect(stepOf(hidden, 'edit')).toMatchObject({
      status: 'FAILED',
      attempts: 1,
      error: expect.stringMatching(/was not found/),
    });
    const shared = await until(
      tenant.rep.token,
      await start(tenant.rep.token, id, { leadId: readOnly }),
      finished,
    );
    expect(shared.status).toBe('FAILED');
    expect(stepOf(shared, 'edit')).toMatchObject({
      status: 'FAILED',
      attempts: 1,
      error: expect.stringMatching(/may read but not edit/),
    });
    const untouched = await t.app.dataSource.query<Array<{ last_name: string }>>(
      'SELECT last_name FROM leads WHERE id = ANY($1::uuid[]) ORDER BY last_name',
      [[theirs, readOnly]],
    );
    expect(untouched.map((r) => r.last_name)).toEqual(['ReadOnly', 'Theirs']);

    // Someone else's run is not theirs to see; an admin may.
    const other = await t.gql(RUN_VIEW, { id: run.id }, tenant.others[0]!.token);
    expect(other.errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
    expect((await t.gql(RUN_VIEW, { id: run.id }, tenant.admin.token)).data!.workflowRun.id).toBe(run.id);
  });

  it('another company can neither see, run, cancel nor follow a workflow or run', async () => {
    const outsider = await createTenant(t.app);
    const id = await create(tenant.rep.token, [
      {
        key: 'wait',
        name: 'Wait',
        type: 'http',
        action: 'http.request',
        config: { url: `${server.url}/slow?ms=1500` },
      },
    ]);
    const runId = await start(tenant.rep.token, id);
    const asOutsider = async (query: string, variables: Record<string, unknown>) =>
      (await t.gql(query, variables, outsider.admin.token)).errors?.[0]?.extensions?.code;
    expect(await asOutsider('query ($id: ID!) { workflow(id: $id) { id } }', { id })).toBe('NOT_FOUND');
    expect(await asOutsider(RUN, { id, input: {} })).toBe('NOT_FOUND');
    expect(await asOutsider(RUN_VIEW, { id: runId })).toBe('NOT_FOUND');
    expect(
      await asOutsider('mutation ($id: ID!) { cancelWorkflowRun(id: $id) { status } }', { id: runId }),
    ).toBe('NOT_FOUND');
    const listed = await t.gql<{ workflows: Array<{ id: string }> }>(
      '{ workflows { id } }',
      {},
      outsider.admin.token,
    );
    expect(listed.data!.workflows).toEqual([]);
    const client = wsClient(t.url, `Bearer ${outsider.admin.token}`);
    const outcome = await new Promise<string>((resolve) => {
      client.subscribe(
        {
          query: 'subscription ($id: ID!) { workflowRunUpdated(runId: $id) { status } }',
          variables: { id: runId },
        },
        {
          next: () => resolve('heard something'),
          error: (error) => resolve(JSON.stringify(error)),
          complete: () => resolve('completed without a word'),
        },
      );
    });
    await client.dispose();
    expect(outcome).toMatch(/NOT_FOUND|was not found/);
    expect((await until(tenant.rep.token, runId, finished)).status).toBe('COMPLETED');
  });

  it('cancel stops the running request, and steps not started never start', async () => {
    const tag = randomUUID();
    const id = await create(tenant.rep.token, [
      {
        key: 'wait',
        name: 'Wait',
        type: 'http',
        action: 'http.request',
        config: { method: 'POST', url: `${server.url}/slow?ms=20000`, body: { tag: 'input.tag' } },
      },
      {
        key: 'never',
        name: 'Never',
        type: 'webhook',
        action: 'notify.webhook',
        dependsOn: ['wait'],
        config: { url: `${server.url}/hook`, payload: { tag: 'input.tag' } },
      },
    ]);
    const runId = await start(tenant.rep.token, id, { tag });
    await until(tenant.rep.token, runId, (run) => stepOf(run, 'wait').status === 'RUNNING');
    const cancelled = await t.gql(
      'mutation ($id: ID!) { cancelWorkflowRun(id: $id) { status } }',
      { id: runId },
      tenant.rep.token,
    );
    expect(cancelled.data).toEqual({ cancelWorkflowRun: { status: 'CANCELLED' } });
    const run = await until(tenant.rep.token, runId, (r) => stepOf(r, 'wait').status === 'CANCELLED', 5_000);
    expect(stepOf(run, 'never').status).toBe('CANCELLED');
    const hit = server.hits.find((h) => (h.body as { tag?: string })?.tag === tag)!;
    expect(hit.aborted).toBe(true);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(server.hitsOf('/hook').filter((h) => (h.body as { tag?: string })?.tag === tag)).toHaveLength(0);
  });

  it('the subscription hears every step transition, then the end of the run', async () => {
    const id = await create(tenant.rep.token, [
      {
        key: 'a',
        name: 'A',
        type: 'http',
        action: 'http.request',
        config: { url: `${server.url}/slow?ms=100` },
      },
      {
        key: 'b',
        name: 'B',
        type: 'transform',
        action: 'transform.map',
        dependsOn: ['a'],
        config: { mapping: { s: 'steps.a.status' } },
      },
      {
        key: 'c',
        name: 'C',
        type: 'webhook',
        action: 'notify.webhook',
        dependsOn: ['b'],
        config: { url: `${server.url}/hook`, payload: { s: 'steps.b.s' } },
      },
    ]);
    const client = wsClient(t.url, `Bearer ${tenant.rep.token}`);
    const runId = await start(tenant.rep.token, id);
    const seen: Array<{ status: string; steps: Array<{ key: string; status: string }> }> = [];
    await new Promise<void>((resolve, reject) => {
      client.subscribe(
        {
          query: 'subscription ($id: ID!) { workflowRunUpdated(runId: $id) { status steps { key status } } }',
          variables: { id: runId },
        },
        {
          next: (message) =>
            seen.push((message.data as { workflowRunUpdated: (typeof seen)[number] }).workflowRunUpdated),
          error: reject,
          complete: resolve,
        },
      );
    });
    await client.dispose();
    expect(seen.at(-1)!.status).toBe('COMPLETED');
    const history = (key: string) =>
      seen
        .map((run) => run.steps.find((s) => s.key === key)!.status)
        .filter((status, i, all) => i === 0 || all[i - 1] !== status);
    // The first snapshot may already be past QUEUED for the root; every later transition is there, in order.
    expect(history('a').slice(-2)).toEqual(['RUNNING', 'COMPLETED']);
    for (const key of ['b', 'c'])
      expect(history(key).slice(-4)).toEqual(['PENDING', 'QUEUED', 'RUNNING', 'COMPLETED']);
    const hook = server.hitsOf('/hook').at(-1)!;
    expect(hook.body).toEqual({ s: 200 });
    expect(hook.headers['x-crm-signature']).toMatch(/^sha256=[0-9a-f]{64}$/);
    expect(hook.headers['x-crm-delivery']).toBe(`${runId}.c`);
  });
});
