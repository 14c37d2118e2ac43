import type { MigrationInterface, QueryRunner } from 'typeorm';

const MONTHS_AHEAD = 3;

function monthStart(offset: number, from = new Date()): Date {
  return new Date(Date.UTC(from.getUTCFullYear(), from.getUTCMonth() + offset, 1));
}

export function auditPartitionName(month: Date): string {
  return `audit_logs_y${month.getUTCFullYear()}m${String(month.getUTCMonth() + 1).padStart(2, '0')}`;
}

/** The CRM data model: tenants, identity, records, sharing inputs and the monthly-partitioned audit log. */
export class Foundation1764300000000 implements MigrationInterface {
  name = 'Foundation1764300000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
      CREATE TABLE companies (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        name text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
        created_at timestamptz NOT NULL DEFAULT now()
      );

      CREATE TABLE roles (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        company_id uuid NOT NULL REFERENCES companies(id) ON DELETE CASCADE,
        name text NOT NULL,
        parent_id uuid,
        created_at timestamptz NOT NULL DEFAULT now(),
        UNIQUE (company_id, id),
        FOREIGN KEY (company_id, parent_id) REFERENCES roles(company_id, id) ON DELETE SET NULL (parent_id),
        CHECK (parent_id IS DISTINCT FROM id)
      );
      CREATE INDEX roles_company_parent_idx ON roles (company_id, parent_id);

      CREATE TABLE users (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        company_id uuid NOT NULL REFERENCES companies(id) ON DELETE CASCADE,
        email text NOT NULL UNIQUE,
        name text NOT NULL,
        role_id uuid,
        is_admin boolean NOT NULL DEFAULT false,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now(),
        UNIQUE (company_id, id),
        FOREIGN KEY (company_id, role_id) REFERENCES roles(company_id, id) ON DELETE SET NULL (role_id)
      );
      CREATE INDEX users_company_role_idx ON users (company_id, role_id);

      CREATE TABLE groups (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        company_id uuid NOT NULL REFERENCES companies(id) ON DELETE CASCADE,
        name text NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        UNIQUE (company_id, id)
      );

      CREATE TABLE group_members (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        company_id uuid NOT NULL,
        group_id uuid NOT NULL,
        member_type text NOT NULL CHECK (member_type IN ('USER', 'ROLE', 'ROLE_AND_SUBORDINATES', 'GROUP')),
        member_id uuid NOT NULL,
        FOREIGN KEY (company_id, group_id) REFERENCES groups(company_id, id) ON DELETE CASCADE,
        UNIQUE (group_id, member_type, member_id)
      );
      CREATE INDEX group_members_company_member_idx ON group_members (company_id, member_type, member_id);

      CREATE TABLE accounts (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        company_id uuid NOT NULL REFERENCES companies(id) ON DELETE CASCADE,
        owner_id uuid NOT NULL,
        name text NOT NULL,
        industry text,
        country text,
        annual_revenue numeric(16, 2),
        employees integer,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now(),
        UNIQUE (company_id, id),
        FOREIGN KEY (company_id, owner_id) REFERENCES users(company_id, id)
      );
      CREATE INDEX accounts_company_owner_idx ON accounts (company_id, owner_id);
      CREATE INDEX accounts_company_industry_idx ON accounts (company_id, industry);
      CREATE INDEX accounts_company_created_idx ON accounts (company_id, created_at);

      CREATE TABLE leads (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        company_id uuid NOT NULL REFERENCES companies(id) ON DELETE CASCADE,
        owner_id uuid NOT NULL,
        first_name text NOT NULL,
        last_name text NOT NULL,
        email text,
        company_name text,
        status text NOT NULL,
        source text,
        industry text,
        score integer NOT NULL DEFAULT 0,
        estimated_value numeric(14, 2),
        description text,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now(),
        FOREIGN KEY (company_id, owner_id) REFERENCES users(company_id, id)
      );
      CREATE INDEX leads_company_owner_idx ON leads (company_id, owner_id);
      CREATE INDEX leads_company_status_idx ON leads (company_id, status);
      CREATE INDEX leads_company_created_idx ON leads (company_id, created_at);

      CREATE TABLE deals (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        company_id uuid NOT NULL REFERENCES companies(id) ON DELETE CASCADE,
        owner_id uuid NOT NULL,
        account_id uuid,
        name text NOT NULL,
        stage text NOT NULL,
        amount numeric(14, 2) NOT NULL DEFAULT 0,
        probability integer NOT NULL DEFAULT 0 CHECK (probability BETWEEN 0 AND 100),
        close_date date,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now(),
        FOREIGN KEY (company_id, owner_id) REFERENCES users(company_id, id),
        FOREIGN KEY (company_id, account_id) REFERENCES accounts(company_id, id) ON DELETE SET NULL (account_id)
      );
      CREATE INDEX deals_company_owner_idx ON deals (company_id, owner_id);
      CREATE INDEX deals_company_stage_idx ON deals (company_id, stage);
      CREATE INDEX deals_company_created_idx ON deals (company_id, created_at);
      CREATE INDEX deals_company_account_idx ON deals (company_id, account_id);

