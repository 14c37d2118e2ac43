import { registerEnumType } from 'type-graphql';

export const LeadStatus = {
  NEW: 'NEW',
  CONTACTED: 'CONTACTED',
  QUALIFIED: 'QUALIFIED',
  UNQUALIFIED: 'UNQUALIFIED',
  CONVERTED: 'CONVERTED',
} as const;
export type LeadStatus = (typeof LeadStatus)[keyof typeof LeadStatus];

export const LeadSource = {
  WEB: 'WEB',
  REFERRAL: 'REFERRAL',
  EVENT: 'EVENT',
  PARTNER: 'PARTNER',
  COLD_CALL: 'COLD_CALL',
  ADVERTISING: 'ADVERTISING',
} as const;
export type LeadSource = (typeof LeadSource)[keyof typeof LeadSource];

export const Industry = {
  TECHNOLOGY: 'TECHNOLOGY',
  FINANCE: 'FINANCE',
  HEALTHCARE: 'HEALTHCARE',
  RETAIL: 'RETAIL',
  MANUFACTURING: 'MANUFACTURING',
  EDUCATION: 'EDUCATION',
  ENERGY: 'ENERGY',
  MEDIA: 'MEDIA',
  REAL_ESTATE: 'REAL_ESTATE',
  GOVERNMENT: 'GOVERNMENT',
} as const;
export type Industry = (typeof Industry)[keyof typeof Industry];

export const DealStage = {
  PROSPECTING: 'PROSPECTING',
  QUALIFICATION: 'QUALIFICATION',
  PROPOSAL: 'PROPOSAL',
  NEGOTIATION: 'NEGOTIATION',
  CLOSED_WON: 'CLOSED_WON',
  CLOSED_LOST: 'CLOSED_LOST',
} as const;
export type DealStage = (typeof DealStage)[keyof typeof DealStage];

/**
 * The three record types that sharing rules, search, reports and exports speak of. Named RecordType in code (type-graphql
 * exports an ObjectType decorator); the public GraphQL enum keeps its name, ObjectType.
 */
export const RecordType = { LEAD: 'LEAD', DEAL: 'DEAL', ACCOUNT: 'ACCOUNT' } as const;
export type RecordType = (typeof RecordType)[keyof typeof RecordType];

registerEnumType(LeadStatus, { name: 'LeadStatus' });
registerEnumType(LeadSource, { name: 'LeadSource' });
registerEnumType(Industry, { name: 'Industry' });
registerEnumType(DealStage, { name: 'DealStage' });
registerEnumType(RecordType, { name: 'ObjectType', description: 'A record type governed by sharing rules' });
