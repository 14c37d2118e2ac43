import type { FieldViolation } from '../../platform/errors/app-error';
import { graphqlEnum, type EnumValue } from '../kernel';

/** The three queues steps are routed to, by what they spend their time on. */
export const WorkflowQueue = {
  io: 'workflow_io',
  cpu: 'workflow_cpu',
  default: 'workflow_default',
} as const;
export type WorkflowQueue = (typeof WorkflowQueue)[keyof typeof WorkflowQueue];

export const StepKind = graphqlEnum(
  'StepKind',
  ['IO', 'CPU', 'MIXED'],
  'What a step spends its time on: waiting on the network or disk, computing, or both',
);
export type StepKind = EnumValue<typeof StepKind>;

export const QUEUE_OF_KIND: Readonly<Record<StepKind, WorkflowQueue>> = {
  IO: WorkflowQueue.io,
  CPU: WorkflowQueue.cpu,
  MIXED: WorkflowQueue.default,
};

const IO_TYPES = new Set(['api', 'http', 'webhook', 'email', 'db', 'file']);
const CPU_TYPES = new Set(['compute', 'transform', 'score', 'aggregate', 'hash']);

/** A step type's kind: I/O and CPU types are listed; anything else is mixed. */
export function kindOfType(type: string): StepKind {
  if (IO_TYPES.has(type)) return 'IO';
  if (CPU_TYPES.has(type)) return 'CPU';
  return 'MIXED';
}

export interface StepDefinition {
  key: string;
  name: string;
  /** Free-form category (`http`, `score`, ...) that decides the kind unless `kind` overrides it. */
  type: string;
  /** A registered action, e.g. `http.request`. */
  action: string;
  config: Record<string, unknown>;
  dependsOn: string[];
  kind?: StepKind | null;
}

export interface PlannedStep {
  key: string;
  kind: StepKind;
  queue: WorkflowQueue;
}

/** Levels of steps that may run at once (every dependency of a level lies in an earlier one), each with its queue. */
export interface ExecutionPlan {
  levels: PlannedStep[][];
}

const STEP_KEY = /^[A-Za-z][A-Za-z0-9_-]{0,63}$/;
export const MAX_STEPS = 100;

/**
 * Classifies steps and orders them into levels (Kahn's algorithm). Throws nothing: problems (duplicate keys, unknown
 * dependencies, cycles) go to `violations`, naming the step.
 */
export class WorkflowPartitioner {
  static createExecutionPlan(
    steps: readonly StepDefinition[],
    violations: FieldViolation[] = [],
    field = 'input.steps',
  ): ExecutionPlan {
    const byKey = new Map<string, StepDefinition>();
    steps.forEach((step, index) => {
      if (!STEP_KEY.test(step.key))
        violations.push({
          field: `${field}[${index}].key`,
          rule: 'must start with a letter and hold at most 64 letters, digits, _ or -',
        });
      else if (byKey.has(step.key))
        violations.push({ field: `${field}[${index}].key`, rule: `"${step.key}" is used by another step` });
      else byKey.set(step.key, step);
    });
    steps.forEach((step, index) => {
      for (const dependency of step.dependsOn) {
        if (!byKey.has(dependency))
          violations.push({ field: `${field}[${index}].dependsOn`, rule: `names no step "${dependency}"` });
        if (dependency === step.key)
          violations.push({ field: `${field}[${index}].dependsOn`, rule: 'must not name the step itself' });
      }
    });
    const remaining = new Map(
      [...byKey.values()].map((step) => [step.key, new Set(step.dependsOn.filter((d) => byKey.has(d)))]),
    );
    const levels: PlannedStep[][] = [];
    while (remaining.size > 0) {
      const ready = [...remaining].filter(([, deps]) => deps.size === 0).map(([key]) => key);
      if (ready.length === 0) {
        const cycle = [...remaining.keys()].sort().join(', ');
        violations.push({ field, rule: `must not form a cycle (among ${cycle})` });
        break;
      }
      levels.push(
        ready.map((key) => {
          const step = byKey.get(key)!;
          const kind = step.kind ?? kindOfType(step.type);
          return { key, kind, queue: QUEUE_OF_KIND[kind] };
        }),
      );
      for (const key of ready) remaining.delete(key);
      for (const deps of remaining.values()) for (const key of ready) deps.delete(key);
    }
    return { levels };
  }
}

/** The steps that depend on `key`, directly. */
export function dependentsOf(steps: readonly StepDefinition[], key: string): StepDefinition[] {
  return steps.filter((step) => step.dependsOn.includes(key));
}
