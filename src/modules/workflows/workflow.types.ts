import { GraphQLJSON, GraphQLJSONObject } from 'graphql-scalars';
import { Field, ID, InputType, Int, ObjectType } from 'type-graphql';
import { graphqlEnum } from '../kernel';
import { StepKind } from './workflow.model';

export const WorkflowRunStatus = graphqlEnum('WorkflowRunStatus', [
  'RUNNING',
  'COMPLETED',
  'FAILED',
  'CANCELLED',
]);
export const WorkflowStepStatus = graphqlEnum(
  'WorkflowStepStatus',
  ['PENDING', 'QUEUED', 'RUNNING', 'COMPLETED', 'FAILED', 'CANCELLED'],
  'PENDING: waits for dependencies; QUEUED: on its queue (also between retries); then RUNNING and an outcome',
);

@InputType()
export class WorkflowStepInput {
  @Field(() => String, {
    description: 'Unique in the workflow: a letter, then up to 63 letters, digits, _ or -',
  })
  key!: string;

  @Field(() => String)
  name!: string;

  @Field(() => String, {
    description:
      'I/O: api, http, webhook, email, db, file; CPU: compute, transform, score, aggregate, hash; anything else: mixed',
  })
  type!: string;

  @Field(() => String, {
    description:
      'http.request, notify.webhook, crm.updateRecord, crm.query, compute.leadScore, transform.map, compute.hash, aggregate.stats',
  })
  action!: string;

  @Field(() => GraphQLJSONObject, {
    nullable: true,
    description: "The action's settings (checked when created)",
  })
  config?: Record<string, unknown> | null;

  @Field(() => [String], { nullable: true, description: 'Keys of the steps whose outputs this one needs' })
  dependsOn?: string[] | null;

  @Field(() => StepKind, { nullable: true, description: 'Overrides the kind the type implies' })
  kind?: StepKind | null;
}

@InputType()
export class CreateWorkflowInput {
  @Field(() => String)
  name!: string;

  @Field(() => [WorkflowStepInput], {
    description: 'A DAG: no cycles, no unknown dependencies, up to 100 steps',
  })
  steps!: WorkflowStepInput[];
}

@ObjectType()
export class WorkflowStep {
  @Field(() => String)
  key!: string;

  @Field(() => String)
  name!: string;

  @Field(() => String)
  type!: string;

  @Field(() => String)
  action!: string;

  @Field(() => GraphQLJSONObject)
  config!: Record<string, unknown>;

  @Field(() => [String])
  dependsOn!: string[];
}

@ObjectType({ description: 'A step in the execution plan' })
export class PlannedStep {
  @Field(() => String)
  key!: string;

  @Field(() => StepKind)
  kind!: StepKind;

  @Field(() => String, { description: 'workflow_io, workflow_cpu or workflow_default' })
  queue!: string;
}

@ObjectType({ description: 'Steps that can run at the same time (their dependencies are in earlier levels)' })
export class PlanLevel {
  @Field(() => [PlannedStep])
  steps!: PlannedStep[];
}

@ObjectType()
export class Workflow {
  @Field(() => ID)
  id!: string;

  @Field(() => String)
  name!: string;

  @Field(() => ID)
  ownerId!: string;

  @Field(() => [WorkflowStep])
  steps!: WorkflowStep[];

  @Field(() => [PlanLevel], { description: 'The execution plan: levels of steps that may run in parallel' })
  plan!: PlanLevel[];

  @Field(() => Date)
  createdAt!: Date;
}

@ObjectType()
export class WorkflowStepRun {
  @Field(() => String)
  key!: string;

  @Field(() => String)
  name!: string;

  @Field(() => String)
  action!: string;

  @Field(() => StepKind)
  kind!: StepKind;

  @Field(() => String)
  queue!: string;

  @Field(() => WorkflowStepStatus)
  status!: string;

  @Field(() => Int)
  attempts!: number;

  @Field(() => Date, { nullable: true })
  queuedAt!: Date | null;

  @Field(() => Date, { nullable: true })
  startedAt!: Date | null;

  @Field(() => Date, { nullable: true })
  finishedAt!: Date | null;

  @Field(() => GraphQLJSON, { nullable: true })
  output!: unknown;

  @Field(() => String, {
    nullable: true,
    description: 'The last failure (also of an attempt that is being retried)',
  })
  error!: string | null;
}

@ObjectType()
export class WorkflowRun {
  @Field(() => ID)
  id!: string;

  @Field(() => ID)
  workflowId!: string;

  @Field(() => ID, { description: 'Whose access the run uses' })
  userId!: string;

  @Field(() => WorkflowRunStatus)
  status!: string;

  @Field(() => GraphQLJSON)
  input!: unknown;

  @Field(() => String, { nullable: true })
  error!: string | null;

  @Field(() => Date)
  createdAt!: Date;

  @Field(() => Date, { nullable: true })
  finishedAt!: Date | null;

  @Field(() => [WorkflowStepRun])
  steps!: WorkflowStepRun[];
}
