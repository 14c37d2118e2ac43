import { Column, CreateDateColumn, Entity, Index, PrimaryGeneratedColumn, UpdateDateColumn } from 'typeorm';
import { numericToNumber } from '../../platform/db/column-transformers';
import type { Industry, LeadSource, LeadStatus } from '../kernel';

@Entity({ name: 'leads' })
@Index(['companyId', 'ownerId'])
@Index(['companyId', 'status'])
@Index(['companyId', 'createdAt'])
export class LeadEntity {
  @PrimaryGeneratedColumn('uuid')
  id!: string;

  @Column({ name: 'company_id', type: 'uuid' })
  companyId!: string;

  @Column({ name: 'owner_id', type: 'uuid' })
  ownerId!: string;

  @Column({ name: 'first_name', type: 'text' })
  firstName!: string;

  @Column({ name: 'last_name', type: 'text' })
  lastName!: string;

  @Column({ type: 'text', nullable: true })
  email!: string | null;

  @Column({ name: 'company_name', type: 'text', nullable: true })
  companyName!: string | null;

  @Column({ type: 'text' })
  status!: LeadStatus;

  @Column({ type: 'text', nullable: true })
  source!: LeadSource | null;

  @Column({ type: 'text', nullable: true })
  industry!: Industry | null;

  @Column({ type: 'integer', default: 0 })
  score!: number;

  @Column({
    name: 'estimated_value',
    type: 'numeric',
    precision: 14,
    scale: 2,
    nullable: true,
    transformer: numericToNumber,
  })
  estimatedValue!: number | null;

  @Column({ type: 'text', nullable: true })
  description!: string | null;

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' })
  createdAt!: Date;

  @UpdateDateColumn({ name: 'updated_at', type: 'timestamptz' })
  updatedAt!: Date;
}
