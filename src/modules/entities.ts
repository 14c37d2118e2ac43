import { AuditLogEntity } from './audit/audit-log.entity';
import { CompanyEntity } from './identity/company.entity';
import { GroupEntity, GroupMemberEntity } from './identity/group.entity';
import { RoleEntity } from './identity/role.entity';
import { UserEntity } from './identity/user.entity';
import { AccountEntity } from './records/account.entity';
import { DealEntity } from './records/deal.entity';
import { LeadEntity } from './records/lead.entity';
import { OrgWideDefaultEntity, RecordShareEntity, SharingRuleEntity } from './sharing/sharing.entities';

/** Every TypeORM entity of every module, for the DataSource (the app's and ormconfig.ts). */
export const ENTITIES = [
  CompanyEntity,
  RoleEntity,
  UserEntity,
  GroupEntity,
  GroupMemberEntity,
  AccountEntity,
  LeadEntity,
  DealEntity,
  OrgWideDefaultEntity,
  SharingRuleEntity,
  RecordShareEntity,
  AuditLogEntity,
];
