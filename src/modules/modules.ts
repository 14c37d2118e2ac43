import { auditModule } from './audit';
import { exportsModule } from './exports';
import { healthModule } from './health';
import { identityModule } from './identity';
import type { CrmModule } from './kernel';
import { rateLimitsModule } from './rate-limits';
import { recordsModule } from './records';
import { reportsModule } from './reports';
import { searchModule } from './search';
import { sharingModule } from './sharing';
import { vectorsModule } from './vectors';
import { workflowsModule } from './workflows';

/**
 * Every capability of the gateway, in build order: a module's services may use those of the modules above it. Adding a
 * capability is one folder under src/modules/ and one line here.
 */
export const MODULES: readonly CrmModule[] = [
  auditModule,
  identityModule,
  rateLimitsModule,
  sharingModule,
  recordsModule,
  searchModule,
  exportsModule,
  reportsModule,
  vectorsModule,
  workflowsModule,
  healthModule,
];

/** The entities and migrations of every module, for the DataSource (app, typeorm CLI, test setup). */
export function schemaOf(modules: readonly CrmModule[]) {
  return {
    entities: modules.flatMap((module) => module.entities ?? []),
    migrations: modules.flatMap((module) => module.migrations ?? []),
  };
}
