import { In, type DataSource } from 'typeorm';
import type { CacheStore } from '../../platform/cache/cache.store';
import { ReadThroughCache, reviveDates } from '../../platform/cache/read-through.cache';
import type { TieredCache } from '../../platform/cache/tiered.cache';
import type { CacheMetrics } from '../../platform/metrics/metrics';
import { CompanyEntity } from './company.entity';
import { ForbiddenError } from '../../platform/errors/app-error';
import { authFailure } from '../kernel';
import type { Principal } from '../kernel';
import { RoleEntity } from './role.entity';
import type { TokenService } from './token.service';
import { UserEntity } from './user.entity';

export interface IdentityServiceOptions {
  dataSource: DataSource;
  cache: CacheStore;
  /**
   * Users, by company: an in-process tier (trusted only while this process hears invalidations) in front of Redis, so
   * authenticating an unchanged user costs no round trip, and a change to a user reaches every process at once.
   */
  users: TieredCache;
  tokens: TokenService;
  /** TTL of cached users, roles and companies. */
  cacheTtlSeconds: number;
  metrics?: CacheMetrics;
}

/**
 * This slice's cache namespace: roles and companies under `crm:identity:{company}:<kind>:<id>`, users in the two-tier
 * cache under `crm:identity:{company}:v<version>:user:<id>` (and its channel `crm:identity:invalidated`).
 */
export const IDENTITY_CACHE = 'identity';

/** Before the module contract users, roles and companies were cached under `crm:entity:`; see formerNamespaces. */
const FORMER_ENTITY_NAMESPACE = ['entity'];

/** Longer than a user lookup takes from Postgres to the cache write that follows it. */
const LATE_INVALIDATION_MS = 1000;

/** Users, roles and companies: token -> principal, and batched, cached lookups for loaders. */
export class IdentityService {
  /** Users as authentication loaded them, per principal object (gone with the request). */
  private readonly authenticatedUsers = new WeakMap<Principal, UserEntity>();

  /**
   * Where the previous release cached users (`crm:identity:{company}:user:<id>`, earlier `crm:entity:`): only
   * invalidated, so its gateways still running during a rolling deploy stop serving what this one changed.
   */
  private readonly formerUserCache: ReadThroughCache<UserEntity>;
  readonly roleCache: ReadThroughCache<RoleEntity>;
  readonly companyCache: ReadThroughCache<CompanyEntity>;

  constructor(private readonly options: IdentityServiceOptions) {
    const shared = {
      store: options.cache,
      namespace: IDENTITY_CACHE,
      formerNamespaces: FORMER_ENTITY_NAMESPACE,
      ttlSeconds: options.cacheTtlSeconds,
      metrics: options.metrics,
    };
    this.formerUserCache = new ReadThroughCache<UserEntity>({ ...shared, kind: 'user', revive: reviveUser });
    this.roleCache = new ReadThroughCache<RoleEntity>({
      ...shared,
      kind: 'role',
      revive: (raw) => reviveDates(raw, ['createdAt']),
    });
    this.companyCache = new ReadThroughCache<CompanyEntity>({
      ...shared,
      kind: 'company',
      revive: (raw) => reviveDates(raw, ['createdAt']),
    });
  }

  /** Verifies the token and that its user belongs to the company it names. */
  async authenticate(token: string): Promise<Principal> {
    const claims = await this.options.tokens.verify(token);
    const [user] = await this.usersByIds(claims.companyId, [claims.userId]);
    if (!user) throw authFailure('UNKNOWN_USER');
    if (user.deactivatedAt) throw authFailure('DEACTIVATED_USER');
    const principal: Principal = {
      userId: user.id,
      companyId: user.companyId,
      roleId: user.roleId,
      isAdmin: user.isAdmin,
      tokenExpiresAt: claims.expiresAt,
    };
    this.authenticatedUsers.set(principal, user);
    return principal;
  }

