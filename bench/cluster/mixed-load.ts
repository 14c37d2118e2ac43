import { createClient, type Client } from 'graphql-ws';
import WebSocket from 'ws';

/**
 * Mixed load through the balancer for the fault bench: reads, searches, reports and writes from a few virtual users,
 * an export followed over a graphql-ws progress subscription, and workflow runs. Idempotent reads are retried once
 * (as a client would, on a dropped connection or a 5xx); writes are not, and only the writes whose answer arrived
 * count as acknowledged.
 */
export interface MixedLoadOptions {
  url: string;
  token: string;
  /** Virtual users issuing reads, searches, reports and writes back to back (default 6). */
  users?: number;
  /** Marks the leads this run creates (their lastName), to count them in Postgres afterwards. */
  marker: string;
  /** An export is started every `exportEveryMs` (default 8000) and a workflow run every `workflowEveryMs` (3000). */
  exportEveryMs?: number;
  workflowEveryMs?: number;
}

export interface RequestFailure {
  /** When the request was sent, and when it failed. */
  at: number;
  endedAt: number;
  operation: string;
  message: string;
}

export interface MixedLoadFigures {
  requests: number;
  failed: number;
  retried: number;
  failures: RequestFailure[];
  latenciesMs: Array<{ at: number; ms: number }>;
  acknowledgedLeadIds: string[];
  exportIds: string[];
  exportEventsSeen: number;
  workflowRunIds: string[];
}

const LIST = 'query ListLeads { leads(pageSize: 20) { total items { id lastName owner { name } } } }';
const ONE = 'query OneLead($id: ID!) { lead(id: $id) { id lastName status } }';
const SEARCH = `query SearchLeads($text: String) { search(input: { entityType: LEAD, text: $text, pageSize: 10,
  facets: [{ field: "status" }, { field: "source" }] }) { total items { ... on Lead { id } } facets { field buckets { key count } } } }`;
const REPORT = `query DealsByStage { report(input: { entityType: DEAL,
  aggregates: [{ name: "n", type: COUNT, dimensions: ["stage"] }, { name: "amount", type: SUM, field: "amount" }] }) {
  source aggregates { rows { value } } } }`;
const CREATE = 'mutation CreateLead($input: CreateLeadInput!) { createLead(input: $input) { id } }';
const START_EXPORT =
  'mutation StartExport { startExport(input: { entityType: LEAD, format: CSV, compression: GZIP, fields: ["id", "firstName", "lastName", "email", "status", "ownerName"] }) { id } }';
const EXPORT_PROGRESS =
  'subscription Progress($id: ID!) { exportProgress(jobId: $id) { status rowsExported } }';
const RUN_WORKFLOW =
  'mutation RunWorkflow($id: ID!, $input: JSON) { runWorkflow(id: $id, input: $input) { id } }';
const SEARCH_WORDS = ['a', 'al', 'be', 'jo', 'ma', 'st', 'wi', 'ro'];

/** Two CPU steps after one another and a third beside them: small, but it crosses the queues and the workers. */
export const FAULT_WORKFLOW_STEPS = ['first', 'second', 'beside'].map((key, i) => ({
  key,
  name: key,
  type: 'hash',
  action: 'compute.hash',
  dependsOn: key === 'second' ? ['first'] : [],
  config: { of: `'${key}' & input.n`, rounds: 2000 + i },
}));

interface Answer {
  data?: Record<string, any>;
  errors?: Array<{ message: string; extensions?: { code?: string } }>;
}

export class MixedLoad {
  readonly figures: MixedLoadFigures = {
    requests: 0,
    failed: 0,
    retried: 0,
    failures: [],
    latenciesMs: [],
    acknowledgedLeadIds: [],
    exportIds: [],
    exportEventsSeen: 0,
    workflowRunIds: [],
  };
  private running = false;
  private readonly loops: Array<Promise<void>> = [];
  private readonly subscriptions: Client[] = [];
  private leadIds: string[] = [];
  private workflowId = '';

  constructor(private readonly options: MixedLoadOptions) {}

