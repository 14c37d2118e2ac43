import { Foundation1764300000000 } from './1764300000000-foundation';

/** Every migration in order; passed as classes so the same list works from ts (tests) and js (dist). */
export const MIGRATIONS = [Foundation1764300000000];
