/* eslint-disable */
/** Internal type. DO NOT USE DIRECTLY. */
type Exact<T extends { [key: string]: unknown }> = { [K in keyof T]: T[K] };
/** Internal type. DO NOT USE DIRECTLY. */
export type Incremental<T> = T | { [P in keyof T]?: P extends ' $fragmentName' | '__typename' ? T[P] : never };
import type { DocumentTypeDecoration } from '@graphql-typed-document-node/core';
export type DateInterval =
  | 'DAY'
  | 'MONTH'
  | 'QUARTER'
  | 'WEEK';

export type DealStage =
  | 'CLOSED_LOST'
  | 'CLOSED_WON'
  | 'NEGOTIATION'
  | 'PROPOSAL'
  | 'PROSPECTING'
  | 'QUALIFICATION';

export type ExportCompression =
  | 'GZIP'
  | 'NONE';

/** CSV (RFC 4180, header row), JSON (one array), NDJSON (one object per line), XLSX (typed cells) */
export type ExportFormat =
  | 'CSV'
  | 'JSON'
  | 'NDJSON'
  | 'XLSX';

export type ExportStatus =
  | 'CANCELLED'
  | 'COMPLETED'
  | 'FAILED'
  | 'QUEUED'
  | 'RUNNING';

/** INDEX: counted from the counting index at the current data version; LIVE: from SQL */
export type FacetSource =
  | 'INDEX'
  | 'LIVE';

export type FacetType =
  | 'DATE_HISTOGRAM'
  | 'RANGE'
  | 'TERMS';

/** How a record filter compares: RANGE takes from/to (inclusive), IN takes values, IS_NULL takes value true or false */
export type FilterOperator =
  | 'EQ'
  | 'GTE'
  | 'IN'
  | 'IS_NULL'
  | 'LTE'
  | 'NE'
  | 'PREFIX'
  | 'RANGE';

export type Industry =
  | 'EDUCATION'
  | 'ENERGY'
  | 'FINANCE'
  | 'GOVERNMENT'
  | 'HEALTHCARE'
  | 'MANUFACTURING'
  | 'MEDIA'
  | 'REAL_ESTATE'
  | 'RETAIL'
  | 'TECHNOLOGY';

export type LeadSource =
  | 'ADVERTISING'
  | 'COLD_CALL'
  | 'EVENT'
  | 'PARTNER'
  | 'REFERRAL'
  | 'WEB';

export type LeadStatus =
  | 'CONTACTED'
  | 'CONVERTED'
  | 'NEW'
  | 'QUALIFIED'
  | 'UNQUALIFIED';

/** A record type governed by sharing rules */
export type ObjectType =
  | 'ACCOUNT'
  | 'DEAL'
  | 'LEAD';

/** A condition on an allow-listed field; filters are ANDed */
export type RecordFilterInput = {
  field: string;
  /** RANGE: lower bound (inclusive) */
  from?: unknown;
  op: FilterOperator;
  /** RANGE: upper bound (inclusive) */
  to?: unknown;
  /** EQ NE GTE LTE PREFIX: a value; IS_NULL: true/false */
  value?: unknown;
  /** IN: 1 to 100 values */
  values?: Array<unknown> | null | undefined;
};

/** An allow-listed sort field; id breaks ties */
export type RecordSortInput = {
  direction?: SortDirection;
  field: string;
};

/** MATERIALIZED: from precomputed rollups; LIVE: computed from the records now */
export type ReportSource =
  | 'LIVE'
  | 'MATERIALIZED';

/** A facet from the record type's facet configuration */
export type SearchFacetInput = {
  /** RANGE: ascending edges; buckets are [from, to) */
  edges?: Array<number> | null | undefined;
  /** LEAD: status source industry companyName ownerId score estimatedValue createdAt; DEAL: stage ownerId accountId amount probability closeDate createdAt; ACCOUNT: industry country ownerId annualRevenue employees createdAt */
  field: string;
  /** DATE_HISTOGRAM: bucket width (default MONTH) */
  interval?: DateInterval | null | undefined;
  /** TERMS: buckets before the rest is counted as other (1-100, default 10) */
  size?: number | null | undefined;
  /** DATE_HISTOGRAM: IANA zone the buckets are cut in (default UTC) */
  timeZone?: string | null | undefined;
};

