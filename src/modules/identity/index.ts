// Identity's public face: its module, its services' types, and what other slices and the transport use of it.
export { identityModule, type IdentityServices } from './identity.module';
export type { IdentityService } from './identity.service';
export type { DirectoryService, AccessChangeListener } from './directory.service';
export { TokenService } from './token.service';
/** The transport reads the bearer token; other slices return users and name group member kinds. */
export { parseBearer } from './token.service';
export { User } from './identity.types';
export { GroupMemberType } from './group.entity';
export { UserEntity } from './user.entity';
