/** Every table holding tenant data, children first, for TRUNCATE before a reseed. */
export const DATA_TABLES = [
  'audit_logs',
  'record_shares',
  'sharing_rules',
  'org_wide_defaults',
  'deals',
  'leads',
  'accounts',
  'group_members',
  'groups',
  'users',
  'roles',
  'companies',
] as const;
