import { Column, Entity, PrimaryColumn } from 'typeorm';

/** One row per mutation; the table is range-partitioned by month on `occurred_at`. */
@Entity({ name: 'audit_logs' })
export class AuditLogEntity {
  @PrimaryColumn({ type: 'uuid', default: () => 'gen_random_uuid()' })
  id!: string;

  @PrimaryColumn({ name: 'occurred_at', type: 'timestamptz', default: () => 'now()' })
  occurredAt!: Date;

  @Column({ name: 'company_id', type: 'uuid' })
  companyId!: string;

  @Column({ name: 'actor_id', type: 'uuid', nullable: true })
  actorId!: string | null;

  @Column({ type: 'text' })
  action!: string;

  @Column({ name: 'object_type', type: 'text' })
  objectType!: string;

  @Column({ name: 'object_id', type: 'uuid', nullable: true })
  objectId!: string | null;

  @Column({ type: 'jsonb', nullable: true })
  changes!: unknown;
}
