import { Column, Entity, PrimaryColumn, UpdateDateColumn } from 'typeorm';

/** A platform operator's override of one company's limits; a null column keeps the deployment's default. */
@Entity({ name: 'company_rate_limits' })
export class CompanyRateLimitEntity {
  @PrimaryColumn({ name: 'company_id', type: 'uuid' })
  companyId!: string;

  @Column({ name: 'window_seconds', type: 'integer', nullable: true })
  windowSeconds!: number | null;

  @Column({ name: 'user_requests', type: 'integer', nullable: true })
  userRequests!: number | null;

  @Column({ name: 'company_requests', type: 'integer', nullable: true })
  companyRequests!: number | null;

  @Column({ name: 'user_complexity', type: 'integer', nullable: true })
  userComplexity!: number | null;

  @Column({ name: 'company_complexity', type: 'integer', nullable: true })
  companyComplexity!: number | null;

  @Column({ name: 'updated_by', type: 'uuid' })
  updatedBy!: string;

  @UpdateDateColumn({ name: 'updated_at', type: 'timestamptz' })
  updatedAt!: Date;
}
