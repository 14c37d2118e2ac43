import { defineSettings, positiveInt } from '../../config/settings';

/** How long sharing's caches keep rules and visibility (config.sharing). */
export const sharingSettings = defineSettings({
  variables: {
    SHARING_RULES_TTL_SECONDS: positiveInt(3600),
    SHARING_VISIBILITY_TTL_SECONDS: positiveInt(1800),
  },
  read: (e) => ({
    rulesTtlSeconds: e.SHARING_RULES_TTL_SECONDS,
    visibilityTtlSeconds: e.SHARING_VISIBILITY_TTL_SECONDS,
  }),
});
