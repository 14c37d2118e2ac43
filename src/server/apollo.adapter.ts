import { ApolloServer, type ApolloServerPlugin } from '@apollo/server';
import { ApolloServerPluginLandingPageLocalDefault } from '@apollo/server/plugin/landingPage/default';
import {
  ApolloServerPluginCacheControlDisabled,
  ApolloServerPluginLandingPageDisabled,
} from '@apollo/server/plugin/disabled';
import type { OperationCore } from '../graphql/operation';
import { GET_RESPONSE_HEADERS } from '../graphql/persisted-operations';
import type { RequestContext } from '../modules/kernel';

/**
 * Apollo Server as an adapter over the operation core: the core's rules, parse options and error shape, and plugins
 * for the steps Apollo's pipeline has hooks for (variable limits and rate limits, operation metrics, the whole-request status,
 * read-your-writes around mutations, the drain on shutdown).
 */
export function createApollo(
  core: OperationCore,
  options: { sandbox: boolean; drain: () => Promise<unknown> },
): ApolloServer<RequestContext> {
  const limitsPlugin: ApolloServerPlugin<RequestContext> = {
    async requestDidStart() {
      return {
        async didResolveOperation({ document, request, operationName, contextValue }) {
          const { errors, complexity } = core.assess(document, request.variables, operationName);
          if (errors[0]) throw errors[0];
          // A refusal carries its 429 and headers in extensions.http, which Apollo applies to the response.
          const refused = await core.rateLimit(contextValue.principal, complexity);
          if (refused) throw refused;
        },
      };
    },
  };
  const metricsPlugin: ApolloServerPlugin<RequestContext> = {
    async requestDidStart() {
      let finish: (() => void) | undefined;
      return {
        async didResolveOperation({ operation, operationName }) {
          finish = core.startOperation(operation?.operation ?? 'invalid', operationName);
        },
        async willSendResponse() {
          (finish ?? core.startOperation('invalid', null))();
        },
      };
    },
  };
  const wholeRequestStatusPlugin: ApolloServerPlugin<RequestContext> = {
    async requestDidStart() {
      return {
        async willSendResponse({ response, operation }) {
          if (response.body.kind !== 'single') return;
          const { data, errors } = response.body.singleResult;
          const status = errors && core.wholeRequestStatus({ data }, errors, operation?.operation);
          if (!status) return;
          response.http.status = status;
          if (status === 503) response.http.headers.set('retry-after', '1');
        },
      };
    },
  };
  const readYourWritesPlugin: ApolloServerPlugin<RequestContext> = {
    async requestDidStart() {
      return {
        async didResolveOperation({ operation, contextValue }) {
          core.beginExecution(operation?.operation, contextValue.principal);
        },
        async willSendResponse({ operation, contextValue }) {
          await core.settleExecution(operation?.operation, contextValue.principal);
        },
      };
    },
  };
  // A GET answer is one user's view: no shared cache may keep it (persisted-operations.ts, GET_RESPONSE_HEADERS).
  const getCachePlugin: ApolloServerPlugin<RequestContext> = {
    async requestDidStart() {
      return {
        async willSendResponse({ request, response }) {
          if (request.http?.method !== 'GET') return;
          const { headers } = response.http;
          if (!headers.has('cache-control'))
            headers.set('cache-control', GET_RESPONSE_HEADERS['cache-control']);
          const vary = headers.get('vary');
          if (!vary) headers.set('vary', GET_RESPONSE_HEADERS.vary);
          else if (!/authorization/i.test(vary)) headers.set('vary', `${vary}, ${GET_RESPONSE_HEADERS.vary}`);
        },
      };
    },
  };
  const drainPlugin: ApolloServerPlugin<RequestContext> = {
    async serverWillStart() {
      // Apollo serves requests normally while its servers drain; it stops only once this resolves.
      return {
        drainServer: async () => {
          await options.drain();
        },
      };
    },
  };

  return new ApolloServer<RequestContext>({
    schema: core.schema,
    // Introspection is refused by the core's rules, the same rule on every transport (Apollo's own would answer
    // HTTP in other words than graphql-ws and the fast path).
    introspection: true,
    includeStacktraceInErrorResponses: false,
    // The process's lifecycle owns SIGTERM/SIGINT and stops Apollo in its place in the shutdown order.
    stopOnTerminationSignals: false,
    // Compact JSON: Apollo pretty-prints by default, which costs CPU and bytes on every large response.
    stringifyResult: (result) => JSON.stringify(result),
    csrfPrevention: true,
    // APQ and the safelist are the operation core's (persisted-operations.middleware.ts resolves a hash before Apollo
    // sees the request), so they behave the same on the fast path and graphql-ws.
    persistedQueries: false,
    validationRules: [...core.gatewayRules],
    parseOptions: core.parseOptions,
    formatError: (formatted, error) => core.formatError(formatted, error),
    plugins: [
      // No cache hints are used; the default cache-control plugin would wrap every field resolver.
      ApolloServerPluginCacheControlDisabled(),
      metricsPlugin,
      wholeRequestStatusPlugin,
      readYourWritesPlugin,
      drainPlugin,
      limitsPlugin,
      getCachePlugin,
      // GET /graphql for a browser: Apollo Sandbox (GRAPHQL_EXPLORER=sandbox; GraphiQL is served before Apollo).
      options.sandbox
        ? ApolloServerPluginLandingPageLocalDefault({ embed: true, includeCookies: false })
        : ApolloServerPluginLandingPageDisabled(),
    ],
  });
}
