import type { z } from 'zod';
import type { DataSource } from 'typeorm';
import type { FieldViolation } from '../../platform/errors/app-error';
import type { Principal, ServiceRegistry } from '../kernel';

// What an action is, what it runs with, and the failure it raises when retrying cannot help.

/** A failure retrying cannot fix (bad data, a 4xx answer, no permission): the step fails at once. */
export class PermanentStepError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PermanentStepError';
  }
}

export interface ActionSettings {
  /** URL prefixes (origin plus optional path) that http.request and notify.webhook may call. */
  httpAllowList: readonly string[];
  /** Signs webhook bodies (`x-crm-signature: sha256=<hex HMAC>`). */
  webhookSecret: string;
}

export interface ActionContext {
  runId: string;
  stepKey: string;
  /** The run's user, as a principal: every CRM read and write of the run is theirs. */
  principal: Principal;
  scope: { input: unknown; steps: Record<string, unknown> };
  signal: AbortSignal;
  timeoutMs: number;
  settings: ActionSettings;
  dataSource: DataSource;
  records: ServiceRegistry['records'];
  visibility: ServiceRegistry['visibility'];
}

export interface ActionDefinition {
  name: string;
  /** `thread`: pure computation, runs in the CPU pool on the CPU queue; `main`: needs services or the network. */
  runsIn: 'thread' | 'main';
  config: z.ZodType<Record<string, unknown>>;
  /** Config keys holding an expression or a mapping of expressions: compiled, and their step reads checked, at create. */
  expressions: readonly string[];
  /** Checks beyond the schema and the expressions (allow-lists), before anything is stored. */
  check?(
    config: Record<string, unknown>,
    settings: ActionSettings,
    field: string,
    violations: FieldViolation[],
  ): void;
  run?(config: Record<string, unknown>, context: ActionContext): Promise<unknown>;
}
