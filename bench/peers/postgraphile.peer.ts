/**
 * The peer that compiles a whole query to one SQL statement: PostGraphile 4 over the bench database's `public`
 * schema, behind the same JWT check, with `me` added by a schema plugin. Queries name the caller's company in a
 * `condition`; PostGraphile applies no record-level sharing. Run by `npm run bench -- --only gateway` as its own
 * process.
 */
import './graphql15';
import type { IncomingMessage } from 'node:http';
import { gql, makeExtendSchemaPlugin, postgraphile } from 'postgraphile';
import { countingPool, listenPeer, peerEnvironment, verifyCaller, type PeerCaller } from './peer-common';

const env = peerEnvironment();
const { pool, statements } = countingPool(env.databaseUrl);

type CallerRequest = IncomingMessage & { caller?: PeerCaller };

/** pg-sql2 (PostGraphile's own SQL builder, handed over on `build`); its fragments go straight back to it. */
interface SqlBuilder {
  fragment: (strings: TemplateStringsArray, ...values: unknown[]) => never;
  value: (value: unknown) => never;
}

/** `me`: the caller's user row, planned by PostGraphile like any other field of `User`. */
const MePlugin = makeExtendSchemaPlugin((build) => {
  const sql = build.pgSql as SqlBuilder;
  return {
    typeDefs: gql`
      extend type Query {
        me: User
      }
    `,
    resolvers: {
      Query: {
        me: async (_parent, _args, context: { caller: PeerCaller }, resolveInfo) => {
          const [row] = (await resolveInfo.graphile.selectGraphQLResultFromTable(
            sql.fragment`public.users`,
            (alias, queryBuilder) => {
              queryBuilder.where(sql.fragment`${alias}.id = ${sql.value(context.caller.userId)}`);
              queryBuilder.where(sql.fragment`${alias}.company_id = ${sql.value(context.caller.companyId)}`);
            },
          )) as unknown[];
          return row ?? null;
        },
      },
    },
  };
});

const handler = postgraphile(pool, 'public', {
  appendPlugins: [MePlugin],
  disableDefaultMutations: true,
  graphiql: false,
  watchPg: false,
  disableQueryLog: true,
  ignoreRBAC: true,
  setofFunctionsContainNulls: false,
  legacyRelations: 'omit',
  additionalGraphQLContextFromRequest: async (req: CallerRequest) => ({ caller: req.caller }),
});

listenPeer('postgraphile', env.port, statements, (req: CallerRequest, res) => {
  void verifyCaller(req.headers.authorization, env.secret).then((caller) => {
    if (!caller) {
      res.statusCode = 401;
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ errors: [{ message: 'Not authenticated' }] }));
      return;
    }
    req.caller = caller;
    void handler(req, res);
  });
});
