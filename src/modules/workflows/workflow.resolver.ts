import { GraphQLJSON } from 'graphql-scalars';
import { Arg, Ctx, ID, Mutation, Query, Resolver, Root, Subscription } from 'type-graphql';
import type { SubscribeResolverData } from 'type-graphql';
import { CurrentPrincipal, authFailure, type Principal, type RequestContext } from '../kernel';
import type { RunView, WorkflowView } from './workflow.views';
import type { WorkflowService } from './workflow.service';
import { CreateWorkflowInput, Workflow, WorkflowRun } from './workflow.types';

/** The GraphQL shape of a workflow: the plan as levels. */
const toGraphQL = (view: WorkflowView) => ({ ...view, plan: view.plan.levels.map((steps) => ({ steps })) });

@Resolver()
export class WorkflowResolver {
  constructor(private readonly service: WorkflowService) {}

  @Mutation(() => Workflow, {
    description: 'Defines a workflow of your company (validated as a DAG of known actions)',
  })
  async createWorkflow(
    @CurrentPrincipal() principal: Principal,
    @Arg('input', () => CreateWorkflowInput) input: CreateWorkflowInput,
  ) {
    return toGraphQL(await this.service.createWorkflow(principal, input));
  }

  @Query(() => Workflow)
  async workflow(@CurrentPrincipal() principal: Principal, @Arg('id', () => ID) id: string) {
    return toGraphQL(await this.service.workflow(principal, id));
  }

  @Query(() => [Workflow], { description: "Your company's workflows, newest first" })
  async workflows(@CurrentPrincipal() principal: Principal) {
    return (await this.service.workflows(principal)).map(toGraphQL);
  }

  @Mutation(() => WorkflowRun, { description: 'Runs a workflow as you (its CRM steps have your access)' })
  runWorkflow(
    @CurrentPrincipal() principal: Principal,
    @Arg('id', () => ID) id: string,
    @Arg('input', () => GraphQLJSON, { nullable: true, description: 'Up to 1 MB of JSON' }) input: unknown,
  ): Promise<RunView> {
    return this.service.runWorkflow(principal, id, input ?? {});
  }

  @Mutation(() => WorkflowRun, {
    description: 'Stops a run: queued steps never start, running ones are stopped',
  })
  cancelWorkflowRun(
    @CurrentPrincipal() principal: Principal,
    @Arg('id', () => ID) id: string,
  ): Promise<RunView> {
    return this.service.cancelWorkflowRun(principal, id);
  }

  @Query(() => WorkflowRun, {
    description: 'A run of yours (admins: any run of the company), with every step',
  })
  workflowRun(@CurrentPrincipal() principal: Principal, @Arg('id', () => ID) id: string): Promise<RunView> {
    return this.service.workflowRun(principal, id);
  }

  /** The run as it is, then after every step transition, ending with the run's final status. */
  @Subscription(() => WorkflowRun, {
    subscribe: ({ args, context }: SubscribeResolverData<unknown, { runId: string }, RequestContext>) => {
      const principal = context.principal;
      if (!principal) throw authFailure('MISSING_TOKEN');
      return context.services.workflows.follow(principal, args.runId);
    },
  })
  workflowRunUpdated(
    @Root() run: RunView,
    @Arg('runId', () => ID) _runId: string,
    @Ctx() _context: RequestContext,
  ): RunView {
    return run;
  }
}
