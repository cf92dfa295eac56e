/**
 * Errors of the auth store. Each `code` is the gateway's etcd error code
 * (src/gateway/errors.ts ETCD_ERRORS) and each message etcd's exact text, so
 * an error stored in the dedupe table and rebuilt later still maps to the
 * same wire error.
 */

/** Stable codes of auth errors (rows of etcd's rpctypes table). */
export type AuthErrorCode =
  | 'ROOT_USER_NOT_EXIST'
  | 'ROOT_ROLE_NOT_EXIST'
  | 'USER_ALREADY_EXIST'
  | 'USER_EMPTY'
  | 'USER_NOT_FOUND'
  | 'ROLE_ALREADY_EXIST'
  | 'ROLE_NOT_FOUND'
  | 'ROLE_EMPTY'
  | 'AUTH_FAILED'
  | 'PERMISSION_NOT_GIVEN'
  | 'PERMISSION_DENIED'
  | 'ROLE_NOT_GRANTED'
  | 'PERMISSION_NOT_GRANTED'
  | 'AUTH_NOT_ENABLED'
  | 'INVALID_AUTH_TOKEN'
  | 'INVALID_AUTH_MGMT'
  | 'AUTH_OLD_REVISION';

/** etcd's message of each code. */
export const AUTH_ERROR_MESSAGES: Readonly<Record<AuthErrorCode, string>> = {
  ROOT_USER_NOT_EXIST: 'etcdserver: root user does not exist',
  ROOT_ROLE_NOT_EXIST: 'etcdserver: root user does not have root role',
  USER_ALREADY_EXIST: 'etcdserver: user name already exists',
  USER_EMPTY: 'etcdserver: user name is empty',
  USER_NOT_FOUND: 'etcdserver: user name not found',
  ROLE_ALREADY_EXIST: 'etcdserver: role name already exists',
  ROLE_NOT_FOUND: 'etcdserver: role name not found',
  ROLE_EMPTY: 'etcdserver: role name is empty',
  AUTH_FAILED: 'etcdserver: authentication failed, invalid user ID or password',
  PERMISSION_NOT_GIVEN: 'etcdserver: permission not given',
  PERMISSION_DENIED: 'etcdserver: permission denied',
  ROLE_NOT_GRANTED: 'etcdserver: role is not granted to the user',
  PERMISSION_NOT_GRANTED: 'etcdserver: permission is not granted to the role',
  AUTH_NOT_ENABLED: 'etcdserver: authentication is not enabled',
  INVALID_AUTH_TOKEN: 'etcdserver: invalid auth token',
  INVALID_AUTH_MGMT: 'etcdserver: invalid auth management',
  AUTH_OLD_REVISION: 'etcdserver: revision of auth store is old',
};

/** An auth rule refused a request; nothing changed. */
export class AuthError extends Error {
  override readonly name = 'AuthError';
  constructor(
    readonly code: AuthErrorCode,
    options?: { cause?: unknown },
  ) {
    super(AUTH_ERROR_MESSAGES[code], options);
  }
}

/** Whether `code` names an auth error (a stored failure is rebuilt with it). */
export function isAuthErrorCode(code: string): code is AuthErrorCode {
  return Object.prototype.hasOwnProperty.call(AUTH_ERROR_MESSAGES, code);
}
