import { Foundation1764300000000 } from './1764300000000-foundation';
import { SharingIndexes1764400000000 } from './1764400000000-sharing-indexes';
import { UserDeactivation1764500000000 } from './1764500000000-user-deactivation';

/** Every migration in order; passed as classes so the same list works from ts (tests) and js (dist). */
export const MIGRATIONS = [
  Foundation1764300000000,
  SharingIndexes1764400000000,
  UserDeactivation1764500000000,
];
