/**
 * The peer a team would pick for raw speed: fastify 5 + Mercurius (graphql-jit), hand-written SQL through pg, owners
 * and accounts batched by Mercurius loaders. It checks the same JWT and keeps to the caller's company; it applies no
 * record-level sharing. Run by `npm run bench -- --only gateway` as its own process.
 */
import Fastify from 'fastify';
import mercurius, { type IResolvers, type MercuriusLoaders } from 'mercurius';
import { countingPool, peerEnvironment, verifyCaller, type PeerCaller } from './peer-common';

const SCHEMA = `
  type User { id: ID! name: String! email: String! }
  type Account { id: ID! name: String! }
  type Deal { id: ID! name: String! stage: String! amount: Float! owner: User! account: Account }
  type DealPage { items: [Deal!]! page: Int! pageSize: Int! }
  enum SortDirection { ASC DESC }
  type Query {
    me: User
    deal(id: ID!): Deal
    deals(page: Int = 1, pageSize: Int = 50, sortBy: String = "createdAt", sortDirection: SortDirection = DESC): DealPage!
  }
`;

const SORT_COLUMNS: Record<string, string> = { amount: 'amount', createdAt: 'created_at', name: 'name' };

interface DealRow {
  id: string;
  name: string;
  stage: string;
  amount: string;
  owner_id: string;
  account_id: string | null;
}

declare module 'mercurius' {
  interface MercuriusContext {
    caller: PeerCaller;
  }
}

const env = peerEnvironment();
const { pool, statements } = countingPool(env.databaseUrl);
const DEAL_COLUMNS = 'id, name, stage, amount, owner_id, account_id';

const resolvers: IResolvers = {
  Query: {
    me: async (_root, _args, { caller }) =>
      (
        await pool.query<{ id: string }>(
          'SELECT id, name, email FROM users WHERE id = $1 AND company_id = $2',
          [caller.userId, caller.companyId],
        )
      ).rows[0] ?? null,
    deal: async (_root, { id }: { id: string }, { caller }) =>
      (
        await pool.query<DealRow>(`SELECT ${DEAL_COLUMNS} FROM deals WHERE id = $1 AND company_id = $2`, [
          id,
          caller.companyId,
        ])
      ).rows[0] ?? null,
    deals: async (
      _root,
      args: { page: number; pageSize: number; sortBy: string; sortDirection: 'ASC' | 'DESC' },
      { caller },
    ) => {
      const column = SORT_COLUMNS[args.sortBy];
      if (!column) throw new Error(`sortBy must be one of ${Object.keys(SORT_COLUMNS).join(', ')}`);
      const direction = args.sortDirection === 'ASC' ? 'ASC' : 'DESC';
      const { rows } = await pool.query<DealRow>(
        `SELECT ${DEAL_COLUMNS} FROM deals WHERE company_id = $1
          ORDER BY ${column} ${direction}, id ${direction} LIMIT $2 OFFSET $3`,
        [caller.companyId, args.pageSize, (args.page - 1) * args.pageSize],
      );
      return { items: rows, page: args.page, pageSize: args.pageSize };
    },
  },
  Deal: { amount: (deal: DealRow) => Number(deal.amount) },
};

/** One statement per nested field per request, like the gateway's DataLoaders. */
function byIds(table: 'users' | 'accounts', key: 'owner_id' | 'account_id') {
  return async (queries: Array<{ obj: DealRow }>, { caller }: { caller: PeerCaller }) => {
    const ids = [...new Set(queries.map((q) => q.obj[key]).filter((id): id is string => id !== null))];
    const { rows } = await pool.query<{ id: string }>(
      `SELECT id, name${table === 'users' ? ', email' : ''} FROM ${table} WHERE id = ANY($1) AND company_id = $2`,
      [ids, caller.companyId],
    );
    const found = new Map(rows.map((row) => [row.id, row]));
    return queries.map((q) => (q.obj[key] ? (found.get(q.obj[key]) ?? null) : null));
  };
}

const loaders: MercuriusLoaders = {
  Deal: { owner: byIds('users', 'owner_id'), account: byIds('accounts', 'account_id') },
};

const app = Fastify({ logger: false, keepAliveTimeout: 60_000 });
app.get('/__sql', async () => ({ statements: statements() }));
void app.register(mercurius, {
  schema: SCHEMA,
  resolvers,
  loaders,
  jit: 1,
  graphiql: false,
  context: async (request) => {
    const caller = await verifyCaller(request.headers.authorization, env.secret);
    if (!caller) throw new mercurius.ErrorWithProps('Not authenticated', { code: 'UNAUTHENTICATED' }, 401);
    return { caller };
  },
});
app.listen({ port: env.port, host: '127.0.0.1' }).then(
  (url) => process.stdout.write(`mercurius listening on ${url}\n`),
  (error: unknown) => {
    process.stderr.write(`mercurius failed: ${String(error)}\n`);
    process.exit(1);
  },
);
process.on('SIGTERM', () => void app.close().then(() => process.exit(0)));
