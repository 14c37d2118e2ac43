import { Column, CreateDateColumn, Entity, PrimaryGeneratedColumn } from 'typeorm';

/** A public group: a named set of users, roles, roles-and-subordinates and other groups. */
@Entity({ name: 'groups' })
export class GroupEntity {
  @PrimaryGeneratedColumn('uuid')
  id!: string;

  @Column({ name: 'company_id', type: 'uuid' })
  companyId!: string;

  @Column({ type: 'text' })
  name!: string;

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' })
  createdAt!: Date;
}

export const GroupMemberType = {
  USER: 'USER',
  ROLE: 'ROLE',
  ROLE_AND_SUBORDINATES: 'ROLE_AND_SUBORDINATES',
  GROUP: 'GROUP',
} as const;
export type GroupMemberType = (typeof GroupMemberType)[keyof typeof GroupMemberType];

@Entity({ name: 'group_members' })
export class GroupMemberEntity {
  @PrimaryGeneratedColumn('uuid')
  id!: string;

  @Column({ name: 'company_id', type: 'uuid' })
  companyId!: string;

  @Column({ name: 'group_id', type: 'uuid' })
  groupId!: string;

  @Column({ name: 'member_type', type: 'text' })
  memberType!: GroupMemberType;

  @Column({ name: 'member_id', type: 'uuid' })
  memberId!: string;
}
