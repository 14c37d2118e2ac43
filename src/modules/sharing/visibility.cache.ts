import type { TieredCache } from '../../platform/cache/tiered.cache';
import type { RecordType } from '../kernel';
import type { CompanySharingModel, CompiledVisibility } from './sharing.model';

export interface VisibilityCacheOptions {
  cache: TieredCache;
  /** TTL of a company's sharing model (defaults, role tree, groups). Default 3600 s. */
  rulesTtlSeconds: number;
  /** TTL of one user's compiled visibility. Default 1800 s. */
  visibilityTtlSeconds: number;
}

/** Sharing's view of the two-tier cache: the company model and per-user compiled visibility, scoped by company. */
export class VisibilityCache {
  constructor(private readonly options: VisibilityCacheOptions) {}

  get stats() {
    return this.options.cache.stats;
  }

  /** The company's sharing model, shared by every user of the company. */
  getOrComputeModel(
    companyId: string,
    compute: () => Promise<CompanySharingModel>,
  ): Promise<CompanySharingModel> {
    return this.options.cache.getOrCompute(companyId, 'model', this.options.rulesTtlSeconds, compute);
  }

  getOrCompute(
    companyId: string,
    userId: string,
    objectType: RecordType,
    compute: () => Promise<CompiledVisibility>,
  ): Promise<CompiledVisibility> {
    return this.options.cache.getOrCompute(
      companyId,
      `vis:${userId}:${objectType}`,
      this.options.visibilityTtlSeconds,
      compute,
    );
  }

  /**
   * Any change to rules, defaults, roles, groups or users of a company: one version bump orphans every cached model
   * and compiled visibility of that company, in every process.
   */
  invalidateRules(companyId: string): Promise<void> {
    return this.options.cache.invalidateScope(companyId);
  }

  /** The company's sharing version: it changes with every change to rules, defaults, roles, groups or shares. */
  companyVersion(companyId: string): Promise<number | undefined> {
    return this.options.cache.version(companyId);
  }

  /**
   * A new manual share may flip a compiled "no manual shares" flag. A version bump (not a key delete) is what keeps a
   * computation that started before the share from storing the old flag. Removing a share needs nothing: the
   * predicate checks shares live.
   */
  invalidateShares(companyId: string): Promise<void> {
    return this.options.cache.invalidateScope(companyId);
  }
}
