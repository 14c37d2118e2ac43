import type { ExecutionPlan, StepDefinition, StepKind } from './workflow.model';

// What the service answers with (the resolver maps them to the GraphQL types of `workflow.types.ts`).

export type RunStatus = 'RUNNING' | 'COMPLETED' | 'FAILED' | 'CANCELLED';
export type StepStatus = 'PENDING' | 'QUEUED' | 'RUNNING' | 'COMPLETED' | 'FAILED' | 'CANCELLED';

export interface WorkflowView {
  id: string;
  name: string;
  ownerId: string;
  steps: StepDefinition[];
  plan: ExecutionPlan;
  createdAt: Date;
}

export interface StepRunView {
  key: string;
  name: string;
  action: string;
  kind: StepKind;
  queue: string;
  status: StepStatus;
  attempts: number;
  queuedAt: Date | null;
  startedAt: Date | null;
  finishedAt: Date | null;
  output: unknown;
  error: string | null;
}

export interface RunView {
  id: string;
  workflowId: string;
  userId: string;
  status: RunStatus;
  input: unknown;
  error: string | null;
  createdAt: Date;
  finishedAt: Date | null;
  steps: StepRunView[];
}