export type SearchInput = {
  /** endCursor of an earlier page of this same search */
  after?: string | null | undefined;
  entityType: ObjectType;
  facets?: Array<SearchFacetInput> | null | undefined;
  filters?: Array<RecordFilterInput> | null | undefined;
  /** From 1 (default); counted from `after` when given */
  page?: number | null | undefined;
  /** 1 to 200 (default 20) */
  pageSize?: number | null | undefined;
  /** Default createdAt DESC; id breaks ties; text sorts by code point */
  sort?: Array<RecordSortInput> | null | undefined;
  /** Words matched as prefixes (all must match) in names, email, company and description; at most 500 characters */
  text?: string | null | undefined;
};

export type SortDirection =
  | 'ASC'
  | 'DESC';

export type StartExportInput = {
  compression?: ExportCompression | null | undefined;
  entityType: ObjectType;
  /** Export fields of the entity, plus ownerName (and accountName for deals) */
  fields: Array<string>;
  fileName?: string | null | undefined;
  filters?: Array<RecordFilterInput> | null | undefined;
  format: ExportFormat;
  sort?: Array<RecordSortInput> | null | undefined;
};

/** What an indexed vector stands for: a lead, deal or account (docId `lead:<id>`, ...), or any other document */
export type VectorEntityType =
  | 'ACCOUNT'
  | 'DEAL'
  | 'DOCUMENT'
  | 'LEAD';

export type StartExportMutationVariables = Exact<{
  input: StartExportInput;
}>;


export type StartExportMutation = { startExport: { id: string, status: ExportStatus, progress: number, rowsExported: number, totalRows: number | null, bytesWritten: number, fileName: string, downloadUrl: string | null, error: string | null } };

export type ExportProgressSubscriptionVariables = Exact<{
  jobId: string | number;
}>;


export type ExportProgressSubscription = { exportProgress: { id: string, status: ExportStatus, progress: number, rowsExported: number, totalRows: number | null, bytesWritten: number, fileName: string, downloadUrl: string | null, error: string | null } };

export type ExportJobQueryVariables = Exact<{
  id: string | number;
}>;


export type ExportJobQuery = { exportJob: { id: string, status: ExportStatus, progress: number, rowsExported: number, totalRows: number | null, bytesWritten: number, fileName: string, downloadUrl: string | null, error: string | null } };

export type CancelExportMutationVariables = Exact<{
  id: string | number;
}>;


export type CancelExportMutation = { cancelExport: { id: string, status: ExportStatus, progress: number, rowsExported: number, totalRows: number | null, bytesWritten: number, fileName: string, downloadUrl: string | null, error: string | null } };

export type ExportStateFragment = { id: string, status: ExportStatus, progress: number, rowsExported: number, totalRows: number | null, bytesWritten: number, fileName: string, downloadUrl: string | null, error: string | null };

export type LeadByIdQueryVariables = Exact<{
  id: string | number;
}>;


export type LeadByIdQuery = { lead: { id: string, firstName: string, lastName: string, email: string | null, companyName: string | null, description: string | null, status: LeadStatus, source: LeadSource | null, industry: Industry | null, score: number, estimatedValue: number | null, createdAt: string, owner: { name: string } } | null };

export type DealByIdQueryVariables = Exact<{
  id: string | number;
}>;


export type DealByIdQuery = { deal: { id: string, name: string, stage: DealStage, amount: number, probability: number, closeDate: string | null, createdAt: string, owner: { name: string }, account: { name: string } | null } | null };

export type PipelineByStageAndMonthQueryVariables = Exact<{
  filters?: Array<RecordFilterInput> | RecordFilterInput | null | undefined;
}>;


