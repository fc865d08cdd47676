import type { KeySecureUpstreamConfig } from '../config/schema.js';
import { forwardableRequestHeaders } from '../edge/headers.js';
import { GatewayError } from '../core/errors.js';
import type { Logger } from '../observability/logger.js';
import { reachesEndpoint } from '../edge/endpoint-match.js';
import { classifyKeySecure, keySecureCodeLabel, readEnvelope } from '../proxy/classify.js';
import { decodeUtf8, headerValue, splitBaseUrl, type Exchange, type UpstreamHandler } from '../proxy/upstream.js';
import type { TokenService } from '../tokens/token-service.js';
import { KEYSECURE_MERCHANT, type TokenRecord } from '../tokens/types.js';
import type { UpstreamRequest } from '../proxy/forwarder.js';
import { CONFIG_FAULTS } from './config-faults.js';
import { KEYSECURE_TOKEN_PATH } from './token-source.js';
import type { UpstreamClock } from './upstream-clock.js';

/** Auth headers the proxy sets; callers' copies are dropped. */
const AUTH_HEADERS = new Set(['api-key', 'timestamp', 'access-token']);

const FAULT_LOG_EVERY_MS = 60_000;

/**
 * KeySecure (docs/protocols.md 2.x, 4.3): header injection only. Bodies, query strings and methods
 * pass through byte for byte.
 */
export function createKeySecureHandler(deps: {
  name: string;
  cfg: KeySecureUpstreamConfig;
  tokens: TokenService;
  upstreamClock: UpstreamClock;
  log: Logger;
}): UpstreamHandler {
  const { name, cfg, tokens, upstreamClock, log } = deps;
  const { origin, basePath } = splitBaseUrl(cfg.baseUrl);
  const lastFaultLog = new Map<number, number>();

  const reportFault = (code: number) => {
    const now = Date.now();
    if ((lastFaultLog.get(code) ?? 0) + FAULT_LOG_EVERY_MS > now) return;
    lastFaultLog.set(code, now);
    log.error({ upstream: name, code, likelyCause: CONFIG_FAULTS[code] }, `KeySecure configuration fault ${code}: ${CONFIG_FAULTS[code]}`);
  };

  return {
    name,
    type: 'keysecure',
    origin,
    begin(req): Exchange {
      // The gateway's Access-Token is its own: a caller must never receive one, nor cause a
      // renewal. Letter case, a trailing slash or a suffix do not make it a different endpoint.
      if (reachesEndpoint(req.path, KEYSECURE_TOKEN_PATH)) {
        throw new GatewayError('FORBIDDEN_PATH', `${KEYSECURE_TOKEN_PATH} is the proxy's own: the Access-Token is obtained and renewed by the proxy`);
      }
      if (req.body.length > 0) {
        const text = decodeUtf8(req.body);
        if (text === undefined) throw new GatewayError('BAD_JSON', 'the body is not valid UTF-8');
        try {
          JSON.parse(text);
        } catch (err) {
          throw new GatewayError('BAD_JSON', `the body is not valid JSON: ${(err as Error).message.slice(0, 120)}`);
        }
      }
      const headers = forwardableRequestHeaders(req.headers, AUTH_HEADERS);
      headers['api-key'] = cfg.apiKey;
      headers['content-type'] ??= 'application/json';
      if (cfg.timezone && headers['timezone'] === undefined) headers['timezone'] = cfg.timezone;
      if (cfg.language && headers['language'] === undefined) headers['language'] = cfg.language;
      const path = basePath + req.path + req.query;
      const body = req.body.length > 0 ? req.body : undefined;
      let usedToken: string | undefined;

      /** This attempt's request: the Access-Token and a timestamp on the upstream's clock. */
      const withToken = (rec: TokenRecord | undefined): UpstreamRequest => {
        if (!rec) throw new GatewayError('TOKEN_UNAVAILABLE', `no Access-Token can be had for ${name} now`, { headers: { 'Retry-After': '5' } });
        usedToken = rec.accessToken;
        headers['access-token'] = usedToken;
        headers['timestamp'] = upstreamClock.stamp();
        return { method: req.method, path, headers, ...(body && { body }), timeoutMs: cfg.timeout };
      };

      return {
        prepare() {
          const rec = tokens.fresh(KEYSECURE_MERCHANT);
          return rec ? withToken(rec) : tokens.current(KEYSECURE_MERCHANT).then(withToken);
        },
        judge(res) {
          const env = readEnvelope(res.body);
          const cls = classifyKeySecure(res.status, env);
          if (!env) return { class: cls };
          if (CONFIG_FAULTS[env.code]) reportFault(env.code);
          const retry = env.code === 1007 && usedToken !== undefined ? 'token' : env.code === 1005 ? 'clock_skew' : undefined;
          return { class: cls, codeLabel: keySecureCodeLabel(env.code), ...(retry && { retry }) };
        },
        async recover(reason, res) {
          if (reason === 'clock_skew') return upstreamClock.learn(headerValue(res.headers, 'date'));
          if (usedToken === undefined) return false;
          try {
            const rec = await tokens.refresh(KEYSECURE_MERCHANT, 'rejected', usedToken);
            return rec.accessToken !== usedToken;
          } catch {
            return false;
          }
        },
      };
    },
  };
}
