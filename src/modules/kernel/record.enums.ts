import { graphqlEnum, type EnumValue } from './graphql-enum';

export const LeadStatus = graphqlEnum('LeadStatus', [
  'NEW',
  'CONTACTED',
  'QUALIFIED',
  'UNQUALIFIED',
  'CONVERTED',
]);
export type LeadStatus = EnumValue<typeof LeadStatus>;

export const LeadSource = graphqlEnum('LeadSource', [
  'WEB',
  'REFERRAL',
  'EVENT',
  'PARTNER',
  'COLD_CALL',
  'ADVERTISING',
]);
export type LeadSource = EnumValue<typeof LeadSource>;

export const Industry = graphqlEnum('Industry', [
  'TECHNOLOGY',
  'FINANCE',
  'HEALTHCARE',
  'RETAIL',
  'MANUFACTURING',
  'EDUCATION',
  'ENERGY',
  'MEDIA',
  'REAL_ESTATE',
  'GOVERNMENT',
]);
export type Industry = EnumValue<typeof Industry>;

export const DealStage = graphqlEnum('DealStage', [
  'PROSPECTING',
  'QUALIFICATION',
  'PROPOSAL',
  'NEGOTIATION',
  'CLOSED_WON',
  'CLOSED_LOST',
]);
export type DealStage = EnumValue<typeof DealStage>;

/**
 * The three record types that sharing rules, search, reports and exports speak of. Named RecordType in code (type-graphql
 * exports an ObjectType decorator); the public GraphQL enum keeps its name, ObjectType.
 */
export const RecordType = graphqlEnum(
  'ObjectType',
  ['LEAD', 'DEAL', 'ACCOUNT'],
  'A record type governed by sharing rules',
);
export type RecordType = EnumValue<typeof RecordType>;
