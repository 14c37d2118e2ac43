import { Column, CreateDateColumn, Entity, Index, PrimaryGeneratedColumn, UpdateDateColumn } from 'typeorm';
import { numericToNumber } from '../../platform/db/column-transformers';
import type { Industry } from '../kernel';

@Entity({ name: 'accounts' })
@Index(['companyId', 'ownerId'])
@Index(['companyId', 'createdAt'])
export class AccountEntity {
  @PrimaryGeneratedColumn('uuid')
  id!: string;

  @Column({ name: 'company_id', type: 'uuid' })
  companyId!: string;

  @Column({ name: 'owner_id', type: 'uuid' })
  ownerId!: string;

  @Column({ type: 'text' })
  name!: string;

  @Column({ type: 'text', nullable: true })
  industry!: Industry | null;

  @Column({ type: 'text', nullable: true })
  country!: string | null;

  @Column({
    name: 'annual_revenue',
    type: 'numeric',
    precision: 16,
    scale: 2,
    nullable: true,
    transformer: numericToNumber,
  })
  annualRevenue!: number | null;

  @Column({ type: 'integer', nullable: true })
  employees!: number | null;

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' })
  createdAt!: Date;

  @UpdateDateColumn({ name: 'updated_at', type: 'timestamptz' })
  updatedAt!: Date;
}
