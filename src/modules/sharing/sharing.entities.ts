import {
  Column,
  CreateDateColumn,
  Entity,
  PrimaryColumn,
  PrimaryGeneratedColumn,
  UpdateDateColumn,
} from 'typeorm';
import type { RecordType } from '../kernel';

export const OrgWideAccess = {
  PRIVATE: 'PRIVATE',
  PUBLIC_READ: 'PUBLIC_READ',
  PUBLIC_READ_WRITE: 'PUBLIC_READ_WRITE',
} as const;
export type OrgWideAccess = (typeof OrgWideAccess)[keyof typeof OrgWideAccess];

export const AccessLevel = { READ: 'READ', EDIT: 'EDIT' } as const;
export type AccessLevel = (typeof AccessLevel)[keyof typeof AccessLevel];

@Entity({ name: 'org_wide_defaults' })
export class OrgWideDefaultEntity {
  @PrimaryColumn({ name: 'company_id', type: 'uuid' })
  companyId!: string;

  @PrimaryColumn({ name: 'object_type', type: 'text' })
  objectType!: RecordType;

  @Column({ name: 'access_level', type: 'text' })
  accessLevel!: OrgWideAccess;

  @UpdateDateColumn({ name: 'updated_at', type: 'timestamptz' })
  updatedAt!: Date;
}

/** Owner-based (source -> target) or criteria-based (conditions -> target) sharing rule. */
@Entity({ name: 'sharing_rules' })
export class SharingRuleEntity {
  @PrimaryGeneratedColumn('uuid')
  id!: string;

  @Column({ name: 'company_id', type: 'uuid' })
  companyId!: string;

  @Column({ name: 'object_type', type: 'text' })
  objectType!: RecordType;

  @Column({ type: 'text' })
  name!: string;

  @Column({ name: 'rule_type', type: 'text' })
  ruleType!: 'OWNER' | 'CRITERIA';

  @Column({ name: 'source_type', type: 'text', nullable: true })
  sourceType!: 'ROLE' | 'ROLE_AND_SUBORDINATES' | 'GROUP' | null;

  @Column({ name: 'source_id', type: 'uuid', nullable: true })
  sourceId!: string | null;

  @Column({ type: 'jsonb', nullable: true })
  criteria!: unknown;

  @Column({ name: 'target_type', type: 'text' })
  targetType!: 'USER' | 'ROLE' | 'ROLE_AND_SUBORDINATES' | 'GROUP';

  @Column({ name: 'target_id', type: 'uuid' })
  targetId!: string;

  @Column({ name: 'access_level', type: 'text' })
  accessLevel!: AccessLevel;

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' })
  createdAt!: Date;

  @UpdateDateColumn({ name: 'updated_at', type: 'timestamptz' })
  updatedAt!: Date;
}

@Entity({ name: 'record_shares' })
export class RecordShareEntity {
  @PrimaryGeneratedColumn('uuid')
  id!: string;

  @Column({ name: 'company_id', type: 'uuid' })
  companyId!: string;

  @Column({ name: 'object_type', type: 'text' })
  objectType!: RecordType;

  @Column({ name: 'record_id', type: 'uuid' })
  recordId!: string;

  @Column({ name: 'grantee_type', type: 'text' })
  granteeType!: 'USER' | 'GROUP';

  @Column({ name: 'grantee_id', type: 'uuid' })
  granteeId!: string;

  @Column({ name: 'access_level', type: 'text' })
  accessLevel!: AccessLevel;

  @Column({ name: 'created_by', type: 'uuid', nullable: true })
  createdBy!: string | null;

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' })
  createdAt!: Date;
}
