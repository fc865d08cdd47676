/**
 * One Keeta API request, checked in this order (the first failure answers):
 *
 *  1. POST, Content-Type application/json (charset, if given, utf-8), body ≤ 5 MiB,
 *     valid UTF-8, valid JSON, a JSON object               → REQUEST_MALFORMED
 *     a repeated key in any object                         → PARAM_INVALID
 *  2. known path under /api/open                           → PATH_NOT_FOUND
 *  3. appId equals the app's id                            → APP_ID_INVALID
 *  4. timestamp: whole Unix seconds, |now - ts| ≤ window   → TIMESTAMP_INVALID
 *  5. sig = SHA-256(http(s)://{Host}{path}?{sorted params}{appSecret})  → SIG_INVALID
 *  6. merchant paths: accessToken present / valid          → ACCESS_TOKEN_MISSING / _INVALID
 *  7. the endpoint's own parameters, then shop ownership   → PARAM_INVALID / SHOP_NOT_AUTHORISED
 */
import { type SimAnswer, rawFailureAnswer, textAnswer } from '../server-base.js';
import type { SimRequest } from '../server-base.js';
import type { FailNextOptions, SimCore } from '../control.js';
import { toJsonText } from '../json-text.js';
import { KEETA_SIM_CODES, KEETA_SIM_MESSAGES, KeetaSimError } from './codes.js';
import { KEETA_ENDPOINTS, TOKEN_PATH } from './endpoints.js';
import { DuplicateKeyError, type JsonObject, JsonSyntaxError, member, parseJson } from './json.js';
import { keetaSign, keetaSignUrl } from './signature.js';
import type { KeetaState } from './state.js';

export const KEETA_BASE_PATH = '/api/open';

function envelope(code: number, message: string, data: unknown = null): SimAnswer {
  return { status: 200, contentType: 'application/json; charset=utf-8', body: toJsonText({ code, message, data }), code };
}

function isJsonContentType(value: string | undefined): boolean {
  if (value === undefined) return false;
  const [type, ...params] = value.split(';').map((p) => p.trim().toLowerCase());
  if (type !== 'application/json') return false;
  return params.every((p) => !p.startsWith('charset=') || p === 'charset=utf-8' || p === 'charset="utf-8"');
}

function parseBody(req: SimRequest): JsonObject {
  if (req.method !== 'POST') throw new KeetaSimError('REQUEST_MALFORMED', `method ${req.method} not allowed, use POST`);
  if (!isJsonContentType(req.headers['content-type'])) {
    throw new KeetaSimError('REQUEST_MALFORMED', `Content-Type must be application/json, got ${JSON.stringify(req.headers['content-type'] ?? null)}`);
  }
  if (req.bodyTooLarge) throw new KeetaSimError('REQUEST_MALFORMED', 'body too large');
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(req.rawBody);
  } catch {
    throw new KeetaSimError('REQUEST_MALFORMED', 'body is not valid UTF-8');
  }
  let value;
  try {
    value = parseJson(text);
  } catch (err) {
    if (err instanceof DuplicateKeyError) throw new KeetaSimError('PARAM_INVALID', err.message);
    if (err instanceof JsonSyntaxError) throw new KeetaSimError('REQUEST_MALFORMED', `invalid JSON: ${err.message}`);
    throw err;
  }
  if (value.type !== 'object') throw new KeetaSimError('REQUEST_MALFORMED', 'body must be a JSON object');
  return value;
}

/** A number lexeme or a string of the same digits. */
function digitsOf(body: JsonObject, key: string): string | undefined {
  const v = member(body, key);
  if (v?.type === 'number') return v.lexeme;
  if (v?.type === 'string') return v.value;
  return undefined;
}

function checkAppId(state: KeetaState, body: JsonObject): void {
  const appId = digitsOf(body, 'appId');
  if (appId === undefined) throw new KeetaSimError('APP_ID_INVALID', 'appId is required');
  if (appId !== state.settings.appId) throw new KeetaSimError('APP_ID_INVALID', `unknown appId ${appId}`);
}

function checkTimestamp(state: KeetaState, body: JsonObject, now: number): void {
  const ts = digitsOf(body, 'timestamp');
  if (ts === undefined) throw new KeetaSimError('TIMESTAMP_INVALID', 'timestamp is required');
  if (!/^\d{1,12}$/.test(ts)) throw new KeetaSimError('TIMESTAMP_INVALID', `timestamp ${ts} is not Unix seconds`);
  const skewSec = Math.abs(now - Number(ts) * 1000) / 1000;
  if (skewSec > state.settings.timestampWindowSec) {
    throw new KeetaSimError(
      'TIMESTAMP_INVALID',
      `timestamp ${ts} is ${Math.round(skewSec)} s from server time ${Math.floor(now / 1000)} (window ${state.settings.timestampWindowSec} s)`,
    );
  }
}

