import { errors, jwtVerify, SignJWT, type JWTPayload } from 'jose';
import { isUuid } from '../../platform/errors/app-error';
import { authFailure } from '../kernel';

export interface TokenClaims {
  userId: string;
  companyId: string;
  expiresAt: number;
}

export interface TokenServiceOptions {
  /** HS256 secret (at least 32 characters). */
  secret: string;
  /** Lifetime of minted tokens. Default 3600 s. */
  ttlSeconds?: number;
}

/** Mints and verifies the gateway's HS256 JWTs (claims `sub` = user id, `company_id`). */
export class TokenService {
  private readonly key: Uint8Array;

  constructor(private readonly options: TokenServiceOptions) {
    this.key = new TextEncoder().encode(options.secret);
  }

  async mint(
    userId: string,
    companyId: string,
    ttlSeconds = this.options.ttlSeconds ?? 3600,
  ): Promise<string> {
    return new SignJWT({ company_id: companyId })
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
      .setSubject(userId)
      .setIssuedAt()
      .setExpirationTime(Math.floor(Date.now() / 1000) + ttlSeconds)
      .sign(this.key);
  }

  async verify(token: string): Promise<TokenClaims> {
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, this.key, { algorithms: ['HS256'] }));
    } catch (error) {
      if (error instanceof errors.JWTExpired) throw authFailure('EXPIRED_TOKEN');
      throw authFailure('INVALID_TOKEN');
    }
    const companyId = payload.company_id;
    if (typeof payload.sub !== 'string' || typeof companyId !== 'string' || typeof payload.exp !== 'number') {
      throw authFailure('MISSING_CLAIMS');
    }
    // Ids are UUIDs: a validly signed token naming anything else belongs to no user (and must not reach SQL).
    if (!isUuid(payload.sub) || !isUuid(companyId)) throw authFailure('MALFORMED_CLAIMS');
    return { userId: payload.sub, companyId, expiresAt: payload.exp };
  }
}

/** Extracts the token from `Bearer <token>`; undefined when no header was sent. */
export function parseBearer(header: string | undefined | null): string | undefined {
  if (header === undefined || header === null || header === '') return undefined;
  const match = /^Bearer\s+(\S+)$/i.exec(header.trim());
  if (!match?.[1]) throw authFailure('MALFORMED_HEADER');
  return match[1];
}
