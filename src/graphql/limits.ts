import { maxAliasesRule } from '@escape.tech/graphql-armor-max-aliases';
import { maxDepthRule } from '@escape.tech/graphql-armor-max-depth';
import { maxDirectivesRule } from '@escape.tech/graphql-armor-max-directives';
import {
  GraphQLError,
  Kind,
  type ASTVisitor,
  type DocumentNode,
  type GraphQLSchema,
  type ParseOptions,
  type SelectionSetNode,
  type ValidationContext,
  type ValueNode,
} from 'graphql';
import { fieldExtensionsEstimator, getComplexity, simpleEstimator } from 'graphql-query-complexity';
import { ErrorCode } from '../platform/errors/app-error';

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
}

/**
 * Field selections the complexity estimate may visit for one operation. It follows fragment spreads afresh each time
 * (graphql-query-complexity has no memo), so this bound is what keeps a fan-out of fragments linear.
 */
const MAX_COMPLEXITY_NODES = 10_000;
const PAGE_ARGUMENTS = new Set(['pageSize', 'first', 'limit']);

/** The codes of the operation limits (this layer's own, beside platform's shared ones). */
export const LimitErrorCode = {
  QUERY_TOO_DEEP: 'QUERY_TOO_DEEP',
  TOO_MANY_ALIASES: 'TOO_MANY_ALIASES',
  TOO_MANY_DIRECTIVES: 'TOO_MANY_DIRECTIVES',
  QUERY_TOO_LARGE: 'QUERY_TOO_LARGE',
  QUERY_TOO_COMPLEX: 'QUERY_TOO_COMPLEX',
  PAGE_SIZE_TOO_LARGE: 'PAGE_SIZE_TOO_LARGE',
} as const;

function limitError(code: string, message: string): GraphQLError {
  return new GraphQLError(message, { extensions: { code, http: { status: 400 } } });
}

/** Options for graphql-js `parse`: the token cap stops a huge document before any rule walks it. */
export function createParseOptions(limits: OperationLimits): ParseOptions {
  return { maxTokens: limits.maxTokens };
}

/** graphql-armor's visitors report through callbacks; the gateway reports its own codes and wording. */
function reportAs(code: string, describe: (found: string) => string) {
  return {
    exposeLimits: true,
    propagateOnRejection: false,
    onReject: [
      (context: ValidationContext | null, error: GraphQLError) => {
        const found = /found (\d+)/.exec(error.message)?.[1] ?? 'more';
        context?.reportError(limitError(code, describe(found)));
      },
    ],
  };
}

/**
 * Validation rules that need no variables: run by Apollo (`validationRules`) and by graphql-ws alike. Each runs in
 * time linear in the document: graphql-armor's visitors compute every fragment once and reuse the result per spread.
 */
export function createLimitRules(limits: OperationLimits): Array<(context: ValidationContext) => ASTVisitor> {
  const fragmentCount = (context: ValidationContext): ASTVisitor => {
    let fragments = 0;
    return {
      FragmentDefinition() {
        fragments++;
        if (fragments === limits.maxFragments + 1) {
          context.reportError(
            limitError(
              LimitErrorCode.QUERY_TOO_LARGE,
              `Query document defines more than ${limits.maxFragments} fragments`,
            ),
          );
        }
      },
    };
  };
  return [
    fragmentCount,
    maxDepthRule({
      n: limits.maxDepth,
      ignoreIntrospection: true,
      flattenFragments: true,
      ...reportAs(
        LimitErrorCode.QUERY_TOO_DEEP,
        (found) => `Query depth ${found} exceeds the limit of ${limits.maxDepth}`,
      ),
    }),
    maxDepthRule({
      n: limits.maxIntrospectionDepth,
      ignoreIntrospection: false,
      flattenFragments: true,
      ...reportAs(
        LimitErrorCode.QUERY_TOO_DEEP,
        (found) =>
          `Query depth ${found} (introspection included) exceeds the limit of ${limits.maxIntrospectionDepth}`,
      ),
    }),
    maxAliasesRule({
      n: limits.maxAliases,
      allowList: [],
      ...reportAs(
        LimitErrorCode.TOO_MANY_ALIASES,
        (found) => `Query uses ${found} aliases; the limit is ${limits.maxAliases}`,
      ),
    }),
    maxDirectivesRule({
      n: limits.maxDirectives,
      ...reportAs(
        LimitErrorCode.TOO_MANY_DIRECTIVES,
        (found) => `Query uses ${found} directives; the limit is ${limits.maxDirectives}`,
      ),
    }),
  ];
}

