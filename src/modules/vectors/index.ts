// Vectors' public face: its module and its service's types.
export { vectorsModule, type VectorServices } from './vectors.module';
export type { VectorService, SimilarHit, SimilarInput, IndexVectorInput } from './vector.service';
export { HashingEmbedder, type Embedder } from './vector.math';
