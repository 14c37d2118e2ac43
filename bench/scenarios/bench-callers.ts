import { Client } from 'pg';
import { TokenService } from '../../src/modules/identity';

/** A full page of Q2 (`deals(pageSize: 100)`). */
export const Q2_PAGE = 100;

export interface BenchCallers {
  companyId: string;
  dealId: string;
  adminToken: string;
  repToken: string;
  /** The rep's user id, and how many deals they own (below Q2_PAGE only on a small data set). */
  repId: string;
  repOwned: number;
}

/**
 * The bench's callers in the first company: its admin (`user0@company0`) and a rep. The rep is a non-admin, active user
 * owning at least one deal (so their Q2 page is never empty); preferred, as at full scale, is one with nobody in a role
 * below theirs and a page of deals of their own, and among those the one with the most deal rules aimed at them or
 * their role. A small data set (`--scale 0.01`) may hold no such user: the non-admin owning the most deals is taken.
 */
export async function pickBenchCallers(
  databaseUrl: string,
  jwtSecret: string,
  log: (message: string) => void,
): Promise<BenchCallers> {
  const client = new Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    const {
      rows: [admin],
    } = await client.query<{ id: string; company_id: string }>(
      `SELECT id, company_id FROM users WHERE email = 'user0@company0.example.com'`,
    );
    if (!admin) throw new Error('bench data set has no user0@company0.example.com');
    const {
      rows: [rep],
    } = await client.query<{ id: string; rules: number; owned: number; preferred: boolean }>(
      `SELECT id, rules, owned, leaf AND owned >= $2 AS preferred FROM (
         SELECT u.id,
                (SELECT count(*)::int FROM sharing_rules s
                  WHERE s.object_type = 'DEAL' AND s.target_id IN (u.id, u.role_id)) AS rules,
                (SELECT count(*)::int FROM deals d WHERE d.owner_id = u.id) AS owned,
                NOT EXISTS (SELECT 1 FROM roles r WHERE r.parent_id = u.role_id) AS leaf
           FROM users u
          WHERE u.company_id = $1 AND NOT u.is_admin AND u.deactivated_at IS NULL
       ) candidate
       WHERE owned >= 1
       ORDER BY preferred DESC, rules DESC, CASE WHEN leaf AND owned >= $2 THEN 0 ELSE owned END DESC, id
       LIMIT 1`,
      [admin.company_id, Q2_PAGE],
    );
    if (!rep)
      throw new Error('bench data set has no non-admin user owning a deal in company0 (raise --scale)');
    const {
      rows: [deal],
    } = await client.query<{ id: string }>(
      'SELECT id FROM deals WHERE company_id = $1 AND account_id IS NOT NULL ORDER BY id LIMIT 1',
      [admin.company_id],
    );
    if (!deal) throw new Error('bench data set has no deal with an account in company0 (raise --scale)');
    const {
      rows: [defaults],
    } = await client.query<{ access: string }>(
      `SELECT access_level AS access FROM org_wide_defaults WHERE company_id = $1 AND object_type = 'DEAL'`,
      [admin.company_id],
    );
    log(
      `rep ${rep.id}: ${rep.owned} deals of their own${rep.preferred ? '' : ` (fewer than a page of ${Q2_PAGE}, or a role above others: a small data set)`}, ` +
        `${rep.rules} rules aimed at them or their role; deals default ${defaults?.access ?? '?'}`,
    );
    const tokens = new TokenService({ secret: jwtSecret });
    return {
      companyId: admin.company_id,
      dealId: deal.id,
      adminToken: await tokens.mint(admin.id, admin.company_id, 7200),
      repToken: await tokens.mint(rep.id, admin.company_id, 7200),
      repId: rep.id,
      repOwned: rep.owned,
    };
  } finally {
    await client.end();
  }
}
