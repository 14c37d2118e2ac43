import { createUnionType, Field, Float, InputType, Int, ObjectType } from 'type-graphql';
import { graphqlEnum, RecordFilter, RecordSort, RecordType, type EnumValue } from '../kernel';
import { Account, Deal, Lead } from '../records';

export const FacetTypeEnum = graphqlEnum('FacetType', ['TERMS', 'RANGE', 'DATE_HISTOGRAM']);
export const DateIntervalEnum = graphqlEnum('DateInterval', ['DAY', 'WEEK', 'MONTH', 'QUARTER']);
export type DateIntervalValue = EnumValue<typeof DateIntervalEnum>;
export const FacetSourceEnum = graphqlEnum(
  'FacetSource',
  ['INDEX', 'LIVE'],
  'INDEX: counted from the counting index at the current data version; LIVE: from SQL',
);
export const WindowCacheEnum = graphqlEnum(
  'WindowCache',
  ['HIT', 'MISS'],
  'Whether the page came from a cached result window',
);

@InputType('SearchFacetInput', { description: "A facet from the record type's facet configuration" })
export class SearchFacetInput {
  @Field(() => String, {
    description:
      'LEAD: status source industry companyName ownerId score estimatedValue createdAt; DEAL: stage ownerId accountId amount probability closeDate createdAt; ACCOUNT: industry country ownerId annualRevenue employees createdAt',
  })
  field!: string;

  @Field(() => Int, {
    nullable: true,
    description: 'TERMS: buckets before the rest is counted as other (1-100, default 10)',
  })
  size?: number | null;

  @Field(() => [Float], { nullable: true, description: 'RANGE: ascending edges; buckets are [from, to)' })
  edges?: number[] | null;

  @Field(() => DateIntervalEnum, {
    nullable: true,
    description: 'DATE_HISTOGRAM: bucket width (default MONTH)',
  })
  interval?: DateIntervalValue | null;

  @Field(() => String, {
    nullable: true,
    description: 'DATE_HISTOGRAM: IANA zone the buckets are cut in (default UTC)',
  })
  timeZone?: string | null;
}

@InputType('SearchInput')
export class SearchInput {
  @Field(() => RecordType)
  entityType!: RecordType;

  @Field(() => String, {
    nullable: true,
    description:
      'Words matched as prefixes (all must match) in names, email, company and description; at most 500 characters',
  })
  text?: string | null;

  @Field(() => [RecordFilter], { nullable: true })
  filters?: RecordFilter[] | null;

  @Field(() => [SearchFacetInput], { nullable: true })
  facets?: SearchFacetInput[] | null;

  @Field(() => [RecordSort], {
    nullable: true,
    description: 'Default createdAt DESC; id breaks ties; text sorts by code point',
  })
  sort?: RecordSort[] | null;

  @Field(() => Int, { nullable: true, description: 'From 1 (default); counted from `after` when given' })
  page?: number | null;

  @Field(() => Int, { nullable: true, description: '1 to 200 (default 20)' })
  pageSize?: number | null;

  @Field(() => String, { nullable: true, description: 'endCursor of an earlier page of this same search' })
  after?: string | null;
}

@ObjectType('SearchFacetBucket')
export class SearchFacetBucket {
  @Field(() => String)
  key!: string;

  @Field(() => String, { description: "The owner's or account's name for those facets, else the key" })
  label!: string;

  @Field(() => String, { nullable: true, description: 'RANGE and DATE_HISTOGRAM: inclusive lower bound' })
  from!: string | null;

  @Field(() => String, { nullable: true, description: 'RANGE and DATE_HISTOGRAM: exclusive upper bound' })
  to!: string | null;

  @Field(() => Int)
  count!: number;
}

@ObjectType('SearchFacet')
export class SearchFacet {
  @Field(() => String)
  field!: string;

  @Field(() => FacetTypeEnum)
  type!: EnumValue<typeof FacetTypeEnum>;

  @Field(() => [SearchFacetBucket])
  buckets!: SearchFacetBucket[];

  @Field(() => Int, { description: 'TERMS: records whose value is past the top buckets' })
  other!: number;

  @Field(() => Int, { description: 'Records without a value' })
  missing!: number;
}

export const SearchItem = createUnionType({
  name: 'SearchItem',
  types: () => [Lead, Deal, Account] as const,
  resolveType: (value) => ('stage' in value ? 'Deal' : 'status' in value ? 'Lead' : 'Account'),
});

@ObjectType('SearchResult')
export class SearchResult {
  @Field(() => Int, { description: 'Records that match, of those you may read' })
  total!: number;

  @Field(() => Int)
  page!: number;

  @Field(() => Int)
  pageSize!: number;

  @Field(() => [SearchItem])
  items!: Array<typeof SearchItem>;

  @Field(() => [SearchFacet])
  facets!: SearchFacet[];

  @Field(() => Float)
  tookMs!: number;

  @Field(() => FacetSourceEnum)
  facetSource!: EnumValue<typeof FacetSourceEnum>;

  @Field(() => WindowCacheEnum)
  window!: EnumValue<typeof WindowCacheEnum>;

  @Field(() => String, { nullable: true, description: 'Pass as `after` for the rows after this page' })
  endCursor!: string | null;

  @Field(() => Boolean)
  hasNextPage!: boolean;
}
