// type-graphql's decorators need the metadata polyfill before any slice declares a type; every slice imports the kernel first.
import 'reflect-metadata';

export * from './record.enums';
export {
  FIELD_CATALOG,
  RECORD_TABLE,
  fieldsFor,
  findField,
  type FieldKind,
  type FieldSpec,
  type FieldUses,
} from './field-catalog';
export type { Principal } from './principal';
export { AuthFailure, authFailure } from './auth.errors';
export { CurrentPrincipal, type RequestContext } from './request-context';
export type { RequestLoaders, ServiceRegistry } from './registries';
export {
  defineModule,
  requireService,
  type CrmModule,
  type ModuleContext,
  type ModuleDrivers,
  type ModulePoolOptions,
  type ProcessRole,
  type ResolverBinding,
  type ProcessorBinding,
  type ScheduledJob,
  type BenchScenario,
  type BenchContext,
  type BenchProcess,
  type BenchResult,
  type LatencyStats,
  type LoaderOptions,
} from './module';
export { graphqlEnum, type EnumValue } from './graphql-enum';
export { scalarProblem, isRealDay, isTimeZone, SQL_CAST, bindableValue, bindNamed } from './field-values';
export {
  FilterOperator,
  SortDirection,
  RecordFilter,
  RecordSort,
  validateFilters,
  filterViolations,
  filtersToSql,
  sortToSql,
} from './record-filter';
export { millionRecordSizes, pickBenchUsers, type BenchUser } from './bench-users';