function checkSig(state: KeetaState, req: SimRequest, body: JsonObject): void {
  const sig = member(body, 'sig');
  if (sig === undefined) throw new KeetaSimError('SIG_INVALID', 'sig is required');
  if (sig.type !== 'string') throw new KeetaSimError('SIG_INVALID', 'sig must be a string');
  const host = req.headers['host'];
  if (!host) throw new KeetaSimError('SIG_INVALID', 'no Host header, cannot rebuild the signed URL');
  const url = keetaSignUrl(host, req.path, req.secure ? 'https' : 'http');
  if (!state.settings.appSecrets.some((secret) => sig.value === keetaSign(url, body, secret))) {
    throw new KeetaSimError('SIG_INVALID', 'sig does not match');
  }
}

function authenticate(state: KeetaState, body: JsonObject, now: number): string {
  const token = member(body, 'accessToken');
  if (token === undefined || token.type === 'null' || (token.type === 'string' && token.value === '')) {
    throw new KeetaSimError('ACCESS_TOKEN_MISSING');
  }
  if (token.type !== 'string') throw new KeetaSimError('ACCESS_TOKEN_INVALID', 'accessToken must be a string');
  return state.tokens.authenticate(token.value, now);
}

function failureAnswer(f: FailNextOptions): SimAnswer {
  if (f.httpStatus !== undefined) return rawFailureAnswer(f.httpStatus, f.body);
  const code = f.code ?? KEETA_SIM_CODES.SERVER_ERROR;
  return envelope(code, f.message ?? (code === KEETA_SIM_CODES.SERVER_ERROR ? KEETA_SIM_MESSAGES.SERVER_ERROR : 'simulated failure'));
}

function processRequest(state: KeetaState, core: SimCore, req: SimRequest, endpointPath: string): SimAnswer {
  const now = core.now();
  try {
    const body = parseBody(req);
    const endpoint = KEETA_ENDPOINTS[endpointPath];
    if (!endpoint || !Object.hasOwn(KEETA_ENDPOINTS, endpointPath)) {
      throw new KeetaSimError('PATH_NOT_FOUND', `${KEETA_BASE_PATH}${endpointPath}`);
    }
    checkAppId(state, body);
    checkTimestamp(state, body, now);
    checkSig(state, req, body);
    const merchantId = endpoint.level === 'merchant' ? authenticate(state, body, now) : undefined;
    const result = endpoint.handle({ state, body, now, merchantId });
    const code = (result as { code?: unknown }).code;
    return {
      status: 200,
      contentType: 'application/json; charset=utf-8',
      body: toJsonText(result),
      code: typeof code === 'number' ? code : KEETA_SIM_CODES.OK,
    };
  } catch (err) {
    if (err instanceof KeetaSimError) return envelope(err.code, err.message);
    throw err;
  }
}

/** grantType of a token request, read leniently for the counters. */
function grantTypeOf(req: SimRequest): string | undefined {
  try {
    const body = parseJson(req.rawBody.toString('utf8'));
    if (body.type !== 'object') return undefined;
    const g = member(body, 'grantType');
    return g?.type === 'string' ? g.value : undefined;
  } catch {
    return undefined;
  }
}

export function answerKeeta(state: KeetaState, core: SimCore, req: SimRequest): SimAnswer {
  if (!req.path.startsWith(`${KEETA_BASE_PATH}/`)) {
    return textAnswer(404, `Not Found: the Keeta simulator serves ${KEETA_BASE_PATH}/... and /_sim/...`);
  }
  const endpointPath = req.path.slice(KEETA_BASE_PATH.length);
  const isToken = endpointPath === TOKEN_PATH;
  const failure = core.takeFailure(isToken);
  const answer = failure ? failureAnswer(failure) : processRequest(state, core, req, endpointPath);
  if (isToken) {
    const c = state.counters;
    c.tokenCalls++;
    const grantType = grantTypeOf(req);
    if (grantType === 'authorization_code') c.authCodeCalls++;
    if (grantType === 'refresh_token') {
      c.refreshCalls++;
      if (answer.status !== 200 || answer.code !== KEETA_SIM_CODES.OK) c.rejectedRefreshes++;
    }
  }
  return answer;
}
