import type { Clock } from '../../core/clock.js';
import type { KeetaUpstreamConfig } from '../../config/schema.js';
import { UpstreamCallError, type Forwarder } from '../../proxy/forwarder.js';
import { splitBaseUrl } from '../../proxy/upstream.js';
import { TokenFetchError, TokenOutcomeUnknownError, type TokenSource } from '../../tokens/token-service.js';
import type { TokenRecord } from '../../tokens/types.js';
import { jsonString } from '../steps/json-text.js';
import { signKeetaAppCall } from '../steps/sorted-json-body-sign.js';

export const KEETA_TOKEN_PATH = '/base/oauth/token';

/**
 * Renews a Keeta merchant's pair with its single-use refresh token (docs/protocols.md 1.4, 4.2):
 * `POST /base/oauth/token` `{grantType: "refresh_token", refreshToken}`, app-signed. The
 * answer is read flat or wrapped in `{code, message, data}`.
 */
export function createKeetaTokenSource(
  name: string,
  /** The upstream's config in force at each call: a reloaded appSecret, baseUrl or timeout is used by the next refresh. */
  config: () => KeetaUpstreamConfig,
  forwarder: Forwarder,
  clock: Clock,
): TokenSource {
  return {
    obtainsFromNothing: false,
    async obtain(merchant, current) {
      const cfg = config();
      const { origin, basePath } = splitBaseUrl(cfg.baseUrl);
      const signUrl = `${cfg.signUrlBase ?? cfg.baseUrl}${KEETA_TOKEN_PATH}`;
      if (!current?.refreshToken) throw new TokenFetchError(`merchant "${merchant}" of ${name} has no refresh token; import a new pair`);
      const signed = signKeetaAppCall(signUrl, cfg.appSecret, cfg.appId, Math.floor(clock.now() / 1000), [
        ['grantType', jsonString('refresh_token')],
        ['refreshToken', jsonString(current.refreshToken)],
      ]);
      let res;
      try {
        // Its own connections and its own timeout, counted from when it is sent: a refresh
        // must never queue behind business traffic and time out on a full pool.
        res = await forwarder.send(origin, {
          method: 'POST',
          path: `${basePath}${KEETA_TOKEN_PATH}`,
          headers: { 'content-type': 'application/json; charset=utf-8', accept: 'application/json' },
          body: signed.body,
          timeoutMs: cfg.tokenTimeout,
          lane: 'token',
        });
      } catch (err) {
        // Sent and no answer: Keeta may have rotated the pair and spent the refresh token.
        if (err instanceof UpstreamCallError && err.sent) throw new TokenOutcomeUnknownError(`the refresh was sent and its answer lost: ${err.message}`);
        throw err;
      }
      const pair = parseTokenResponse(res.status, res.body);
      return {
        upstream: name,
        merchant,
        accessToken: pair.accessToken,
        refreshToken: pair.refreshToken,
        issuedAt: pair.issuedAtTime,
        expiresAt: pair.issuedAtTime + pair.expiresIn * 1000,
        refreshedAt: clock.now(),
        shopIds: [...current.shopIds],
      } satisfies TokenRecord;
    },
  };
}

export interface KeetaTokenPair {
  accessToken: string;
  refreshToken: string;
  expiresIn: number;
  issuedAtTime: number;
}

/** Parse a token answer, flat or wrapped. Errors never quote the body (it may hold tokens). */
export function parseTokenResponse(status: number, body: Buffer): KeetaTokenPair {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString('utf8'));
  } catch {
    throw new TokenFetchError(`Keeta token endpoint answered HTTP ${status} with a body that is not JSON`);
  }
  if (!isObject(parsed)) throw new TokenFetchError(`Keeta token endpoint answered HTTP ${status} with an unexpected body`);
  if (typeof parsed.code === 'number' && parsed.code !== 0) {
    const message = typeof parsed.message === 'string' ? parsed.message.slice(0, 200) : '';
    throw new TokenFetchError(`Keeta refused the token refresh: code ${parsed.code}${message ? ` (${message})` : ''}`);
  }
  const fields = isObject(parsed.data) ? parsed.data : parsed;
  const { accessToken, refreshToken, expiresIn, issuedAtTime } = fields;
  if (
    typeof accessToken !== 'string' ||
    accessToken === '' ||
    typeof refreshToken !== 'string' ||
    refreshToken === '' ||
    typeof expiresIn !== 'number' ||
    !(expiresIn > 0) ||
    typeof issuedAtTime !== 'number' ||
    !(issuedAtTime > 0)
  ) {
    throw new TokenFetchError('Keeta token answer lacks accessToken, refreshToken, expiresIn or issuedAtTime');
  }
  return { accessToken, refreshToken, expiresIn, issuedAtTime };
}

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}
