import { Ctx, FieldResolver, Query, Resolver, Root } from 'type-graphql';
import { CurrentPrincipal, type RequestContext } from '../kernel';
import { Company, Role, User } from './identity.types';
import type { IdentityService } from './identity.service';
import type { Principal } from '../kernel';
import { authFailure } from '../kernel';

@Resolver(() => User)
export class IdentityResolver {
  constructor(private readonly identity: IdentityService) {}

  @Query(() => User, { description: 'The authenticated caller' })
  async me(@CurrentPrincipal() principal: Principal, @Ctx() context: RequestContext): Promise<User> {
    const user = await context.loaders.user.load(principal.userId);
    if (!user) throw authFailure('UNKNOWN_USER');
    return user;
  }

  @FieldResolver(() => Role, { nullable: true })
  role(@Root() user: User, @Ctx() context: RequestContext): Promise<Role | null> | null {
    return user.roleId ? context.loaders.role.load(user.roleId) : null;
  }

  @FieldResolver(() => Company)
  async company(@Root() user: User): Promise<Company> {
    const company = await this.identity.company(user.companyId);
    if (!company) throw new Error(`company ${user.companyId} of user ${user.id} is missing`);
    return company;
  }
}
