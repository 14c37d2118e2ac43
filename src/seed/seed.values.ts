import { DealStage, Industry, LeadSource, LeadStatus } from '../modules/kernel';
import type { SeededRandom } from './random';

/* What seeded values look like: the words they are made of, how often each value comes up, and their dates. */

export const FIRST_NAMES = [
  'Ada',
  'Grace',
  'Alan',
  'Linus',
  'Margaret',
  'Dennis',
  'Barbara',
  'Ken',
  'Frances',
  'Edsger',
  'Hedy',
  'Tim',
  'Radia',
  'John',
  'Karen',
  'Niklaus',
];
export const LAST_NAMES = [
  'Lovelace',
  'Hopper',
  'Turing',
  'Torvalds',
  'Hamilton',
  'Ritchie',
  'Liskov',
  'Thompson',
  'Allen',
  'Dijkstra',
  'Lamarr',
  'Berners-Lee',
  'Perlman',
  'McCarthy',
  'Jones',
  'Wirth',
];
export const COMPANY_WORDS = [
  'Acme',
  'Globex',
  'Initech',
  'Umbrella',
  'Hooli',
  'Stark',
  'Wayne',
  'Tyrell',
  'Cyberdyne',
  'Soylent',
  'Vandelay',
  'Wonka',
];
export const COUNTRIES = ['US', 'DE', 'GB', 'FR', 'NL', 'SE', 'ES', 'IT', 'CA', 'AU', 'JP', 'BR'];
export const COUNTRY_WEIGHTS = [30, 12, 10, 8, 5, 4, 5, 5, 6, 4, 6, 5];

export const STATUSES = Object.values(LeadStatus);
export const STATUS_WEIGHTS = [35, 25, 15, 15, 10];
export const SOURCES = Object.values(LeadSource);
export const SOURCE_WEIGHTS = [40, 15, 12, 10, 13, 10];
export const INDUSTRIES = Object.values(Industry);
export const INDUSTRY_WEIGHTS = [28, 16, 12, 10, 9, 7, 6, 5, 4, 3];
export const STAGES = Object.values(DealStage);
export const STAGE_WEIGHTS = [30, 20, 15, 10, 15, 10];
export const STAGE_PROBABILITY: Record<DealStage, number> = {
  PROSPECTING: 10,
  QUALIFICATION: 25,
  PROPOSAL: 50,
  NEGOTIATION: 75,
  CLOSED_WON: 100,
  CLOSED_LOST: 0,
};

export const DAY_MS = 86_400_000;
export const HISTORY_DAYS = 730;

/** A creation time within the history before `anchor`. */
export function timestampWithin(random: SeededRandom, anchor: number): Date {
  // sqrt skews towards recent dates: a growing business has more recent records.
  const ageDays = HISTORY_DAYS * (1 - Math.sqrt(random.next()));
  return new Date(anchor - ageDays * DAY_MS - random.int(0, DAY_MS - 1));
}