  /** The user row authentication loaded for this principal (the request's loader starts with it). */
  authenticatedUser(principal: Principal): UserEntity | undefined {
    return this.authenticatedUsers.get(principal);
  }

  /** Users in id order, null where the company has none. The rows are shared between requests: read them only. */
  async usersByIds(companyId: string, ids: readonly string[]): Promise<Array<UserEntity | null>> {
    const { users, dataSource, cacheTtlSeconds } = this.options;
    const load = async (missing: readonly string[]) =>
      byId(await dataSource.getRepository(UserEntity).findBy({ companyId, id: In([...missing]) }));
    if (cacheTtlSeconds === 0) {
      const loaded = await load([...new Set(ids)]);
      return ids.map((id) => loaded.get(id) ?? null);
    }
    const keys = ids.map((id) => `user:${id}`);
    const found = await users.getMany(
      companyId,
      keys,
      cacheTtlSeconds,
      async (missing) => {
        const loaded = await load(missing.map((key) => key.slice('user:'.length)));
        return new Map([...loaded].map(([id, user]) => [`user:${id}`, user]));
      },
      reviveUser,
    );
    return found.map((user) => user ?? null);
  }

  rolesByIds(companyId: string, ids: readonly string[]): Promise<Array<RoleEntity | null>> {
    return this.roleCache.getMany(companyId, ids, async (missing) =>
      byId(await this.options.dataSource.getRepository(RoleEntity).findBy({ companyId, id: In(missing) })),
    );
  }

  async company(companyId: string): Promise<CompanyEntity | null> {
    const [company] = await this.companyCache.getMany(companyId, [companyId], async (missing) =>
      byId(await this.options.dataSource.getRepository(CompanyEntity).findBy({ id: In(missing) })),
    );
    return company ?? null;
  }

  async userExists(companyId: string, userId: string): Promise<boolean> {
    const [user] = await this.usersByIds(companyId, [userId]);
    return user !== null && user !== undefined;
  }

  /** Read from Postgres, not the principal's cached copy: a just-demoted admin must not administer anything. */
  async requireAdmin(principal: Principal, what: string): Promise<void> {
    const [user] = await this.options.dataSource.query<Array<{ is_admin: boolean }>>(
      'SELECT is_admin FROM users WHERE id = $1 AND company_id = $2 AND deactivated_at IS NULL',
      [principal.userId, principal.companyId],
    );
    if (!user?.is_admin) throw new ForbiddenError(`Only company admins may ${what}`);
  }

  findUserByEmail(email: string): Promise<UserEntity | null> {
    return this.options.dataSource.getRepository(UserEntity).findOneBy({ email });
  }

  /**
   * Call after any change to a user (role, admin flag, name, deactivation) so every process reloads it: one version
   * bump of the company's users (an INCR and a pub/sub message) orphans every process's copies at once.
   */
  async invalidateUsers(companyId: string, ids: readonly string[]): Promise<void> {
    await Promise.all([
      this.options.users.invalidateScope(companyId),
      this.formerUserCache.invalidate(companyId, ids),
    ]);
  }

  /**
   * Invalidation for a committed change to users: now, and once more a moment later, because a request that read
   * the old row just before the commit may write it back to the cache just after the first invalidation (into the
   * previous release's keys; in the two-tier cache the version bump already orphans such a write).
   */
  async invalidateUsersAfterCommit(companyId: string, ids: readonly string[]): Promise<void> {
    await this.invalidateUsers(companyId, ids);
    setTimeout(() => {
      this.invalidateUsers(companyId, ids).catch(() => {
        // Best effort: the first invalidation already reached the shared cache.
      });
    }, LATE_INVALIDATION_MS).unref();
  }
}

function reviveUser(raw: unknown): UserEntity {
  return reviveDates(raw as Record<string, unknown>, ['createdAt', 'updatedAt', 'deactivatedAt']);
}

function byId<T extends { id: string }>(rows: T[]): Map<string, T> {
  return new Map(rows.map((row) => [row.id, row]));
}
