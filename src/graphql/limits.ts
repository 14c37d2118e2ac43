import { maxAliasesRule } from '@escape.tech/graphql-armor-max-aliases';
import { maxDepthRule } from '@escape.tech/graphql-armor-max-depth';
import { maxDirectivesRule } from '@escape.tech/graphql-armor-max-directives';
import {
  GraphQLError,
  Lexer,
  NoSchemaIntrospectionCustomRule,
  parse,
  Source,
  TokenKind,
  type ASTVisitor,
  type DocumentNode,
  type GraphQLSchema,
  type ParseOptions,
  type ValidationContext,
  type ValidationRule,
} from 'graphql';
import { fieldExtensionsEstimator, getComplexity, simpleEstimator } from 'graphql-query-complexity';
import { ErrorCode } from '../platform/errors/app-error';
import { checkArguments } from './argument-limits';
import { limitError, LimitErrorCode, type OperationLimits } from './operation-limits';

export { LimitErrorCode, type OperationLimits } from './operation-limits';

/**
 * Bracket nesting a document may have before it is parsed: graphql-js's parser recurses per level and overflows the
 * stack a few thousand levels down. Far above any depth the validation rules allow, so they still word the refusal.
 */
const MAX_DOCUMENT_NESTING = 128;

/**
 * Field selections the complexity estimate may visit for one operation. It follows fragment spreads afresh each time
 * (graphql-query-complexity has no memo), so this bound is what keeps a fan-out of fragments linear.
 */
const MAX_COMPLEXITY_NODES = 10_000;

/** Options for graphql-js `parse` (Apollo's `parseOptions`): the token cap stops a huge document before any rule. */
export function createParseOptions(limits: OperationLimits): ParseOptions {
  return { maxTokens: limits.maxTokens };
}

/**
 * A document whose brackets nest deeper than the parser can safely recurse, found by a flat pass of graphql-js's own
 * lexer (no recursion; stops at the token cap, which `parse` then reports).
 */
export function documentNestingError(query: string, limits: OperationLimits): GraphQLError | undefined {
  const lexer = new Lexer(new Source(query));
  let nesting = 0;
  try {
    for (let tokens = 0; tokens <= limits.maxTokens; tokens++) {
      const token = lexer.advance();
      if (token.kind === TokenKind.EOF) return undefined;
      if (
        token.kind === TokenKind.BRACE_L ||
        token.kind === TokenKind.BRACKET_L ||
        token.kind === TokenKind.PAREN_L
      ) {
        if (++nesting > MAX_DOCUMENT_NESTING)
          return limitError(
            LimitErrorCode.QUERY_TOO_DEEP,
            `Query document nests brackets more than ${MAX_DOCUMENT_NESTING} levels deep`,
          );
      } else if (
        token.kind === TokenKind.BRACE_R ||
        token.kind === TokenKind.BRACKET_R ||
        token.kind === TokenKind.PAREN_R
      ) {
        nesting--;
      }
    }
  } catch {
    return undefined; // a syntax error: parse words it
  }
  return undefined;
}

/**
 * graphql-js `parse` with the document limits every transport applies before any rule walks the document: the
 * bracket nesting the parser can take, then the token cap. Throws the GraphQLError to answer.
 */
export function parseDocument(query: string, limits: OperationLimits): DocumentNode {
  const tooDeep = documentNestingError(query, limits);
  if (tooDeep) throw tooDeep;
  return parse(query, createParseOptions(limits));
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

/**
 * The validation rules every transport runs besides graphql-js's `specifiedRules` (Apollo adds those itself; the fast
 * path and graphql-ws add them): the operation limits and, when introspection is off, no `__schema`/`__type`.
 */
export function createValidationRules(
  limits: OperationLimits,
  options: { introspection: boolean },
): ValidationRule[] {
  return [...createLimitRules(limits), ...(options.introspection ? [] : [NoSchemaIntrospectionCustomRule])];
}

interface VariableLimitsInput {
  schema: GraphQLSchema;
  document: DocumentNode;
  variables: Record<string, unknown> | null | undefined;
  operationName?: string | null;
  limits: OperationLimits;
  /** Hears the operation's complexity once it is estimated (for its trace). */
  onComplexity?: (complexity: number) => void;
}

/**
 * Checks that need the variables (page sizes, complexity). Returns the errors; empty means the operation may run.
 * Called by Apollo after the operation is resolved and by graphql-ws before execution.
 */
export function checkVariableLimits(options: VariableLimitsInput): GraphQLError[] {
  return assessOperation(options).errors;
}

/**
 * The variable limits' errors and the operation's complexity (0 when it could not be estimated), estimated once for
 * the complexity budget and for the cost quotas that count it.
 */
export function assessOperation(options: VariableLimitsInput): {
  errors: GraphQLError[];
  complexity: number;
} {
  const variables = options.variables ?? {};
  const { limits } = options;
  const errors: GraphQLError[] = [];
  let complexity = 0;

  const refused = checkArguments(options.schema, options.document, variables, limits);
  if (refused) return { errors: [refused], complexity };

  try {
    complexity = getComplexity({
      schema: options.schema,
      query: options.document,
      variables,
      operationName: options.operationName ?? undefined,
      estimators: [fieldExtensionsEstimator(), simpleEstimator({ defaultComplexity: 1 })],
      maxQueryNodes: MAX_COMPLEXITY_NODES,
    });
    options.onComplexity?.(complexity);
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
  return { errors, complexity };
}