export type PipelineByStageAndMonthQuery = { report: { source: ReportSource, computedAt: string, aggregates: Array<{ name: string, rows: Array<{ dimensions: Record<string, unknown>, value: number | null }> }> } };

export type LeadsByStatusQueryVariables = Exact<{ [key: string]: never; }>;


export type LeadsByStatusQuery = { report: { source: ReportSource, aggregates: Array<{ name: string, rows: Array<{ dimensions: Record<string, unknown>, value: number | null }> }> } };

export type RecordSearchQueryVariables = Exact<{
  input: SearchInput;
}>;


export type RecordSearchQuery = { search: { total: number, page: number, pageSize: number, hasNextPage: boolean, facetSource: FacetSource, items: Array<
      | { __typename: 'Account' }
      | { __typename: 'Deal', id: string, name: string, stage: DealStage, amount: number, closeDate: string | null, owner: { name: string }, account: { name: string } | null }
      | { __typename: 'Lead', id: string, firstName: string, lastName: string, companyName: string | null, status: LeadStatus, source: LeadSource | null, score: number, owner: { name: string } }
    >, facets: Array<{ field: string, type: FacetType, missing: number, other: number, buckets: Array<{ key: string, label: string, count: number, from: string | null, to: string | null }> }> } };

export type LeadSearchQueryVariables = Exact<{
  text?: string | null | undefined;
  filters?: Array<RecordFilterInput> | RecordFilterInput | null | undefined;
  page?: number | null | undefined;
}>;


export type LeadSearchQuery = { search: { total: number, items: Array<
      | { id: string, firstName: string, lastName: string, companyName: string | null, status: LeadStatus, source: LeadSource | null, score: number, owner: { name: string } }
      | Record<PropertyKey, never>
    >, facets: Array<{ field: string, buckets: Array<{ key: string, count: number }> }> } };

export type LeadRowFragment = { id: string, firstName: string, lastName: string, companyName: string | null, status: LeadStatus, source: LeadSource | null, score: number, owner: { name: string } };

export type DealRowFragment = { id: string, name: string, stage: DealStage, amount: number, closeDate: string | null, owner: { name: string }, account: { name: string } | null };

export type SimilarRecordsQueryVariables = Exact<{
  text: string;
  k?: number | null | undefined;
  entityTypes?: Array<VectorEntityType> | VectorEntityType | null | undefined;
}>;


export type SimilarRecordsQuery = { similar: Array<{ docId: string, score: number, entityType: VectorEntityType, record:
      | { __typename: 'Account', id: string, name: string }
      | { __typename: 'Deal', id: string, name: string, stage: DealStage }
      | { __typename: 'Lead', id: string, firstName: string, lastName: string, companyName: string | null }
     | null }> };

export type ViewerQueryVariables = Exact<{ [key: string]: never; }>;


export type ViewerQuery = { me: { id: string, name: string, email: string, company: { name: string } } };

export class TypedDocumentString<TResult, TVariables>
  extends String
  implements DocumentTypeDecoration<TResult, TVariables>
{
  __apiType?: NonNullable<DocumentTypeDecoration<TResult, TVariables>['__apiType']>;
  private value: string;
  public __meta__?: Record<string, any> | undefined;

  constructor(value: string, __meta__?: Record<string, any> | undefined) {
    super(value);
    this.value = value;
    this.__meta__ = __meta__;
  }

  override toString(): string & DocumentTypeDecoration<TResult, TVariables> {
    return this.value;
  }
}
export const ExportStateFragmentDoc = new TypedDocumentString(`
    fragment ExportState on ExportJob {
  id
  status
  progress
  rowsExported
  totalRows
  bytesWritten
  fileName
  downloadUrl
  error
}
    `, {"fragmentName":"ExportState"}) as unknown as TypedDocumentString<ExportStateFragment, unknown>;
export const LeadRowFragmentDoc = new TypedDocumentString(`
    fragment LeadRow on Lead {
  id
  firstName
  lastName
  companyName
  status
  source
  score
  owner {
    name
  }
}
    `, {"fragmentName":"LeadRow"}) as unknown as TypedDocumentString<LeadRowFragment, unknown>;