  /** One GraphQL call; a failed idempotent one is retried once. Resolves with the data, or undefined on failure. */
  async call(
    operation: string,
    query: string,
    variables: Record<string, unknown> = {},
    idempotent = true,
  ): Promise<Record<string, any> | undefined> {
    for (let attempt = 0; ; attempt++) {
      const started = Date.now();
      this.figures.requests++;
      let message: string;
      try {
        const response = await fetch(`${this.options.url}/graphql`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${this.options.token}` },
          body: JSON.stringify({ query, variables }),
          signal: AbortSignal.timeout(20_000),
        });
        const answer = (await response.json().catch(() => ({}))) as Answer;
        if (response.status === 200 && !answer.errors && answer.data) {
          this.figures.latenciesMs.push({ at: started, ms: Date.now() - started });
          return answer.data;
        }
        message = `HTTP ${response.status}: ${JSON.stringify(answer.errors ?? answer).slice(0, 300)}`;
      } catch (error) {
        const cause = (error as { cause?: { message?: string } }).cause?.message;
        message = `${(error as Error).message}${cause ? ` (${cause})` : ''}`;
      }
      if (idempotent && attempt === 0) {
        this.figures.retried++;
        continue;
      }
      this.figures.failed++;
      this.figures.failures.push({ at: started, endedAt: Date.now(), operation, message });
      return undefined;
    }
  }

  async prepare(): Promise<void> {
    const list = await this.call('ListLeads', LIST);
    if (!list) throw new Error(`the cluster does not answer: ${JSON.stringify(this.figures.failures)}`);
    this.leadIds = (list.leads.items as Array<{ id: string }>).map((item) => item.id);
    const created = await this.call(
      'CreateWorkflow',
      'mutation ($input: CreateWorkflowInput!) { createWorkflow(input: $input) { id } }',
      { input: { name: `faults ${this.options.marker}`, steps: FAULT_WORKFLOW_STEPS } },
      false,
    );
    if (!created) throw new Error(`createWorkflow failed: ${JSON.stringify(this.figures.failures)}`);
    this.workflowId = created.createWorkflow.id as string;
  }

  start(): void {
    this.running = true;
    for (let user = 0; user < (this.options.users ?? 6); user++) this.loops.push(this.userLoop(user));
    this.loops.push(this.every(this.options.exportEveryMs ?? 8000, () => this.exportWithProgress()));
    this.loops.push(this.every(this.options.workflowEveryMs ?? 3000, () => this.runWorkflow()));
  }

  /** Stops issuing new requests and waits for those in flight. */
  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(this.loops);
    for (const client of this.subscriptions.splice(0)) await Promise.resolve(client.dispose());
  }

  private async userLoop(user: number): Promise<void> {
    for (let i = 0; this.running; i++) {
      const pick = (i * 7 + user * 3) % 10;
      if (pick < 3) await this.call('ListLeads', LIST);
      else if (pick < 5) {
        const id = this.leadIds[(i + user) % Math.max(1, this.leadIds.length)];
        if (id) await this.call('OneLead', ONE, { id });
      } else if (pick < 7) await this.call('SearchLeads', SEARCH, { text: SEARCH_WORDS[(i + user) % 8] });
      else if (pick < 8) await this.call('DealsByStage', REPORT);
      else await this.createLead(user, i);
    }
  }

  private async createLead(user: number, i: number): Promise<void> {
    const input = {
      firstName: `u${user}n${i}`,
      lastName: this.options.marker,
      source: 'WEB',
      score: i % 100,
    };
    const created = await this.call('CreateLead', CREATE, { input }, false);
    if (created) this.figures.acknowledgedLeadIds.push(created.createLead.id as string);
  }

  private async every(ms: number, task: () => Promise<void>): Promise<void> {
    const inFlight: Array<Promise<void>> = [];
    while (this.running) {
      inFlight.push(task());
      const until = Date.now() + ms;
      while (this.running && Date.now() < until) await new Promise((resolve) => setTimeout(resolve, 100));
    }
    await Promise.all(inFlight);
  }

  private async runWorkflow(): Promise<void> {
    const n = this.figures.workflowRunIds.length;
    const run = await this.call('RunWorkflow', RUN_WORKFLOW, { id: this.workflowId, input: { n } }, false);
    if (run) this.figures.workflowRunIds.push(run.runWorkflow.id as string);
  }

  /** Starts an export and follows it over graphql-ws (reconnecting through the balancer when its gateway dies). */
  private async exportWithProgress(): Promise<void> {
    const started = await this.call('StartExport', START_EXPORT, {}, false);
    if (!started) return;
    const id = started.startExport.id as string;
    this.figures.exportIds.push(id);
    const client = createClient({
      url: `${this.options.url.replace(/^http/, 'ws')}/graphql`,
      webSocketImpl: WebSocket,
      connectionParams: { authorization: `Bearer ${this.options.token}` },
      retryAttempts: 10,
      retryWait: () => new Promise((resolve) => setTimeout(resolve, 300)),
      shouldRetry: () => true,
    });
    this.subscriptions.push(client);
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, 60_000);
      client.subscribe(
        { query: EXPORT_PROGRESS, variables: { id } },
        {
          next: (value) => {
            this.figures.exportEventsSeen++;
            const status = (value.data as { exportProgress?: { status: string } } | undefined)?.exportProgress
              ?.status;
            if (status && status !== 'QUEUED' && status !== 'RUNNING') {
              clearTimeout(timer);
              resolve();
            }
          },
          error: () => {
            clearTimeout(timer);
            resolve();
          },
          complete: () => {
            clearTimeout(timer);
            resolve();
          },
        },
      );
    });
  }

  /** Final states of everything started, polled until none is still going (or `timeoutMs`). */
  async settle(timeoutMs = 90_000): Promise<{ exportsCompleted: number; workflowsCompleted: number }> {
    const deadline = Date.now() + timeoutMs;
    const states = async () => {
      const exports = await Promise.all(
        this.figures.exportIds.map(async (id) => {
          const answer = await this.call('ExportJob', 'query ($id: ID!) { exportJob(id: $id) { status } }', {
            id,
          });
          return (answer?.exportJob?.status as string | undefined) ?? 'UNKNOWN';
        }),
      );
      const runs = await Promise.all(
        this.figures.workflowRunIds.map(async (id) => {
          const answer = await this.call(
            'WorkflowRun',
            'query ($id: ID!) { workflowRun(id: $id) { status } }',
            {
              id,
            },
          );
          return (answer?.workflowRun?.status as string | undefined) ?? 'UNKNOWN';
        }),
      );
      return { exports, runs };
    };
    for (;;) {
      const { exports, runs } = await states();
      const going = [...exports, ...runs].filter((s) => ['QUEUED', 'RUNNING', 'UNKNOWN'].includes(s)).length;
      if (going === 0 || Date.now() > deadline)
        return {
          exportsCompleted: exports.filter((s) => s === 'COMPLETED').length,
          workflowsCompleted: runs.filter((s) => s === 'COMPLETED').length,
        };
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
  }
}
