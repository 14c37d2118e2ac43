/** Who is asking: the authenticated user of one company, as resolved from a verified token. */
export interface Principal {
  userId: string;
  companyId: string;
  roleId: string | null;
  isAdmin: boolean;
  /** Seconds since epoch at which the token stops being valid; checked again before every operation. */
  tokenExpiresAt: number;
}
