import { createHash } from 'node:crypto';
import { compileExpression, compileMapping, type Mapping } from './workflow.expression';

/**
 * Actions that only compute: pure functions of their config and the run's data (`{ input, steps }`), so they can run
 * in a worker thread (the CPU queue's pool) where a timeout may simply terminate them. Imported by the thread script
 * and by the registry; nothing here may touch services, the network or the database.
 */
export type CpuAction = (config: Record<string, unknown>, scope: Record<string, unknown>) => unknown;

const FREE_MAIL = new Set([
  'gmail.com',
  'yahoo.com',
  'hotmail.com',
  'outlook.com',
  'aol.com',
  'icloud.com',
  'gmx.de',
]);
const INDUSTRY_WEIGHT: Record<string, number> = {
  TECHNOLOGY: 12,
  FINANCE: 10,
  HEALTHCARE: 9,
  MANUFACTURING: 7,
  ENERGY: 8,
  RETAIL: 5,
  MEDIA: 5,
  REAL_ESTATE: 5,
  GOVERNMENT: 4,
  EDUCATION: 3,
};
const SOURCE_WEIGHT: Record<string, number> = {
  REFERRAL: 15,
  EVENT: 10,
  WEB: 8,
  PARTNER: 8,
  ADVERTISING: 4,
  COLD_CALL: 2,
};
const STATUS_WEIGHT: Record<string, number> = {
  QUALIFIED: 15,
  CONTACTED: 8,
  NEW: 4,
  CONVERTED: 0,
  UNQUALIFIED: -25,
};
const INTENT_WORDS = [
  'budget',
  'pilot',
  'urgent',
  'demo',
  'pricing',
  'contract',
  'renewal',
  'expand',
  'quote',
  'rollout',
];

/** A table's weight for a value, by own key only (`constructor` is not an industry). */
function weight(table: Record<string, number>, value: unknown, fallback: number): number {
  return typeof value === 'string' && Object.hasOwn(table, value) ? table[value]! : fallback;
}

/**
 * A lead's score, 0 to 100, and the points each factor gave: business email, industry, source, status, estimated
 * value (log scale), intent words in the description, and recency.
 */
export function leadScore(
  lead: Record<string, unknown>,
  now = Date.now(),
): { score: number; factors: Record<string, number> } {
  const factors: Record<string, number> = {};
  const email = typeof lead.email === 'string' ? lead.email.toLowerCase() : '';
  const domain = email.includes('@') ? email.split('@')[1]! : '';
  factors.email = !domain ? 0 : FREE_MAIL.has(domain) ? 3 : 12;
  factors.industry = weight(INDUSTRY_WEIGHT, lead.industry, 4);
  factors.source = weight(SOURCE_WEIGHT, lead.source, 3);
  factors.status = weight(STATUS_WEIGHT, lead.status, 0);
  const value = Number(lead.estimatedValue ?? lead.estimated_value ?? 0);
  factors.value = value > 0 ? Math.min(25, Math.round(Math.log10(value) * 5)) : 0;
  const description = typeof lead.description === 'string' ? lead.description.toLowerCase() : '';
  factors.intent = Math.min(15, INTENT_WORDS.filter((word) => description.includes(word)).length * 5);
  const createdAt = lead.createdAt ?? lead.created_at;
  const created =
    typeof createdAt === 'string' || createdAt instanceof Date ? Date.parse(String(createdAt)) : NaN;
  const ageDays = Number.isFinite(created) ? (now - created) / 86_400_000 : 365;
  factors.recency = ageDays <= 7 ? 10 : ageDays <= 30 ? 6 : ageDays <= 90 ? 3 : 0;
  const raw = Object.values(factors).reduce((a, b) => a + b, 0);
  return { score: Math.max(0, Math.min(100, raw)), factors };
}

function objectAt(config: Record<string, unknown>, scope: Record<string, unknown>, key: string): unknown {
  return compileExpression(String(config[key]))(scope);
}

export const CPU_ACTIONS: Readonly<Record<string, CpuAction>> = {
  'compute.leadScore': (config, scope) => {
    const lead = objectAt(config, scope, 'lead');
    if (!lead || typeof lead !== 'object')
      throw new Error(`config.lead (${String(config.lead)}) is not an object`);
    return leadScore(lead as Record<string, unknown>);
  },
  'transform.map': (config, scope) => compileMapping(config.mapping as Mapping)(scope),
  'compute.hash': (config, scope) => {
    // Iterated SHA-256: a fingerprint that costs what `rounds` says (key stretching, proof of work, benchmarks).
    let digest = createHash('sha256')
      .update(JSON.stringify(objectAt(config, scope, 'of') ?? null))
      .digest();
    const rounds = Number(config.rounds ?? 1);
    for (let i = 1; i < rounds; i++) digest = createHash('sha256').update(digest).digest();
    return { sha256: digest.toString('hex'), rounds };
  },
  'aggregate.stats': (config, scope) => {
    const values = objectAt(config, scope, 'values');
    const numbers = (Array.isArray(values) ? values : []).map(Number).filter(Number.isFinite);
    const sum = numbers.reduce((a, b) => a + b, 0);
    return {
      count: numbers.length,
      sum,
      min: numbers.length ? Math.min(...numbers) : null,
      max: numbers.length ? Math.max(...numbers) : null,
      mean: numbers.length ? sum / numbers.length : null,
    };
  },
};
