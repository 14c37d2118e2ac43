// Vectors' public face: its module and its service's types.
export { vectorsModule, type VectorServices } from './vectors.module';
export type { VectorService, IndexVectorInput } from './vector.service';
export type { SimilarInput } from './vector.query';
export type { SimilarHit } from './vector.search';
export { HashingEmbedder, type Embedder } from './vector.math';
