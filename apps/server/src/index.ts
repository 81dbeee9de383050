export { buildKnockApp, createKnockContext, type HelperPort, type KnockContext } from "./app.js";
export { compareWithHelper } from "./startup-checks.js";
export { TwoFactor, type TwoFactorOptions } from "./two-factor.js";
export {
  FileUsedTokenStore,
  MemoryUsedTokenStore,
  UnavailableUsedTokenStore,
  UsedTokenStoreError,
  type UsedTokenEntry,
  type UsedTokenStore,
} from "./used-tokens.js";