      CREATE TABLE org_wide_defaults (
        company_id uuid NOT NULL REFERENCES companies(id) ON DELETE CASCADE,
        object_type text NOT NULL CHECK (object_type IN ('LEAD', 'DEAL', 'ACCOUNT')),
        access_level text NOT NULL CHECK (access_level IN ('PRIVATE', 'PUBLIC_READ', 'PUBLIC_READ_WRITE')),
        updated_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (company_id, object_type)
      );

      CREATE TABLE sharing_rules (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        company_id uuid NOT NULL REFERENCES companies(id) ON DELETE CASCADE,
        object_type text NOT NULL CHECK (object_type IN ('LEAD', 'DEAL', 'ACCOUNT')),
        name text NOT NULL,
        rule_type text NOT NULL CHECK (rule_type IN ('OWNER', 'CRITERIA')),
        source_type text CHECK (source_type IN ('ROLE', 'ROLE_AND_SUBORDINATES', 'GROUP')),
        source_id uuid,
        criteria jsonb,
        target_type text NOT NULL CHECK (target_type IN ('USER', 'ROLE', 'ROLE_AND_SUBORDINATES', 'GROUP')),
        target_id uuid NOT NULL,
        access_level text NOT NULL CHECK (access_level IN ('READ', 'EDIT')),
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now(),
        CHECK ((rule_type = 'OWNER' AND source_type IS NOT NULL AND source_id IS NOT NULL AND criteria IS NULL)
            OR (rule_type = 'CRITERIA' AND source_type IS NULL AND source_id IS NULL AND criteria IS NOT NULL))
      );
      CREATE INDEX sharing_rules_company_object_idx ON sharing_rules (company_id, object_type);

      CREATE TABLE record_shares (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        company_id uuid NOT NULL REFERENCES companies(id) ON DELETE CASCADE,
        object_type text NOT NULL CHECK (object_type IN ('LEAD', 'DEAL', 'ACCOUNT')),
        record_id uuid NOT NULL,
        grantee_type text NOT NULL CHECK (grantee_type IN ('USER', 'GROUP')),
        grantee_id uuid NOT NULL,
        access_level text NOT NULL CHECK (access_level IN ('READ', 'EDIT')),
        created_by uuid,
        created_at timestamptz NOT NULL DEFAULT now(),
        UNIQUE (object_type, record_id, grantee_type, grantee_id)
      );
      CREATE INDEX record_shares_grantee_idx ON record_shares (company_id, object_type, grantee_type, grantee_id);

      CREATE TABLE audit_logs (
        id uuid NOT NULL DEFAULT gen_random_uuid(),
        occurred_at timestamptz NOT NULL DEFAULT now(),
        company_id uuid NOT NULL,
        actor_id uuid,
        action text NOT NULL,
        object_type text NOT NULL,
        object_id uuid,
        changes jsonb,
        PRIMARY KEY (id, occurred_at)
      ) PARTITION BY RANGE (occurred_at);
      CREATE INDEX audit_logs_company_time_idx ON audit_logs (company_id, occurred_at);
      CREATE INDEX audit_logs_company_object_idx ON audit_logs (company_id, object_type, object_id);
      CREATE TABLE audit_logs_default PARTITION OF audit_logs DEFAULT;
    `);
    for (let offset = 0; offset <= MONTHS_AHEAD; offset++) {
      const from = monthStart(offset);
      const to = monthStart(offset + 1);
      await queryRunner.query(
        `CREATE TABLE IF NOT EXISTS ${auditPartitionName(from)} PARTITION OF audit_logs
           FOR VALUES FROM ('${from.toISOString()}') TO ('${to.toISOString()}')`,
      );
    }
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
      DROP TABLE IF EXISTS audit_logs CASCADE;
      DROP TABLE IF EXISTS record_shares;
      DROP TABLE IF EXISTS sharing_rules;
      DROP TABLE IF EXISTS org_wide_defaults;
      DROP TABLE IF EXISTS deals;
      DROP TABLE IF EXISTS leads;
      DROP TABLE IF EXISTS accounts;
      DROP TABLE IF EXISTS group_members;
      DROP TABLE IF EXISTS groups;
      DROP TABLE IF EXISTS users;
      DROP TABLE IF EXISTS roles;
      DROP TABLE IF EXISTS companies;
    `);
  }
}
