import type { Clock } from '../../core/clock.js';
import type { KeetaUpstreamConfig } from '../../config/schema.js';
import { forwardableRequestHeaders } from '../../edge/headers.js';
import { isMerchantId, MERCHANT_ID_RULE } from '../../edge/ids.js';
import { GatewayError } from '../../core/errors.js';
import { reachesEndpoint } from '../../edge/endpoint-match.js';
import { classifyKeeta, keetaCodeLabel, readEnvelope } from '../../proxy/classify.js';
import type { UpstreamRequest } from '../../proxy/forwarder.js';
import { decodeUtf8, splitBaseUrl, type Exchange, type UpstreamHandler } from '../../proxy/upstream.js';
import type { TokenService } from '../../tokens/token-service.js';
import { getField, JsonSyntaxError, parseJsonText, type JsonObjectNode } from '../steps/json-text.js';
import { KeetaSignError, signKeetaRequest } from '../steps/sorted-json-body-sign.js';
import { KEETA_TOKEN_PATH } from './keeta-token-source.js';
import type { TokenCache } from '../../tokens/token-cache.js';

/** Caller headers the proxy replaces: the body is re-serialised, so its type/encoding are ours. */
const REPLACED_HEADERS = new Set(['content-type', 'content-encoding']);
const SHOP_ID = /^\d{1,20}$/;
const KEETA_PATH = /^(?:\/[A-Za-z0-9_.-]+)+$/;

/**
 * Keeta (docs/protocols.md 1.x, 4.1, 4.2): the body is parsed once into a lexeme-preserving tree;
 * each attempt injects appId, a fresh timestamp and the merchant's accessToken and signs.
 */
export function createKeetaHandler(deps: {
  name: string;
  cfg: KeetaUpstreamConfig;
  tokens: TokenService;
  cache: TokenCache;
  clock: Clock;
}): UpstreamHandler {
  const { name, cfg, tokens, cache, clock } = deps;
  const { origin, basePath } = splitBaseUrl(cfg.baseUrl);
  const signBase = cfg.signUrlBase ?? cfg.baseUrl;
  const appLevel = new Set(cfg.appLevelPaths);

  return {
    name,
    type: 'keeta',
    origin,
    begin(req): Exchange {
      // Keeta's paths are plain words. Anything else (percent-encoding, `;` parameters, a
      // trailing slash) could name the same endpoint to Keeta's server while slipping past
      // the checks below, so it is refused; the token endpoint is matched case-insensitively.
      if (!KEETA_PATH.test(req.path)) {
        throw new GatewayError('BAD_PATH', 'Keeta paths are segments of letters, digits, _ . - (no encoding, parameters or trailing slash)');
      }
      // Keeta calls are JSON POSTs with every parameter in the signed body: a query string
      // would reach Keeta unsigned (and could shadow a signed field), so it is refused.
      if (req.query !== '') {
        throw new GatewayError('BAD_PATH', 'Keeta calls carry their parameters in the JSON body: a query string would not be signed');
      }
      if (reachesEndpoint(req.path, KEETA_TOKEN_PATH)) {
        throw new GatewayError('FORBIDDEN_PATH', `${KEETA_TOKEN_PATH} is the proxy's own: tokens are imported through the admin API and renewed by the proxy`);
      }
      const body = parseBody(req.body);
      const isAppLevel = appLevel.has(req.path);
      const merchant = isAppLevel ? undefined : findMerchant(req.headers['x-countersign-merchant'], body);
      const headers = forwardableRequestHeaders(req.headers, REPLACED_HEADERS);
      headers['content-type'] = 'application/json; charset=utf-8';
      const signUrl = signBase + req.path;
      const path = basePath + req.path + req.query;
      let usedToken: string | undefined;

      /** This attempt's request: appId, a fresh timestamp, the token in use, the signature. */
      const signed = (): UpstreamRequest => {
        let out;
        try {
          out = signKeetaRequest({
            signUrl,
            appSecret: cfg.appSecret,
            appId: cfg.appId,
            timestampSec: Math.floor(clock.now() / 1000),
            ...(usedToken !== undefined && { accessToken: usedToken }),
            body,
          });
        } catch (err) {
          if (err instanceof KeetaSignError) throw new GatewayError('BAD_JSON', `the body cannot be signed: ${err.message}`);
          throw err;
        }
        return { method: req.method, path, headers, body: out.body, timeoutMs: cfg.timeout };
      };

      return {
        merchant,
        prepare() {
          usedToken = undefined;
          if (merchant === undefined) return signed();
          const rec = tokens.fresh(merchant);
          if (rec) {
            usedToken = rec.accessToken;
            return signed();
          }
          return tokens.current(merchant).then((r) => {
            if (!r) throw new GatewayError('UNKNOWN_MERCHANT', `no token is known for merchant "${merchant}" of ${name}`);
            usedToken = r.accessToken;
            return signed();
          });
        },
        judge(res) {
          const env = readEnvelope(res.body);
          const cls = classifyKeeta(res.status, env);
          if (!env) return { class: cls };
          const retry = usedToken !== undefined && cfg.tokenErrorCodes.includes(env.code) ? ('token' as const) : undefined;
          return { class: cls, codeLabel: keetaCodeLabel(env.code, cfg.tokenErrorCodes), ...(retry && { retry }) };
        },
        async recover(reason) {
          if (reason !== 'token' || merchant === undefined || usedToken === undefined) return false;
          try {
            const rec = await tokens.refresh(merchant, 'rejected', usedToken);
            return rec.accessToken !== usedToken;
          } catch {
            return false;
          }
        },
      };

      function findMerchant(header: string | string[] | undefined, obj: JsonObjectNode): string {
        const named = Array.isArray(header) ? header[0] : header;
        if (named !== undefined) {
          if (!isMerchantId(named)) throw new GatewayError('UNKNOWN_MERCHANT', `X-Countersign-Merchant: ${MERCHANT_ID_RULE}`);
          return named;
        }
        const shop = getField(obj, 'shopId');
        const shopId = shop?.kind === 'number' ? shop.lexeme : shop?.kind === 'string' ? shop.value : undefined;
        if (shopId === undefined) {
          throw new GatewayError('UNKNOWN_MERCHANT', `${req.path} needs a merchant: send X-Countersign-Merchant or a shopId in the body`);
        }
        if (!SHOP_ID.test(shopId)) throw new GatewayError('UNKNOWN_MERCHANT', `shopId ${JSON.stringify(shopId).slice(0, 40)} is not a Keeta store id`);
        const found = cache.merchantForShop(name, shopId);
        if (!found) throw new GatewayError('UNKNOWN_MERCHANT', `no merchant of ${name} is known for shopId ${shopId}`);
        return found;
      }
    },
  };
}

function parseBody(raw: Buffer): JsonObjectNode {
  const text = decodeUtf8(raw);
  if (text === undefined) throw new GatewayError('BAD_JSON', 'the body is not valid UTF-8');
  if (text.trim() === '') throw new GatewayError('BAD_JSON', 'Keeta calls need a JSON object body, and the body is empty');
  let node;
  try {
    node = parseJsonText(text);
  } catch (err) {
    if (err instanceof JsonSyntaxError) throw new GatewayError('BAD_JSON', `the body is not valid JSON: ${err.message}`);
    throw err;
  }
  if (node.kind !== 'object') throw new GatewayError('BAD_JSON', `Keeta calls need a JSON object body, not a JSON ${node.kind}`);
  return node;
}

