import { GraphQLError } from 'graphql';
import type { AppConfig } from '../config/config';

export interface OperationLimits {
  /** Deepest selection nesting allowed outside `__schema` (leaves count; fragments add no level). Default 10. */
  maxDepth: number;
  /**
   * Deepest nesting allowed for a whole operation, introspection included. The introspection query graphql-js,
   * Sandbox and codegen send is 15 deep. Default 20.
   */
  maxIntrospectionDepth: number;
  /** Aliased fields allowed per operation, counted through fragments. Default 15. */
  maxAliases: number;
  /** Directives allowed per operation, counted through fragments. Default 50. */
  maxDirectives: number;
  /** Lexical tokens allowed in one document; parsing stops at the first token over. Default 5000. */
  maxTokens: number;
  /** Fragment definitions allowed in one document. Default 100. */
  maxFragments: number;
  /** Complexity budget per operation (type-graphql `complexity` on fields; lists multiply by page size). */
  maxComplexity: number;
  /** Largest `pageSize`/`first` any argument may ask for. Default 200. */
  maxPageSize: number;
  /**
   * Deepest nesting of one argument's value (input objects, lists and JSON values, literal or variable; the argument
   * itself is level 0). Default 32.
   */
  maxInputDepth: number;
  /** Values (objects, lists, strings, numbers, booleans, nulls) one argument's JSON-scalar values may hold. Default 100,000. */
  maxJsonValues: number;
}

/** The codes of the operation limits (this layer's own, beside platform's shared ones). */
export const LimitErrorCode = {
  QUERY_TOO_DEEP: 'QUERY_TOO_DEEP',
  TOO_MANY_ALIASES: 'TOO_MANY_ALIASES',
  TOO_MANY_DIRECTIVES: 'TOO_MANY_DIRECTIVES',
  QUERY_TOO_LARGE: 'QUERY_TOO_LARGE',
  QUERY_TOO_COMPLEX: 'QUERY_TOO_COMPLEX',
  PAGE_SIZE_TOO_LARGE: 'PAGE_SIZE_TOO_LARGE',
} as const;

export function limitError(code: string, message: string): GraphQLError {
  return new GraphQLError(message, { extensions: { code, http: { status: 400 } } });
}

/** The limits a deployment configured (GRAPHQL_MAX_*). */
export function operationLimits(graphql: AppConfig['graphql']): OperationLimits {
  return {
    maxDepth: graphql.maxDepth,
    maxIntrospectionDepth: graphql.maxIntrospectionDepth,
    maxAliases: graphql.maxAliases,
    maxDirectives: graphql.maxDirectives,
    maxTokens: graphql.maxTokens,
    maxFragments: graphql.maxFragments,
    maxComplexity: graphql.maxComplexity,
    maxPageSize: graphql.maxPageSize,
    maxInputDepth: graphql.maxInputDepth,
    maxJsonValues: graphql.maxJsonValues,
  };
}
