import { In } from 'typeorm';
import type { CacheStore } from '../../platform/cache/cache.store';
import { ReadThroughCache, reviveDates } from '../../platform/cache/read-through.cache';
import { ValidationError } from '../../platform/errors/app-error';
import type { CacheMetrics } from '../../platform/metrics/metrics';
import type { Principal } from '../kernel';
import { AccountEntity } from './account.entity';
import { DealEntity } from './deal.entity';
import { LeadEntity } from './lead.entity';
import { RecordType } from '../kernel';
import type { RecordChangeFeed } from './record-changes';
import { RecordService, type RecordServiceDeps } from './record-type.service';

/** This slice's cache namespace (accounts): keys `crm:records:{company}:account:...`. */
export const RECORDS_CACHE = 'records';

/** Accounts are hot and small: loaders read them through the shared entity cache, then apply visibility. */
export class AccountService extends RecordService<AccountEntity> {
  readonly cache: ReadThroughCache<AccountEntity>;

  constructor(deps: RecordServiceDeps, cache: CacheStore, ttlSeconds: number, metrics?: CacheMetrics) {
    const accountCache = new ReadThroughCache<AccountEntity>({
      metrics,
      store: cache,
      namespace: RECORDS_CACHE,
      // Before the module contract accounts were cached under `crm:entity:` (see formerNamespaces).
      formerNamespaces: ['entity'],
      kind: 'account',
      ttlSeconds,
      revive: (raw) => reviveDates(raw, ['createdAt', 'updatedAt']),
    });
    super(
      {
        objectType: RecordType.ACCOUNT,
        label: 'Account',
        entity: AccountEntity,
      },
      deps,
      undefined,
      (principal, id) => accountCache.invalidate(principal.companyId, [id]),
    );
    this.cache = accountCache;
  }

  /** Readable accounts in key order (null where missing or hidden), served from the shared cache when warm. */
  async loadReadable(principal: Principal, ids: readonly string[]): Promise<Array<AccountEntity | null>> {
    const rows = await this.cache.getMany(principal.companyId, ids, async (missing) => {
      const found = await this.repository().findBy({ companyId: principal.companyId, id: In(missing) });
      return new Map(found.map((row) => [row.id, row]));
    });
    const readable = await this.deps.visibility.readableIds(
      principal,
      RecordType.ACCOUNT,
      rows.filter((row): row is AccountEntity => row !== null),
    );
    return rows.map((row) => (row && readable.has(row.id) ? row : null));
  }
}

export interface RecordServices {
  leads: RecordService<LeadEntity>;
  deals: RecordService<DealEntity>;
  accounts: AccountService;
  /** Every committed record write, in this process. */
  changes: RecordChangeFeed;
}

export function createRecordServices(
  deps: RecordServiceDeps,
  cache: CacheStore,
  cacheTtlSeconds: number,
  metrics?: CacheMetrics,
): RecordServices {
  const accounts = new AccountService(deps, cache, cacheTtlSeconds, metrics);
  const leads = new RecordService<LeadEntity>(
    {
      objectType: RecordType.LEAD,
      label: 'Lead',
      entity: LeadEntity,
    },
    deps,
  );
  const deals = new RecordService<DealEntity>(
    {
      objectType: RecordType.DEAL,
      label: 'Deal',
      entity: DealEntity,
      embeds: [
        { field: 'account', entity: AccountEntity, foreignKey: 'accountId', readableAs: RecordType.ACCOUNT },
      ],
    },
    deps,
    // Only a create or update that sets accountId must name an account the writer can see; editing other fields of
    // a deal whose account the editor cannot see needs EDIT on the deal alone.
    async (principal, changes, existingId) => {
      if (!changes.accountId) return;
      // A form that sends the deal back unchanged keeps an account the editor may not see.
      if (existingId) {
        const current = await deps.dataSource.getRepository(DealEntity).findOne({
          select: { accountId: true },
          where: { id: existingId, companyId: principal.companyId },
        });
        if (current?.accountId === changes.accountId) return;
      }
      const [account] = await accounts.byIds(principal, [changes.accountId]);
      if (!account)
        throw ValidationError.single('input.accountId', 'must be the id of an account you can see');
    },
  );
  return { leads, deals, accounts, changes: deps.changes };
}