export const DealRowFragmentDoc = new TypedDocumentString(`
    fragment DealRow on Deal {
  id
  name
  stage
  amount
  closeDate
  owner {
    name
  }
  account {
    name
  }
}
    `, {"fragmentName":"DealRow"}) as unknown as TypedDocumentString<DealRowFragment, unknown>;
export const StartExportDocument = new TypedDocumentString(`
    mutation StartExport($input: StartExportInput!) {
  startExport(input: $input) {
    ...ExportState
  }
}
    fragment ExportState on ExportJob {
  id
  status
  progress
  rowsExported
  totalRows
  bytesWritten
  fileName
  downloadUrl
  error
}`, {"hash":"sha256:9e5a1cb8a8508a9597892cef44324b7e015569a5d151320df38a8b70716061b8"}) as unknown as TypedDocumentString<StartExportMutation, StartExportMutationVariables>;
export const ExportProgressDocument = new TypedDocumentString(`
    subscription ExportProgress($jobId: ID!) {
  exportProgress(jobId: $jobId) {
    ...ExportState
  }
}
    fragment ExportState on ExportJob {
  id
  status
  progress
  rowsExported
  totalRows
  bytesWritten
  fileName
  downloadUrl
  error
}`, {"hash":"sha256:b9338d601aea34368cea28b9952e7fca9282b289284648f0da4d38b292a8641b"}) as unknown as TypedDocumentString<ExportProgressSubscription, ExportProgressSubscriptionVariables>;
export const ExportJobDocument = new TypedDocumentString(`
    query ExportJob($id: ID!) {
  exportJob(id: $id) {
    ...ExportState
  }
}
    fragment ExportState on ExportJob {
  id
  status
  progress
  rowsExported
  totalRows
  bytesWritten
  fileName
  downloadUrl
  error
}`, {"hash":"sha256:f1e3a3543c6d272b6f8bfb96fbc58225e0603333b0c07c33abaa812a42968a82"}) as unknown as TypedDocumentString<ExportJobQuery, ExportJobQueryVariables>;
export const CancelExportDocument = new TypedDocumentString(`
    mutation CancelExport($id: ID!) {
  cancelExport(id: $id) {
    ...ExportState
  }
}
    fragment ExportState on ExportJob {
  id
  status
  progress
  rowsExported
  totalRows
  bytesWritten
  fileName
  downloadUrl
  error
}`, {"hash":"sha256:8341f4b0a89f05f14af2d2a41fddc90ef5f7d4f579bf5bd29042f3bd611f26c4"}) as unknown as TypedDocumentString<CancelExportMutation, CancelExportMutationVariables>;
export const LeadByIdDocument = new TypedDocumentString(`
    query LeadById($id: ID!) {
  lead(id: $id) {
    id
    firstName
    lastName
    email
    companyName
    description
    status
    source
    industry
    score
    estimatedValue
    createdAt
    owner {
      name
    }
  }
}
    `, {"hash":"sha256:6e12da08a9d0a740fa6a7dcc0e3ff9fdf062b4191d147adde7fa6f2169524d80"}) as unknown as TypedDocumentString<LeadByIdQuery, LeadByIdQueryVariables>;
export const DealByIdDocument = new TypedDocumentString(`
    query DealById($id: ID!) {
  deal(id: $id) {
    id
    name
    stage
    amount
    probability
    closeDate
    createdAt
    owner {
      name
    }
    account {
      name
    }
  }
}
    `, {"hash":"sha256:d75190baf1c1545be114d3c7e03e1732a5341e94e64e8701ff81858dd058a99e"}) as unknown as TypedDocumentString<DealByIdQuery, DealByIdQueryVariables>;
