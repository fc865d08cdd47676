import type { Clock } from '../core/clock.js';
import type { KeySecureUpstreamConfig } from '../config/schema.js';
import type { Forwarder, UpstreamResponse } from '../proxy/forwarder.js';
import { headerValue, splitBaseUrl } from '../proxy/upstream.js';
import { TokenFetchError, type TokenSource } from '../tokens/token-service.js';
import { CONFIG_FAULTS } from './config-faults.js';
import type { TokenRecord } from '../tokens/types.js';
import type { UpstreamClock } from './upstream-clock.js';

export const KEYSECURE_TOKEN_PATH = '/open-api/v1/merchant/token';

/**
 * Gets a KeySecure Access-Token (docs/protocols.md 2.3): `GET /open-api/v1/merchant/token` with
 * Api-Key and Timestamp. A 1005 answer corrects the clock offset and is tried once more.
 * `expired_time` is the upstream's absolute time; it is converted to local time.
 */
export function createKeySecureTokenSource(
  name: string,
  /** The upstream's config in force at each call: a reloaded apiKey, baseUrl or timeout is used by the next fetch. */
  config: () => KeySecureUpstreamConfig,
  forwarder: Forwarder,
  clock: Clock,
  upstreamClock: UpstreamClock,
): TokenSource {
  const fetchOnce = (): Promise<UpstreamResponse> => {
    const cfg = config();
    const { origin, basePath } = splitBaseUrl(cfg.baseUrl);
    return forwarder.send(origin, {
      method: 'GET',
      path: basePath + KEYSECURE_TOKEN_PATH,
      headers: { 'api-key': cfg.apiKey, timestamp: upstreamClock.stamp(), 'content-type': 'application/json', accept: 'application/json' },
      // Its own connections and timeout: a renewal never queues behind business traffic.
      timeoutMs: cfg.tokenTimeout,
      lane: 'token',
    });
  };

  return {
    obtainsFromNothing: true,
    async obtain(merchant) {
      let res = await fetchOnce();
      let body = parse(res);
      if (body.code === 1005 && upstreamClock.learn(headerValue(res.headers, 'date'))) {
        res = await fetchOnce();
        body = parse(res);
      }
      if (body.code !== 0) {
        const cause = CONFIG_FAULTS[body.code];
        throw new TokenFetchError(`KeySecure token endpoint answered code ${body.code}${body.msg ? ` (${String(body.msg).slice(0, 200)})` : ''}${cause ? `: ${cause}` : ''}`);
      }
      const data = body.data as { access_token?: unknown; expired_time?: unknown } | undefined;
      if (typeof data?.access_token !== 'string' || data.access_token === '' || typeof data.expired_time !== 'number') {
        throw new TokenFetchError('KeySecure token answer lacks access_token or expired_time');
      }
      const now = clock.now();
      return {
        upstream: name,
        merchant,
        accessToken: data.access_token,
        issuedAt: now,
        expiresAt: upstreamClock.toLocal(data.expired_time),
        refreshedAt: now,
        shopIds: [],
      } satisfies TokenRecord;
    },
  };
}

function parse(res: UpstreamResponse): { code: number; msg?: unknown; data?: unknown } {
  try {
    const parsed = JSON.parse(res.body.toString('utf8')) as { code?: unknown };
    if (typeof parsed.code === 'number') return parsed as { code: number };
  } catch {
    /* fall through */
  }
  throw new TokenFetchError(`KeySecure token endpoint answered HTTP ${res.status} without a {code} envelope`);
}
