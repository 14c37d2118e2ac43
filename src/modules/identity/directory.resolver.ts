import { Arg, ID, Mutation, Query, Resolver } from 'type-graphql';
import { CurrentPrincipal, type Principal } from '../kernel';
import type { DirectoryService } from './directory.service';
import { CreateUserInput, Group, GroupMemberInput, RoleInput, UserAccessInput } from './directory.types';
import { Role, User } from './identity.types';

/** The company directory for admins: read back and change users, the role tree and groups. */
@Resolver()
export class DirectoryResolver {
  constructor(private readonly directory: DirectoryService) {}

  @Query(() => [User], { description: 'Users of your company (admins)' })
  users(
    @CurrentPrincipal() principal: Principal,
    @Arg('includeDeactivated', () => Boolean, { defaultValue: false }) includeDeactivated: boolean,
  ) {
    return this.directory.listUsers(principal, includeDeactivated);
  }

  @Query(() => [Role], { description: 'The role tree, parents before their children (admins)' })
  roles(@CurrentPrincipal() principal: Principal) {
    return this.directory.listRoles(principal);
  }

  @Query(() => [Group], { description: 'Groups with their members (admins)' })
  groups(@CurrentPrincipal() principal: Principal) {
    return this.directory.listGroups(principal);
  }

  @Mutation(() => User, { description: 'Adds a user to your company (admins)' })
  createUser(
    @CurrentPrincipal() principal: Principal,
    @Arg('input', () => CreateUserInput) input: CreateUserInput,
  ) {
    return this.directory.createUser(principal, input);
  }

  @Mutation(() => User, {
    description:
      'Deactivates a user of your company (admins): their tokens are refused from now on, on every gateway',
  })
  deactivateUser(@CurrentPrincipal() principal: Principal, @Arg('userId', () => ID) userId: string) {
    return this.directory.deactivateUser(principal, userId);
  }

  @Mutation(() => User, { description: "Changes a user's role or admin flag" })
  updateUserAccess(
    @CurrentPrincipal() principal: Principal,
    @Arg('userId', () => ID) userId: string,
    @Arg('input', () => UserAccessInput) input: UserAccessInput,
  ) {
    return this.directory.updateUserAccess(principal, userId, input);
  }

  @Mutation(() => Role)
  createRole(@CurrentPrincipal() principal: Principal, @Arg('input', () => RoleInput) input: RoleInput) {
    return this.directory.createRole(principal, input.name, input.parentId);
  }

  @Mutation(() => Role, {
    description: 'Changes only what is sent; re-parenting that would create a cycle is rejected',
  })
  updateRole(
    @CurrentPrincipal() principal: Principal,
    @Arg('id', () => ID) id: string,
    @Arg('input', () => RoleInput) input: RoleInput,
  ) {
    return this.directory.updateRole(principal, id, input);
  }

  @Mutation(() => Group)
  createGroup(@CurrentPrincipal() principal: Principal, @Arg('name', () => String) name: string) {
    return this.directory.createGroup(principal, name);
  }

  @Mutation(() => Boolean)
  addGroupMember(
    @CurrentPrincipal() principal: Principal,
    @Arg('input', () => GroupMemberInput) input: GroupMemberInput,
  ) {
    return this.directory.addGroupMember(principal, input.groupId, input.memberType, input.memberId);
  }

  @Mutation(() => Boolean)
  removeGroupMember(
    @CurrentPrincipal() principal: Principal,
    @Arg('input', () => GroupMemberInput) input: GroupMemberInput,
  ) {
    return this.directory.removeGroupMember(principal, input.groupId, input.memberType, input.memberId);
  }
}
