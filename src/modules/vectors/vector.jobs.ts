import type { RecordType } from '../kernel';
import type { VectorBackendName } from './vector.model';

export const VectorQueue = { vectors: 'vectors' } as const;
export const VectorJob = { embedRecord: 'embed-record', rebuild: 'rebuild' } as const;

export interface EmbedRecordJob {
  companyId: string;
  type: RecordType;
  id: string;
}
export interface RebuildJob {
  companyId: string;
  backend: VectorBackendName;
}
