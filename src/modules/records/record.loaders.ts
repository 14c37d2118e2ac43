import DataLoader from 'dataloader';
import type { Principal } from '../kernel';
import type { AccountEntity } from './account.entity';
import type { RecordServices } from './record-services';

export interface RecordLoaders {
  account: DataLoader<string, AccountEntity | null>;
}

declare module '../kernel/registries' {
  // eslint-disable-next-line @typescript-eslint/no-empty-object-type
  interface RequestLoaders extends RecordLoaders {}
}

/** Per-request loaders; the account loader applies the caller's visibility, so it must never be shared. */
export function createRecordLoaders(
  records: RecordServices,
  principal: Principal | undefined,
  maxBatchSize: number,
): RecordLoaders {
  return {
    account: new DataLoader<string, AccountEntity | null>(
      async (ids) => (principal ? records.accounts.loadReadable(principal, ids) : ids.map(() => null)),
      { maxBatchSize },
    ),
  };
}