function findOversizedPage(value: unknown, path: string, max: number): string | undefined {
  if (Array.isArray(value)) {
    for (const [index, item] of value.entries()) {
      const found = findOversizedPage(item, `${path}[${index}]`, max);
      if (found) return found;
    }
  } else if (value && typeof value === 'object') {
    for (const [key, inner] of Object.entries(value)) {
      if (PAGE_ARGUMENTS.has(key) && typeof inner === 'number' && inner > max) return `${path}.${key}`;
      const found = findOversizedPage(inner, `${path}.${key}`, max);
      if (found) return found;
    }
  }
  return undefined;
}

function astValue(node: ValueNode, variables: Record<string, unknown>): unknown {
  switch (node.kind) {
    case Kind.VARIABLE:
      return variables[node.name.value];
    case Kind.INT:
    case Kind.FLOAT:
      return Number(node.value);
    case Kind.LIST:
      return node.values.map((v) => astValue(v, variables));
    case Kind.OBJECT:
      return Object.fromEntries(node.fields.map((f) => [f.name.value, astValue(f.value, variables)]));
    default:
      return undefined;
  }
}

/**
 * Checks that need the variables (page sizes, complexity). Returns the errors; empty means the operation may run.
 * Called by Apollo after the operation is resolved and by graphql-ws before execution.
 */
export function checkVariableLimits(options: {
  schema: GraphQLSchema;
  document: DocumentNode;
  variables: Record<string, unknown> | null | undefined;
  operationName?: string | null;
  limits: OperationLimits;
}): GraphQLError[] {
  const variables = options.variables ?? {};
  const { limits } = options;
  const errors: GraphQLError[] = [];

  const visitArguments = (selectionSet: SelectionSetNode | undefined) => {
    if (!selectionSet || errors.length > 0) return;
    for (const selection of selectionSet.selections) {
      if (selection.kind === Kind.FIELD) {
        for (const argument of selection.arguments ?? []) {
          const value = astValue(argument.value, variables);
          const name = argument.name.value;
          const oversized =
            PAGE_ARGUMENTS.has(name) && typeof value === 'number' && value > limits.maxPageSize
              ? `${selection.name.value}.${name}`
              : findOversizedPage(value, `${selection.name.value}.${name}`, limits.maxPageSize);
          if (oversized) {
            errors.push(
              limitError(
                LimitErrorCode.PAGE_SIZE_TOO_LARGE,
                `${oversized} must be at most ${limits.maxPageSize}`,
              ),
            );
            return;
          }
        }
      }
      if ('selectionSet' in selection) visitArguments(selection.selectionSet);
    }
  };
  for (const definition of options.document.definitions) {
    if (definition.kind === Kind.OPERATION_DEFINITION || definition.kind === Kind.FRAGMENT_DEFINITION) {
      visitArguments(definition.selectionSet);
    }
  }
  if (errors.length > 0) return errors;

  try {
    const complexity = getComplexity({
      schema: options.schema,
      query: options.document,
      variables,
      operationName: options.operationName ?? undefined,
      estimators: [fieldExtensionsEstimator(), simpleEstimator({ defaultComplexity: 1 })],
      maxQueryNodes: MAX_COMPLEXITY_NODES,
    });
    if (complexity > limits.maxComplexity) {
      errors.push(
        limitError(
          LimitErrorCode.QUERY_TOO_COMPLEX,
          `Query complexity ${complexity} exceeds the budget of ${limits.maxComplexity}; ask for fewer fields or smaller pages`,
        ),
      );
    }
  } catch (error) {
    const tooManyNodes = /maximum allowed number of nodes/.test((error as Error).message);
    errors.push(
      tooManyNodes
        ? limitError(
            LimitErrorCode.QUERY_TOO_COMPLEX,
            `Query selects more than ${MAX_COMPLEXITY_NODES} fields once its fragments are expanded`,
          )
        : limitError(ErrorCode.BAD_USER_INPUT, (error as Error).message),
    );
  }
  return errors;
}
