import { createHmac } from 'node:crypto';
import { z } from 'zod';
import { AppError, type FieldViolation } from '../../platform/errors/app-error';
import {
  bindNamed,
  fieldsFor,
  filtersToSql,
  findField,
  RECORD_TABLE,
  RecordType,
  scalarProblem,
  sortToSql,
  validateFilters,
  type RecordFilter,
} from '../kernel';
import { PermanentStepError, type ActionDefinition, type ActionSettings } from './workflow-action.contract';
import { CPU_ACTIONS } from './workflow.cpu-actions';
import {
  compileExpression,
  compileMapping,
  stepReferences,
  type Mapping,
  type StepReferences,
} from './workflow.expression';
import { callAllowed, checkUrl } from './workflow.http';

const expression = z.string().min(1).max(2000);
const mapping: z.ZodType<Mapping> = z.lazy(() =>
  z.union([
    z.string().max(2000),
    z.number(),
    z.boolean(),
    z.null(),
    z.array(mapping),
    z.record(z.string(), mapping),
  ]),
);
const entity = z.enum(['LEAD', 'DEAL', 'ACCOUNT']);

/**
 * Compiles the config's expressions (so errors surface before anything is stored) and refuses any that reads a step
 * the step does not depend on: at run time a step's scope holds only its dependencies' outputs, so such a read would
 * quietly be null.
 */
function checkExpressions(
  values: Record<string, unknown>,
  keys: readonly string[],
  dependsOn: readonly string[],
  field: string,
  violations: FieldViolation[],
): void {
  for (const key of keys) {
    if (values[key] === undefined) continue;
    let references: StepReferences;
    try {
      compileMapping(values[key] as Mapping);
      references = stepReferences(values[key] as Mapping);
    } catch (error) {
      violations.push({
        field: `${field}.${key}`,
        rule: `is not a valid expression: ${(error as Error).message}`,
      });
      continue;
    }
    const visible = dependsOn.length ? `dependsOn: ${dependsOn.join(', ')}` : 'the step has no dependsOn';
    for (const name of references.named)
      if (!dependsOn.includes(name))
        violations.push({
          field: `${field}.${key}`,
          rule: `reads steps.${name}, which is not a step this one depends on (${visible}): a step sees only the outputs of the steps in its dependsOn`,
        });
    if (references.computed)
      violations.push({
        field: `${field}.${key}`,
        rule: `names a step by a computed value (steps[...]): write steps.<key> with a key from dependsOn`,
      });
  }
}

/** Fields a workflow may set on a record (never its tenant, id or timestamps). */
const WRITABLE: Readonly<Record<RecordType, readonly string[]>> = {
  LEAD: [
    'firstName',
    'lastName',
    'email',
    'companyName',
    'status',
    'source',
    'industry',
    'score',
    'estimatedValue',
    'description',
    'ownerId',
  ],
  DEAL: ['name', 'stage', 'amount', 'probability', 'closeDate', 'ownerId', 'accountId'],
  ACCOUNT: ['name', 'industry', 'country', 'annualRevenue', 'employees', 'ownerId'],
};

const RECORD_SERVICE = { LEAD: 'leads', DEAL: 'deals', ACCOUNT: 'accounts' } as const;

function threadAction(
  name: string,
  config: ActionDefinition['config'],
  expressionKeys: string[],
): ActionDefinition {
  return {
    name,
    runsIn: 'thread',
    config,
    expressions: expressionKeys,
    // Off the CPU queue (a step typed otherwise) a thread action runs inline.
    run: async (values, context) => CPU_ACTIONS[name]!(values, context.scope),
  };
}

