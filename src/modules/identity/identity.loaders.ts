import DataLoader from 'dataloader';
import type { Principal } from '../kernel';
import type { IdentityService } from './identity.service';
import type { RoleEntity } from './role.entity';
import type { UserEntity } from './user.entity';

export interface IdentityLoaders {
  user: DataLoader<string, UserEntity | null>;
  role: DataLoader<string, RoleEntity | null>;
}

declare module '../kernel/registries' {
  // eslint-disable-next-line @typescript-eslint/no-empty-object-type
  interface RequestLoaders extends IdentityLoaders {}
}

/** Loaders scoped to the caller's company; create them per request. */
export function createIdentityLoaders(
  identity: IdentityService,
  principal: Principal | undefined,
  maxBatchSize: number,
): IdentityLoaders {
  const companyId = principal?.companyId;
  const scoped = <T>(load: (companyId: string, ids: readonly string[]) => Promise<Array<T | null>>) =>
    new DataLoader<string, T | null>(
      async (ids) => (companyId ? load(companyId, ids) : ids.map(() => null)),
      {
        maxBatchSize,
      },
    );
  const user = scoped((company, ids) => identity.usersByIds(company, ids));
  // Authentication has just read the caller's row: `me` and `owner` fields naming them need not read it again.
  const caller = principal && identity.authenticatedUser(principal);
  if (caller) user.prime(caller.id, caller);
  return {
    user,
    role: scoped((company, ids) => identity.rolesByIds(company, ids)),
  };
}
