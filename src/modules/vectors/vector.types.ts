import { GraphQLJSON, GraphQLJSONObject } from 'graphql-scalars';
import { createUnionType, Field, Float, ID, InputType, Int, ObjectType } from 'type-graphql';
import { Account, Deal, Lead } from '../records';
import { VectorBackendName, VectorEntityType } from './vector.model';

const RECORD_CLASS = { LEAD: Lead, DEAL: Deal, ACCOUNT: Account } as const;

/** A CRM record a vector stands for; resolved by the hit's entity type (the loaded row carries no type of its own). */
export const CrmRecord = createUnionType({
  name: 'CrmRecord',
  description: 'A lead, deal or account',
  types: () => [Lead, Deal, Account] as const,
  resolveType: (value) => {
    const tagged = (value as { __recordType?: keyof typeof RECORD_CLASS }).__recordType;
    return tagged ? RECORD_CLASS[tagged] : undefined;
  },
});

@InputType({
  description: 'A vector to store; docId `lead:<id>`, `deal:<id>` or `account:<id>` ties it to that record',
})
export class IndexVectorInput {
  @Field(() => String, { description: 'Up to 255 characters; upserts' })
  docId!: string;

  @Field(() => [Float], {
    description: 'Exactly the deployment dimension (vectorBackend.dimension), finite, not all zero',
  })
  vector!: number[];

  @Field(() => GraphQLJSONObject, { nullable: true, description: 'Up to 16 KB as JSON' })
  metadata?: Record<string, unknown> | null;
}

@InputType()
export class VectorMetadataFilterInput {
  @Field(() => String, { description: 'An allow-listed metadata key (VECTOR_FILTER_KEYS)' })
  key!: string;

  @Field(() => [GraphQLJSON], {
    description: 'Matches when the key holds one of these (string, number or boolean)',
  })
  values!: unknown[];
}

@InputType()
export class VectorFiltersInput {
  @Field(() => [VectorEntityType], { nullable: true })
  entityTypes?: VectorEntityType[] | null;

  @Field(() => [VectorMetadataFilterInput], { nullable: true, description: 'All must match' })
  metadata?: VectorMetadataFilterInput[] | null;
}

@InputType({ description: 'Exactly one of vector and text' })
export class SimilarInput {
  @Field(() => [Float], { nullable: true })
  vector?: number[] | null;

  @Field(() => String, {
    nullable: true,
    description: 'Embedded with the deployment embedder (vectorBackend.embedder)',
  })
  text?: string | null;

  @Field(() => Int, { nullable: true, description: '1 to 100, default 10' })
  k?: number | null;

  @Field(() => VectorFiltersInput, { nullable: true })
  filters?: VectorFiltersInput | null;

  @Field(() => Float, { nullable: true, description: 'Cosine similarity floor, -1 to 1' })
  minScore?: number | null;
}

@ObjectType()
export class VectorHit {
  @Field(() => String)
  docId!: string;

  @Field(() => Float, { description: 'Cosine similarity, -1 to 1' })
  score!: number;

  @Field(() => VectorEntityType)
  entityType!: VectorEntityType;

  @Field(() => GraphQLJSONObject)
  metadata!: Record<string, unknown>;

  @Field(() => CrmRecord, {
    nullable: true,
    description: 'The record the document stands for (you may read it)',
  })
  record!: object | null;

  @Field(() => VectorBackendName, { description: 'The backend that answered' })
  backend!: VectorBackendName;
}

@ObjectType()
export class IndexedVector {
  @Field(() => String)
  docId!: string;

  @Field(() => VectorEntityType)
  entityType!: VectorEntityType;

  @Field(() => ID, { nullable: true })
  recordId!: string | null;
}

@ObjectType()
export class VectorBackendHealth {
  @Field(() => VectorBackendName)
  name!: VectorBackendName;

  @Field(() => Boolean)
  healthy!: boolean;

  @Field(() => String, { nullable: true, description: 'Why it is not healthy' })
  reason!: string | null;

  @Field(() => Date, { nullable: true })
  checkedAt!: Date | null;

  @Field(() => Boolean, {
    description: 'False while your company waits for a rebuild on it (queries skip it)',
  })
  upToDate!: boolean;
}

@ObjectType()
export class VectorBackendStatus {
  @Field(() => VectorBackendName, { description: 'Where queries go now' })
  active!: VectorBackendName;

  @Field(() => Int)
  dimension!: number;

  @Field(() => String)
  embedder!: string;

  @Field(() => [VectorBackendHealth], { description: 'Configured backends in priority order' })
  backends!: VectorBackendHealth[];
}
