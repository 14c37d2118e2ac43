// Workflows' public face: its module, its service's types and the partitioner (the plan API).
export { workflowsModule, type WorkflowServices } from './workflows.module';
export type { WorkflowService } from './workflow.service';
export type { RunView, WorkflowView } from './workflow.views';
export { WorkflowPartitioner, kindOfType, type ExecutionPlan, type StepDefinition } from './workflow.model';
