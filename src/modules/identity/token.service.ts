import { createSecretKey, type KeyObject } from 'node:crypto';
import { errors, jwtVerify, SignJWT, type JWTPayload } from 'jose';
import { LRUCache } from 'lru-cache';
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

/** Tokens whose signature was checked, by token text: a client sends the same token on every request. */
const VERIFIED_TOKENS = 10_000;

/** Mints and verifies the gateway's HS256 JWTs (claims `sub` = user id, `company_id`). */
export class TokenService {
  private readonly key: KeyObject;
  private readonly verified = new LRUCache<string, TokenClaims>({ max: VERIFIED_TOKENS });

  constructor(private readonly options: TokenServiceOptions) {
    this.key = createSecretKey(new TextEncoder().encode(options.secret));
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

  /** The token's claims; a token seen before is not checked again (same text, same signature) until it expires. */
  async verify(token: string): Promise<TokenClaims> {
    const known = this.verified.get(token);
    if (known) {
      if (known.expiresAt * 1000 > Date.now()) return known;
      this.verified.delete(token);
      throw authFailure('EXPIRED_TOKEN');
    }
    const claims = await this.check(token);
    this.verified.set(token, claims);
    return claims;
  }

  private async check(token: string): Promise<TokenClaims> {
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
