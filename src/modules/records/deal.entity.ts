import { Column, CreateDateColumn, Entity, Index, PrimaryGeneratedColumn, UpdateDateColumn } from 'typeorm';
import { numericToNumber } from '../../platform/db/column-transformers';
import type { DealStage } from '../kernel';

@Entity({ name: 'deals' })
@Index(['companyId', 'ownerId'])
@Index(['companyId', 'stage'])
@Index(['companyId', 'createdAt'])
export class DealEntity {
  @PrimaryGeneratedColumn('uuid')
  id!: string;

  @Column({ name: 'company_id', type: 'uuid' })
  companyId!: string;

  @Column({ name: 'owner_id', type: 'uuid' })
  ownerId!: string;

  @Column({ name: 'account_id', type: 'uuid', nullable: true })
  accountId!: string | null;

  @Column({ type: 'text' })
  name!: string;

  @Column({ type: 'text' })
  stage!: DealStage;

  @Column({ type: 'numeric', precision: 14, scale: 2, default: 0, transformer: numericToNumber })
  amount!: number;

  @Column({ type: 'integer', default: 0 })
  probability!: number;

  @Column({ name: 'close_date', type: 'date', nullable: true })
  closeDate!: string | null;

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' })
  createdAt!: Date;

  @UpdateDateColumn({ name: 'updated_at', type: 'timestamptz' })
  updatedAt!: Date;
}