/** Every action a step may name. New actions register here, and only here. */
const ACTION_LIST: ActionDefinition[] = [
  {
    name: 'http.request',
    runsIn: 'main',
    config: z.strictObject({
      method: z.enum(['GET', 'POST', 'PUT', 'PATCH', 'DELETE']).default('GET'),
      url: z.string().url().max(2000),
      headers: z.record(z.string().regex(/^[A-Za-z0-9-]{1,64}$/), z.string().max(2000)).optional(),
      body: mapping.optional(),
    }),
    expressions: ['body'],
    check: checkUrl,
    run: async (values, context) => {
      const body =
        values.body === undefined ? undefined : compileMapping(values.body as Mapping)(context.scope);
      return callAllowed(
        String(values.url),
        {
          method: String(values.method),
          headers: {
            ...(values.headers as Record<string, string> | undefined),
            ...(body === undefined ? {} : { 'content-type': 'application/json' }),
          },
          ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        },
        context,
      );
    },
  },
  {
    name: 'notify.webhook',
    runsIn: 'main',
    config: z.strictObject({ url: z.string().url().max(2000), payload: mapping }),
    expressions: ['payload'],
    check: checkUrl,
    run: async (values, context) => {
      const body = JSON.stringify(compileMapping(values.payload as Mapping)(context.scope));
      // A key per company (derived from the deployment's secret), named in a header: one company cannot have the
      // CRM sign a body that a receiver would take for another company's.
      const key = createHmac('sha256', context.settings.webhookSecret)
        .update(context.principal.companyId)
        .digest();
      const signature = createHmac('sha256', key).update(body).digest('hex');
      const { status } = await callAllowed(
        String(values.url),
        {
          method: 'POST',
          headers: {
            'content-type': 'application/json',
            'x-crm-signature': `sha256=${signature}`,
            'x-crm-company': context.principal.companyId,
            // The same on every retry of this step, so the receiver can drop repeats.
            'x-crm-delivery': `${context.runId}.${context.stepKey}`,
          },
          body,
        },
        context,
      );
      return { status, delivery: `${context.runId}.${context.stepKey}` };
    },
  },
  {
    name: 'crm.updateRecord',
    runsIn: 'main',
    config: z.strictObject({ entity, id: expression, changes: z.record(z.string(), mapping) }),
    expressions: ['id', 'changes'],
    check: (values, _settings, field, violations) => {
      const type = values.entity as RecordType;
      for (const key of Object.keys(values.changes as object))
        if (!WRITABLE[type].includes(key))
          violations.push({
            field: `${field}.changes.${key}`,
            rule: `is not a field a workflow may set on ${type} (${WRITABLE[type].join(', ')})`,
          });
    },
    run: async (values, context) => {
      const type = values.entity as RecordType;
      const id = compileExpression(String(values.id))(context.scope);
      const changes = compileMapping(values.changes as Mapping)(context.scope) as Record<string, unknown>;
      const problems: string[] = [];
      for (const [key, value] of Object.entries(changes)) {
        const spec = findField(type, key, 'filter') ?? findField(type, key, 'export');
        const problem =
          value === null
            ? undefined
            : spec
              ? scalarProblem(spec, value)
              : typeof value === 'string' && value.length <= 10_000
                ? undefined
                : 'must be text';
        if (problem) problems.push(`${key} ${problem}`);
      }
      if (typeof id !== 'string') problems.push(`id must be a string (got ${JSON.stringify(id)})`);
      if (problems.length) throw new PermanentStepError(`crm.updateRecord: ${problems.join('; ')}`);
      try {
        const saved = await context.records[RECORD_SERVICE[type]].update(
          context.principal,
          id as string,
          changes,
        );
        return { id: saved.id, updatedAt: saved.updatedAt };
      } catch (error) {
        // Not found, not editable, invalid: the same answer on every retry.
        if (error instanceof AppError) throw new PermanentStepError(error.message);
        throw error;
      }
    },
  },
  {
    name: 'crm.query',
    runsIn: 'main',
    expressions: [],
    config: z.strictObject({
      entity,
      filters: z.array(z.record(z.string(), z.unknown())).max(20).default([]),
      sort: z
        .array(z.strictObject({ field: z.string(), direction: z.enum(['ASC', 'DESC']) }))
        .max(3)
        .default([]),
      limit: z.number().int().min(1).max(100).default(20),
    }),
    check: (values, _settings, field, violations) => {
      try {
        validateFilters(values.entity as RecordType, values.filters as RecordFilter[], `${field}.filters`);
        sortToSql(values.entity as RecordType, values.sort as never, 'r', `${field}.sort`);
      } catch (error) {
        violations.push(
          ...((error as { violations?: FieldViolation[] }).violations ?? [
            { field, rule: (error as Error).message },
          ]),
        );
      }
    },
    run: async (values, context) => {
      const type = values.entity as RecordType;
      const params: unknown[] = [];
      const bind = (value: unknown) => `$${params.push(value)}`;
      const visible = await context.visibility.readPredicate(context.principal, type, 'r');
      const where = `${bindNamed(visible, bind)} AND ${filtersToSql(type, values.filters as RecordFilter[], 'r', bind)}`;
      const order = sortToSql(type, values.sort as never, 'r');
      const columns = Object.values(fieldsFor(type, 'export'));
      const rows = await context.dataSource.query<Array<Record<string, unknown>>>(
        `SELECT ${columns.map((spec) => `r.${spec.column} AS "${spec.name}"`).join(', ')}
             FROM ${RECORD_TABLE[type]} r WHERE ${where} ORDER BY ${order} LIMIT ${bind(values.limit)}`,
        params,
      );
      return { count: rows.length, items: rows };
    },
  },
  threadAction('compute.leadScore', z.strictObject({ lead: expression }), ['lead']),
  threadAction('transform.map', z.strictObject({ mapping: z.record(z.string(), mapping) }), ['mapping']),
  threadAction(
    'compute.hash',
    z.strictObject({ of: expression, rounds: z.number().int().min(1).max(10_000_000).default(1) }),
    ['of'],
  ),
  threadAction('aggregate.stats', z.strictObject({ values: expression }), ['values']),
];

export const ACTIONS: Readonly<Record<string, ActionDefinition>> = Object.fromEntries(
  ACTION_LIST.map((action) => [action.name, action]),
);

/** Validates a step's action and config; returns the config with defaults applied. */
export function parseActionConfig(
  action: string,
  config: unknown,
  dependsOn: readonly string[],
  settings: ActionSettings,
  field: string,
  violations: FieldViolation[],
): Record<string, unknown> | undefined {
  const definition = Object.hasOwn(ACTIONS, action) ? ACTIONS[action] : undefined;
  if (!definition) {
    violations.push({ field: `${field}.action`, rule: `must be one of ${Object.keys(ACTIONS).join(', ')}` });
    return undefined;
  }
  const parsed = definition.config.safeParse(config ?? {});
  if (!parsed.success) {
    for (const issue of parsed.error.issues)
      violations.push({
        field: [`${field}.config`, ...issue.path.map(String)].join('.'),
        rule: issue.message,
      });
    return undefined;
  }
  checkExpressions(parsed.data, definition.expressions, dependsOn, `${field}.config`, violations);
  definition.check?.(parsed.data, settings, `${field}.config`, violations);
  return parsed.data;
}
