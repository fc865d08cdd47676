import { jwtVerify, type JWTVerifyGetKey } from 'jose';
import { LRUCache } from 'lru-cache';
import type { Clock } from '../core/clock.js';
import { GatewayError } from '../core/errors.js';

/**
 * Projected ServiceAccount tokens (callers[].serviceAccount), verified offline with `jose`
 * against the cluster's JWKS: the signature (asymmetric algorithms only, so never `alg: none`
 * nor a key used as an HMAC secret), `iss`, `aud`, `exp` and `nbf` against the injected clock,
 * and `sub` of the form `system:serviceaccount:NS:NAME`.
 *
 * A verified token is remembered, by its text, until its `exp` (at most `maxCached` tokens): a
 * calling app sends the same token for an hour or so, and each request after the first costs
 * one map lookup instead of a signature check.
 */
export interface ServiceAccountVerifier {
  /** The `NS/NAME` the token proves: at once on a remembered token, else once verified. Throws 401. */
  verify(token: string): string | Promise<string>;
}

export const JWT_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'] as const;

const SUBJECT = /^system:serviceaccount:([a-z0-9][a-z0-9-]*):([a-z0-9][a-z0-9.-]*)$/;

/** Three base64url parts: worth handing to the verifier (a static token never looks like this). */
export function looksLikeJwt(token: string): boolean {
  return /^[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]*$/.test(token);
}

const challenge = { 'WWW-Authenticate': 'Bearer realm="countersign", error="invalid_token"' };

function refusal(err: unknown): GatewayError {
  const code = (err as { code?: string }).code;
  const claim = (err as { claim?: string }).claim;
  const reason = (err as { reason?: string }).reason;
  const why =
    code === 'ERR_JWT_EXPIRED'
      ? 'has expired'
      : code === 'ERR_JWT_CLAIM_VALIDATION_FAILED' && reason === 'missing'
        ? `has no "${claim ?? 'required'}" claim`
        : code === 'ERR_JWT_CLAIM_VALIDATION_FAILED' && claim === 'nbf'
          ? 'is not valid yet'
          : code === 'ERR_JWT_CLAIM_VALIDATION_FAILED'
            ? `has the wrong "${claim ?? 'claims'}" claim`
            : code === 'ERR_JWKS_NO_MATCHING_KEY' || code === 'ERR_JWKS_MULTIPLE_MATCHING_KEYS'
              ? 'is signed by no key of the cluster JWKS'
              : code === 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED'
                ? 'has a signature that does not verify'
                : code === 'ERR_JOSE_ALG_NOT_ALLOWED'
                  ? 'uses an algorithm that is not accepted'
                  : code === 'ERR_JOSE_NOT_SUPPORTED'
                    ? 'uses a JOSE feature that is not supported (a "crit" header parameter or key type)'
                    : 'is not a valid JWT';
  return new GatewayError('CALLER_UNAUTHENTICATED', `the service-account token ${why}`, { headers: challenge });
}

export function createServiceAccountVerifier(opts: { issuer: string; audience: string; getKey: JWTVerifyGetKey; clock: Clock; maxCached?: number }): ServiceAccountVerifier {
  const verified = new LRUCache<string, { account: string; notBefore: number; expires: number }>({ max: opts.maxCached ?? 10_000 });
  const check = async (token: string): Promise<string> => {
    let payload;
    try {
      ({ payload } = await jwtVerify(token, opts.getKey, {
        issuer: opts.issuer,
        audience: opts.audience,
        algorithms: [...JWT_ALGORITHMS],
        requiredClaims: ['exp', 'sub'],
        currentDate: new Date(opts.clock.now()),
      }));
    } catch (err) {
      throw refusal(err);
    }
    const m = SUBJECT.exec(payload.sub ?? '');
    if (!m) throw refusal(Object.assign(new Error('sub'), { code: 'ERR_JWT_CLAIM_VALIDATION_FAILED', claim: 'sub' }));
    const account = `${m[1]}/${m[2]}`;
    verified.set(token, { account, notBefore: (payload.nbf ?? 0) * 1000, expires: payload.exp! * 1000 });
    return account;
  };
  return {
    verify(token) {
      const hit = verified.get(token);
      if (hit) {
        const now = opts.clock.now();
        if (now >= hit.notBefore && now < hit.expires) return hit.account;
        verified.delete(token);
      }
      return check(token);
    },
  };
}
