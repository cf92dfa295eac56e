/** Public entry of the auth store: state, rules, permission checks, encoding and apply planning. */
export * from './types.js';
export * from './errors.js';
export { applyAuthRequest, compareStrings, type AuthTransition } from './mutate.js';
export { checkAdmin, checkKeyAccess, hasRootRole, userHasRole, samePermissionSpan, comparePermissions, type AccessKind, type Caller } from './permissions.js';
export { encodeAuthState, decodeAuthState, authRequestToWire, authRequestFromWire, authResultToWire, authResultFromWire } from './codec.js';
export { planAuthCommand, staleAuthRevision, leaseKeysDenied, leaseKeysCheckNeeded, loadAuthState, type AuthApplyPlan } from './apply-auth.js';
