/**
 * One KeySecure API request: failNext, header authentication (auth.ts), routing, body
 * parsing, then the endpoint. Business answers are HTTP 200 `{code, msg, data?}`.
 *
 * After authentication: an unknown path under /open-api answers HTTP 404, a known path with
 * the wrong method HTTP 405 (both Spring-style JSON, no envelope). A POST whose Content-Type
 * is not application/json or whose body is not a JSON object answers 1004.
 */
import type { FailNextOptions, SimCore } from '../control.js';
import { toJsonText } from '../json-text.js';
import { jsonAnswer, rawFailureAnswer, textAnswer, type SimAnswer, type SimRequest } from '../server-base.js';
import { authenticate } from './auth.js';
import { KEYSECURE_CODES, keySecureMessage, KeySecureSimError, languageOf, type KeySecureLanguage } from './codes.js';
import { KEYSECURE_ROUTES, TOKEN_PATH } from './endpoints.js';
import type { Body } from './params.js';
import type { KeySecureState } from './state.js';

function envelope(code: number, msg: string, data?: unknown): SimAnswer {
  return { status: 200, contentType: 'application/json; charset=utf-8', body: toJsonText({ code, msg, data }), code };
}

function errorEnvelope(err: KeySecureSimError, language: KeySecureLanguage): SimAnswer {
  const base = keySecureMessage(err.code, language);
  const msg = err.field === undefined ? base : `${err.field} ${base}: ${err.message}`;
  return envelope(err.code, msg);
}

function failureAnswer(f: FailNextOptions, language: KeySecureLanguage): SimAnswer {
  if (f.httpStatus !== undefined) return rawFailureAnswer(f.httpStatus, f.body);
  const code = f.code ?? KEYSECURE_CODES.SYSTEM_ERROR;
  return envelope(code, f.message ?? keySecureMessage(code, language));
}

function parseBody(req: SimRequest): Body {
  if (req.method !== 'POST') return {};
  const ct = req.headers['content-type']?.split(';')[0]?.trim().toLowerCase();
  if (ct !== 'application/json') throw new KeySecureSimError(KEYSECURE_CODES.INVALID_PARAMETER, 'Content-Type', 'must be application/json');
  if (req.bodyTooLarge) throw new KeySecureSimError(KEYSECURE_CODES.INVALID_PARAMETER, 'body', 'too large');
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(req.rawBody));
  } catch {
    throw new KeySecureSimError(KEYSECURE_CODES.INVALID_PARAMETER, 'body', 'is not valid JSON');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new KeySecureSimError(KEYSECURE_CODES.INVALID_PARAMETER, 'body', 'must be a JSON object');
  }
  return value as Body;
}

function springError(status: number, error: string, path: string, now: number): SimAnswer {
  return jsonAnswer(status, { timestamp: new Date(now).toISOString(), status, error, path });
}

export function answerKeySecure(state: KeySecureState, core: SimCore, req: SimRequest): SimAnswer {
  if (!req.path.startsWith('/open-api/')) {
    return textAnswer(404, 'Not Found: the KeySecure simulator serves /open-api/... and /_sim/...');
  }
  const language = languageOf(req.headers['language']);
  const isToken = req.path === TOKEN_PATH;
  if (isToken) state.tokenCalls++;
  const failure = core.takeFailure(isToken);
  if (failure) return failureAnswer(failure, language);

  const now = core.now();
  try {
    const apiKey = authenticate(state, { headers: req.headers, remoteAddress: req.remoteAddress, isTokenEndpoint: isToken, now });
    let methodMismatch = false;
    for (const route of KEYSECURE_ROUTES) {
      const m = route.pattern.exec(req.path);
      if (!m) continue;
      if (!route.methods.includes(req.method)) {
        methodMismatch = true;
        continue;
      }
      let params: string[];
      try {
        params = m.slice(1).map((p) => decodeURIComponent(p ?? ''));
      } catch {
        throw new KeySecureSimError(KEYSECURE_CODES.INVALID_PARAMETER, 'path', 'bad percent-encoding');
      }
      const data = route.handle({
        state,
        apiKey,
        now,
        method: req.method,
        path: req.path,
        query: req.query,
        headers: req.headers,
        rawBody: req.rawBody.toString('utf8'),
        body: parseBody(req),
        params,
      });
      return envelope(KEYSECURE_CODES.OK, keySecureMessage(KEYSECURE_CODES.OK, language), data);
    }
    return methodMismatch
      ? springError(405, 'Method Not Allowed', req.path, now)
      : springError(404, 'Not Found', req.path, now);
  } catch (err) {
    if (err instanceof KeySecureSimError) return errorEnvelope(err, language);
    throw err;
  }
}
