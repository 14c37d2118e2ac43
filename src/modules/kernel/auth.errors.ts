import { AuthenticationError } from '../../platform/errors/app-error';

export const AuthFailure = {
  MISSING_TOKEN: 'Authentication required: send "Authorization: Bearer <token>"',
  MALFORMED_HEADER: 'Authorization header must be "Bearer <token>"',
  INVALID_TOKEN: 'Token is invalid (bad signature or malformed)',
  EXPIRED_TOKEN: 'Token has expired',
  MISSING_CLAIMS: 'Token must carry the claims "sub" and "company_id"',
  MALFORMED_CLAIMS: 'Token claims "sub" and "company_id" must be UUIDs',
  DEACTIVATED_USER: 'Token belongs to a deactivated user',
  UNKNOWN_USER: 'Token does not belong to a user of its company',
} as const;

export function authFailure(reason: keyof typeof AuthFailure): AuthenticationError {
  const error = new AuthenticationError(AuthFailure[reason]);
  error.details.reason = reason;
  return error;
}
