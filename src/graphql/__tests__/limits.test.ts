import 'reflect-metadata';
import {
  getIntrospectionQuery,
  parse,
  specifiedRules,
  validate,
  type GraphQLError,
  type GraphQLSchema,
} from 'graphql';
import { checkVariableLimits, createLimitRules, createParseOptions } from '../limits';
import { operationLimits } from '../operation-limits';
import { loadConfig } from '../../config/config';
import { MODULES } from '../../modules/modules';
import { buildGatewaySchema, resolverBindings } from '../schema';

/** The documented defaults (GRAPHQL_MAX_* unset). */
const LIMITS = operationLimits(loadConfig({}).graphql);

/** `{ me { ...F<levels-1> } }` where every fragment spreads the one below twice: 2^levels paths, ~6 tokens a level. */
function fragmentFanOut(levels: number): string {
  const fragments = ['fragment F0 on User { id name }'];
  for (let i = 1; i < levels; i++) fragments.push(`fragment F${i} on User { ...F${i - 1} ...F${i - 1} }`);
  return `{ me { ...F${levels - 1} } } ${fragments.join(' ')}`;
}

function nested(levels: number, open: string, leaf: string): string {
  return `${open.repeat(levels)} ${leaf} ${'}'.repeat(levels)}`;
}

describe('operation limits (validation rules, parse options, variable checks)', () => {
  let schema: GraphQLSchema;

  beforeAll(async () => {
    schema = await buildGatewaySchema(resolverBindings(MODULES));
  });

  /** Parses with the gateway's options and runs every validation and variable check; returns the errors and time. */
  function check(query: string, limits = LIMITS): { errors: readonly GraphQLError[]; ms: number } {
    const started = performance.now();
    let errors: readonly GraphQLError[];
    try {
      const document = parse(query, createParseOptions(limits));
      errors = validate(schema, document, [...specifiedRules, ...createLimitRules(limits)]);
      if (errors.length === 0) errors = checkVariableLimits({ schema, document, variables: {}, limits });
    } catch (error) {
      errors = [error as GraphQLError];
    }
    return { errors, ms: performance.now() - started };
  }

  const codes = (errors: readonly GraphQLError[]) => errors.map((e) => e.extensions?.code ?? e.message);

  it('rejects a 30-level fragment fan-out in well under a second (it froze the process for minutes)', () => {
    const { errors, ms } = check(fragmentFanOut(30));
    // Depth is 3 and there are no aliases: what stops it is the complexity walk's node cap.
    expect(codes(errors)).toEqual(['QUERY_TOO_COMPLEX']);
    expect(errors[0]!.message).toMatch(/more than 10000 fields once its fragments are expanded/);
    expect(ms).toBeLessThan(1000);
  });

  it('counts aliases through every spread of a fan-out without walking it (2^29 aliases, linear time)', () => {
    const query = fragmentFanOut(30).replace(
      'fragment F0 on User { id name }',
      'fragment F0 on User { a: id }',
    );
    const { errors, ms } = check(query);
    expect(codes(errors)).toContain('TOO_MANY_ALIASES');
    expect(errors.find((e) => e.extensions?.code === 'TOO_MANY_ALIASES')!.message).toMatch(
      /Query uses 536870912 aliases; the limit is 15/,
    );
    expect(ms).toBeLessThan(1000);
  });

  it('measures depth through fragments once per fragment (a deep chain of fragments is cheap to reject)', () => {
    const fragments = ['fragment D0 on User { role { name } }'];
    for (let i = 1; i < 40; i++) fragments.push(`fragment D${i} on User { ...D${i - 1} ...D${i - 1} }`);
    const { errors } = check(`{ deals { items { owner { ...D39 } } } } ${fragments.join(' ')}`, {
      ...LIMITS,
      maxDepth: 4,
    });
    expect(errors[0]?.extensions?.code).toBe('QUERY_TOO_DEEP');
    expect(errors[0]?.message).toMatch(/Query depth 5 exceeds the limit of 4/);
  });

  it('applies a depth limit to introspection: 40 levels are refused, the standard introspection query passes', () => {
    const deep = `{ __schema { types { fields { type { ${nested(36, 'ofType {', 'name')} } } } } }`;
    const rejected = check(deep);
    expect(codes(rejected.errors)).toEqual(['QUERY_TOO_DEEP']);
    expect(rejected.errors[0]!.message).toMatch(/introspection included\) exceeds the limit of 20/);

    for (const options of [{}, { descriptions: true, specifiedByUrl: true, inputValueDeprecation: true }]) {
      expect(check(getIntrospectionQuery(options)).errors).toEqual([]);
    }
    // __type is not exempt from the ordinary limit either.
    const deepType = `{ __type(name: "Lead") { fields { type { ${nested(10, 'ofType {', 'name')} } } } }`;
    expect(codes(check(deepType).errors)).toContain('QUERY_TOO_DEEP');
  });

  it('stops parsing a document over the token limit before any rule walks it', () => {
    const huge = `{ ${Array.from({ length: 3000 }, () => '__typename').join(' ')} }`;
    const { errors, ms } = check(huge, { ...LIMITS, maxTokens: 1000 });
    expect(errors).toHaveLength(1);
    expect(errors[0]!.message).toMatch(/Document contains more th(at|an) 1000 tokens/);
    expect(ms).toBeLessThan(1000);
  });

  it('caps the number of fragment definitions and of directives', () => {
    const manyFragments = `{ me { ...G0 } } ${Array.from({ length: 101 }, (_, i) => `fragment G${i} on User { id }`).join(' ')}`;
    expect(codes(check(manyFragments).errors)).toContain('QUERY_TOO_LARGE');
    const manyDirectives = `{ me { ${Array.from({ length: 51 }, () => 'id @include(if: true)').join(' ')} } }`;
    const { errors } = check(manyDirectives);
    expect(codes(errors)).toEqual(['TOO_MANY_DIRECTIVES']);
    expect(errors[0]!.message).toMatch(/51 directives; the limit is 50/);
  });

  it('passes ordinary queries untouched (depth 10, 15 aliases, fragments reused)', () => {
    const fifteen = Array.from({ length: 15 }, (_, i) => `m${i}: me { ...U }`).join(' ');
    expect(check(`{ ${fifteen} } fragment U on User { id name role { name } }`).errors).toEqual([]);
    expect(
      check('{ deals(pageSize: 100) { items { id owner { name } account { name owner { name } } } } }')
        .errors,
    ).toEqual([]);
  });
});
