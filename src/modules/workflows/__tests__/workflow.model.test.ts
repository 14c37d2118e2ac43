import type { FieldViolation } from '../../../platform/errors/app-error';
import { urlAllowed } from '../workflow.http';
import { leadScore } from '../workflow.cpu-actions';
import { compileExpression, compileMapping } from '../workflow.expression';
import { kindOfType, WorkflowPartitioner, type StepDefinition } from '../workflow.model';

const step = (
  key: string,
  type: string,
  dependsOn: string[] = [],
  kind?: StepDefinition['kind'],
): StepDefinition => ({
  key,
  name: key,
  type,
  action: 'transform.map',
  config: {},
  dependsOn,
  kind,
});

describe('WorkflowPartitioner', () => {
  it('classifies types as I/O, CPU or mixed, and lets a step override its kind', () => {
    expect(['api', 'http', 'webhook', 'email', 'db', 'file'].map(kindOfType)).toEqual(Array(6).fill('IO'));
    expect(['compute', 'transform', 'score', 'aggregate', 'hash'].map(kindOfType)).toEqual(
      Array(5).fill('CPU'),
    );
    expect(kindOfType('enrich')).toBe('MIXED');
    const plan = WorkflowPartitioner.createExecutionPlan([step('a', 'http'), step('b', 'http', [], 'CPU')]);
    expect(plan.levels[0]).toEqual([
      { key: 'a', kind: 'IO', queue: 'workflow_io' },
      { key: 'b', kind: 'CPU', queue: 'workflow_cpu' },
    ]);
  });

  it('orders a diamond into levels that can run in parallel', () => {
    const plan = WorkflowPartitioner.createExecutionPlan([
      step('score', 'score', ['fetch']),
      step('fetch', 'api'),
      step('notify', 'webhook', ['score', 'enrich']),
      step('enrich', 'enrich', ['fetch']),
    ]);
    expect(plan.levels.map((level) => level.map((s) => `${s.key}:${s.queue}`))).toEqual([
      ['fetch:workflow_io'],
      ['score:workflow_cpu', 'enrich:workflow_default'],
      ['notify:workflow_io'],
    ]);
  });

  it('names cycles, unknown dependencies, self-dependencies and duplicate keys', () => {
    const violations: FieldViolation[] = [];
    WorkflowPartitioner.createExecutionPlan(
      [
        step('a', 'http', ['c']),
        step('b', 'http', ['a']),
        step('c', 'http', ['b']),
        step('d', 'http', ['nope', 'd']),
        step('a', 'http'),
        step('9x', 'http'),
      ],
      violations,
    );
    expect(violations).toEqual(
      expect.arrayContaining([
        { field: 'input.steps[3].dependsOn', rule: 'names no step "nope"' },
        { field: 'input.steps[3].dependsOn', rule: 'must not name the step itself' },
        { field: 'input.steps[4].key', rule: '"a" is used by another step' },
        { field: 'input.steps[5].key', rule: expect.stringMatching(/must start with a letter/) },
        { field: 'input.steps', rule: expect.stringMatching(/must not form a cycle \(among a, b, c, d\)/) },
      ]),
    );
  });
});

describe('the transform.map expression language', () => {
  const scope = {
    input: { lead: { firstName: 'ada', lastName: 'Lovelace', tags: ['a', 'b'], amount: 1200.456 } },
    steps: { fetch: { body: { items: [{ v: 2 }, { v: 5 }] } } },
  };

  it('evaluates paths, operators, conditionals and functions', () => {
    const mapped = compileMapping({
      name: "$upper(input.lead.firstName) & ' ' & input.lead.lastName",
      second: 'steps.fetch.body.items[1].v * 10 + 1',
      last: 'input.lead.tags[-1]',
      rounded: '$round(input.lead.amount, 1)',
      big: "input.lead.amount > 1000 ? 'big' : 'small'",
      missing: "$default(input.lead.email, 'none')",
      both: 'input.lead.amount >= 1000 and not (input.lead.firstName = "bob")',
      list: ['$count(input.lead.tags)', 42, true],
    })(scope);
    expect(mapped).toEqual({
      name: 'ADA Lovelace',
      second: 51,
      last: 'b',
      rounded: 1200.5,
      big: 'big',
      missing: 'none',
      both: true,
      list: [2, 42, true],
    });
  });

  it('reaches only own data: no prototypes, constructors or globals', () => {
    expect(compileExpression('input.constructor')(scope)).toBeNull();
    expect(compileExpression('input.__proto__')(scope)).toBeNull();
    expect(compileExpression('process')(scope)).toBeNull();
    expect(() => compileExpression('$eval("1")')).toThrow(/unknown function \$eval/);
    expect(() => compileExpression('input.lead.(1)')).toThrow(/expected a field name/);
    expect(() => compileMapping({ nested: { bad: '1 +' } })).toThrow(/mapping\.nested\.bad ends too early/);
    // A mapping may not set keys that would reach a prototype (JSON.parse makes "__proto__" an own key).
    expect(() => compileMapping(JSON.parse('{"__proto__": "input"}'))).toThrow(/may not set "__proto__"/);
    expect(() => compileMapping({ out: { constructor: '1' } })).toThrow(
      /mapping\.out may not set "constructor"/,
    );
  });
});

describe('compute.leadScore', () => {
  it('scores a strong lead above a weak one, within 0 to 100, and says why', () => {
    const now = Date.parse('2026-11-29T00:00:00Z');
    const strong = leadScore(
      {
        email: 'cto@acme.io',
        industry: 'TECHNOLOGY',
        source: 'REFERRAL',
        status: 'QUALIFIED',
        estimatedValue: 250_000,
        description: 'Budget approved, wants a pilot and pricing',
        createdAt: '2026-11-27T00:00:00Z',
      },
      now,
    );
    const weak = leadScore(
      { email: 'someone@gmail.com', status: 'UNQUALIFIED', createdAt: '2025-01-01T00:00:00Z' },
      now,
    );
    expect(strong.score).toBeGreaterThan(80);
    expect(strong.score).toBeLessThanOrEqual(100);
    expect(weak.score).toBe(0);
    expect(strong.factors).toMatchObject({ email: 12, intent: 15, recency: 10 });
  });
});

describe('the HTTP allow-list', () => {
  const allow = ['https://api.example.com/v1', 'http://127.0.0.1:8080/'];
  it('admits same-origin URLs under a prefix, by whole path segments', () => {
    expect(urlAllowed('https://api.example.com/v1', allow)).toBe(true);
    expect(urlAllowed('https://api.example.com/v1/leads?x=1', allow)).toBe(true);
    expect(urlAllowed('https://API.example.com/v1/leads', allow)).toBe(true);
    expect(urlAllowed('http://127.0.0.1:8080/anything', allow)).toBe(true);
  });

  it('refuses other origins, look-alike hosts, credentials, escapes and other schemes', () => {
    for (const url of [
      'https://api.example.com/v1-internal',
      'https://api.example.com/v1/../admin',
      'https://api.example.com.evil.io/v1',
      'https://evil.io/?https://api.example.com/v1',
      'https://user:pw@api.example.com/v1',
      'http://api.example.com/v1',
      'https://api.example.com:8443/v1',
      'http://127.0.0.1:8081/',
      'file:///etc/passwd',
      'not a url',
    ])
      expect([url, urlAllowed(url, allow)]).toEqual([url, false]);
  });
});
