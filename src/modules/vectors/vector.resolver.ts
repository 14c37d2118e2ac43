import { Arg, Mutation, Query, Resolver } from 'type-graphql';
import { CurrentPrincipal, type Principal } from '../kernel';
import { VectorBackendName } from './vector.model';
import type { SimilarHit } from './vector.search';
import type {
  IndexedVector as IndexedVectorView,
  VectorBackendStatus as StatusView,
  VectorService,
} from './vector.service';
import {
  IndexedVector,
  IndexVectorInput,
  SimilarInput,
  VectorBackendStatus,
  VectorHit,
} from './vector.types';

@Resolver()
export class VectorResolver {
  constructor(private readonly vectors: VectorService) {}

  @Mutation(() => IndexedVector, { description: 'Stores (or replaces) one vector of your company' })
  indexVector(
    @CurrentPrincipal() principal: Principal,
    @Arg('input', () => IndexVectorInput) input: IndexVectorInput,
  ): Promise<IndexedVectorView> {
    return this.vectors.indexVectors(principal, [input]).then(([indexed]) => indexed!);
  }

  @Mutation(() => [IndexedVector], { description: 'Stores up to 500 vectors at once; all or none' })
  indexVectors(
    @CurrentPrincipal() principal: Principal,
    @Arg('inputs', () => [IndexVectorInput]) inputs: IndexVectorInput[],
  ): Promise<IndexedVectorView[]> {
    return this.vectors.indexVectors(principal, inputs);
  }

  @Mutation(() => Boolean, { description: 'Removes a vector; false when there was none' })
  deleteVector(
    @CurrentPrincipal() principal: Principal,
    @Arg('docId', () => String) docId: string,
  ): Promise<boolean> {
    return this.vectors.deleteVector(principal, docId);
  }

  @Query(() => [VectorHit], { description: 'The k most similar documents you may read, best first' })
  similar(
    @CurrentPrincipal() principal: Principal,
    @Arg('input', () => SimilarInput) input: SimilarInput,
  ): Promise<SimilarHit[]> {
    return this.vectors.similar(principal, input);
  }

  @Query(() => VectorBackendStatus, {
    description: 'Which backend answers vector queries, and the health of each',
  })
  vectorBackend(@CurrentPrincipal() principal: Principal): Promise<StatusView> {
    return this.vectors.status(principal);
  }

  @Mutation(() => VectorBackendStatus, {
    description:
      "Admins: rebuild your company's index on a backend (all when none is given) from the stored vectors",
  })
  reindexVectors(
    @CurrentPrincipal() principal: Principal,
    @Arg('backend', () => VectorBackendName, { nullable: true }) backend: VectorBackendName | null,
  ): Promise<StatusView> {
    return this.vectors.requestReindex(principal, backend);
  }
}
