import {
  GraphQLError,
  Kind,
  type ASTVisitor,
  type DocumentNode,
  type FragmentDefinitionNode,
  type GraphQLSchema,
  type OperationDefinitionNode,
  type SelectionSetNode,
  type ValidationContext,
  type ValueNode,
} from 'graphql';
import { fieldExtensionsEstimator, getComplexity, simpleEstimator } from 'graphql-query-complexity';
import { ErrorCode } from '../platform/errors/app-error';

export interface OperationLimits {
  /** Deepest selection nesting allowed (introspection fields excepted). Default 10. */
  maxDepth: number;
  /** Aliased fields allowed per document. Default 15. */
  maxAliases: number;
  /** Complexity budget per operation (type-graphql `complexity` on fields; lists multiply by page size). */
  maxComplexity: number;
  /** Largest `pageSize`/`first` any argument may ask for. Default 200. */
  maxPageSize: number;
}

const PAGE_ARGUMENTS = new Set(['pageSize', 'first', 'limit']);

function limitError(code: ErrorCode, message: string): GraphQLError {
  return new GraphQLError(message, { extensions: { code, http: { status: 400 } } });
}

function selectionDepth(
  selectionSet: SelectionSetNode | undefined,
  fragments: Map<string, FragmentDefinitionNode>,
  visited: Set<string>,
): number {
  if (!selectionSet) return 0;
  let deepest = 0;
  for (const selection of selectionSet.selections) {
    if (selection.kind === Kind.FIELD) {
      if (selection.name.value.startsWith('__')) continue;
      deepest = Math.max(deepest, 1 + selectionDepth(selection.selectionSet, fragments, visited));
    } else if (selection.kind === Kind.INLINE_FRAGMENT) {
      deepest = Math.max(deepest, selectionDepth(selection.selectionSet, fragments, visited));
    } else {
      const name = selection.name.value;
      const fragment = fragments.get(name);
      if (!fragment || visited.has(name)) continue;
      visited.add(name);
      deepest = Math.max(deepest, selectionDepth(fragment.selectionSet, fragments, visited));
      visited.delete(name);
    }
  }
  return deepest;
}

/** Validation rules that need no variables: run by Apollo (`validationRules`) and by graphql-ws alike. */
export function createLimitRules(limits: OperationLimits): Array<(context: ValidationContext) => ASTVisitor> {
  const depthRule = (context: ValidationContext): ASTVisitor => {
    const document = context.getDocument();
    const fragments = new Map(
      document.definitions
        .filter((d): d is FragmentDefinitionNode => d.kind === Kind.FRAGMENT_DEFINITION)
        .map((d) => [d.name.value, d]),
    );
    return {
      OperationDefinition(operation: OperationDefinitionNode) {
        const depth = selectionDepth(operation.selectionSet, fragments, new Set());
        if (depth > limits.maxDepth) {
          context.reportError(
            limitError(
              ErrorCode.QUERY_TOO_DEEP,
              `Query depth ${depth} exceeds the limit of ${limits.maxDepth}`,
            ),
          );
        }
      },
    };
  };
  const aliasRule = (context: ValidationContext): ASTVisitor => {
    let aliases = 0;
    return {
      Field(node) {
        if (node.alias) aliases++;
      },
      Document: {
        leave() {
          if (aliases > limits.maxAliases) {
            context.reportError(
              limitError(
                ErrorCode.TOO_MANY_ALIASES,
                `Query uses ${aliases} aliases; the limit is ${limits.maxAliases}`,
              ),
            );
          }
        },
      },
    };
  };
  return [depthRule, aliasRule];
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
              limitError(ErrorCode.PAGE_SIZE_TOO_LARGE, `${oversized} must be at most ${limits.maxPageSize}`),
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
    });
    if (complexity > limits.maxComplexity) {
      errors.push(
        limitError(
          ErrorCode.QUERY_TOO_COMPLEX,
          `Query complexity ${complexity} exceeds the budget of ${limits.maxComplexity}; ask for fewer fields or smaller pages`,
        ),
      );
    }
  } catch (error) {
    errors.push(limitError(ErrorCode.BAD_USER_INPUT, (error as Error).message));
  }
  return errors;
}