export const PipelineByStageAndMonthDocument = new TypedDocumentString(`
    query PipelineByStageAndMonth($filters: [RecordFilterInput!]) {
  report(
    input: {entityType: DEAL, filters: $filters, aggregates: [{name: "pipeline", type: SUM, field: "amount", dimensions: ["stage", "closeDate:month"]}]}
  ) {
    source
    computedAt
    aggregates {
      name
      rows {
        dimensions
        value
      }
    }
  }
}
    `, {"hash":"sha256:91cb8e4d4babee9c7b16cc0b57c779f56dde587b861cf824e1bd71dcd29d6e0b"}) as unknown as TypedDocumentString<PipelineByStageAndMonthQuery, PipelineByStageAndMonthQueryVariables>;
export const LeadsByStatusDocument = new TypedDocumentString(`
    query LeadsByStatus {
  report(
    input: {entityType: LEAD, aggregates: [{name: "leads", type: COUNT, dimensions: ["status"]}]}
  ) {
    source
    aggregates {
      name
      rows {
        dimensions
        value
      }
    }
  }
}
    `, {"hash":"sha256:87618170b21f84b5d4e383a4214bb1eeea3b72036254b43fbfa561d8737aab0d"}) as unknown as TypedDocumentString<LeadsByStatusQuery, LeadsByStatusQueryVariables>;
export const RecordSearchDocument = new TypedDocumentString(`
    query RecordSearch($input: SearchInput!) {
  search(input: $input) {
    total
    page
    pageSize
    hasNextPage
    facetSource
    items {
      __typename
      ... on Lead {
        ...LeadRow
      }
      ... on Deal {
        ...DealRow
      }
    }
    facets {
      field
      type
      missing
      other
      buckets {
        key
        label
        count
        from
        to
      }
    }
  }
}
    fragment LeadRow on Lead {
  id
  firstName
  lastName
  companyName
  status
  source
  score
  owner {
    name
  }
}
fragment DealRow on Deal {
  id
  name
  stage
  amount
  closeDate
  owner {
    name
  }
  account {
    name
  }
}`, {"hash":"sha256:df47a21cc77b65f472de11ad2d1f35839f3d6154fdfa9f21a3e60ce867e236dd"}) as unknown as TypedDocumentString<RecordSearchQuery, RecordSearchQueryVariables>;
export const LeadSearchDocument = new TypedDocumentString(`
    query LeadSearch($text: String, $filters: [RecordFilterInput!], $page: Int) {
  search(
    input: {entityType: LEAD, text: $text, filters: $filters, page: $page, pageSize: 20, facets: [{field: "status"}, {field: "source"}]}
  ) {
    total
    items {
      ... on Lead {
        ...LeadRow
      }
    }
    facets {
      field
      buckets {
        key
        count
      }
    }
  }
}
    fragment LeadRow on Lead {
  id
  firstName
  lastName
  companyName
  status
  source
  score
  owner {
    name
  }
}`, {"hash":"sha256:74b7b404f569b5bcba5af3fef67538649a4deb64aa460a8773dac0f60e2f8027"}) as unknown as TypedDocumentString<LeadSearchQuery, LeadSearchQueryVariables>;
export const SimilarRecordsDocument = new TypedDocumentString(`
    query SimilarRecords($text: String!, $k: Int, $entityTypes: [VectorEntityType!]) {
  similar(input: {text: $text, k: $k, filters: {entityTypes: $entityTypes}}) {
    docId
    score
    entityType
    record {
      __typename
      ... on Lead {
        id
        firstName
        lastName
        companyName
      }
      ... on Deal {
        id
        name
        stage
      }
      ... on Account {
        id
        name
      }
    }
  }
}
    `, {"hash":"sha256:d17046c42aaa93e25f99d1fbe67ce563aec420ed042a78e2db8a1f7a907f95d5"}) as unknown as TypedDocumentString<SimilarRecordsQuery, SimilarRecordsQueryVariables>;
export const ViewerDocument = new TypedDocumentString(`
    query Viewer {
  me {
    id
    name
    email
    company {
      name
    }
  }
}
    `, {"hash":"sha256:807e7ffafc7c645d96b6ade88af40aad3ba8ee3b338f87260de1aa092e432f09"}) as unknown as TypedDocumentString<ViewerQuery, ViewerQueryVariables>;