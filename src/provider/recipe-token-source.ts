import type { Clock } from '../core/clock.js';
import type { Forwarder, UpstreamResponse } from '../proxy/forwarder.js';
import { headerValue, splitBaseUrl } from '../proxy/upstream.js';
import { TokenFetchError, type TokenSource } from '../tokens/token-service.js';
import type { TokenRecord } from '../tokens/types.js';
import type { Recipe } from './recipe-schema.js';
import type { RecipeRun } from './recipe-handler.js';
import { signRequest, sourceValue } from './signer.js';
import { pick } from './steps.js';
import type { UpstreamClock } from './steps/upstream-clock.js';

/** The token request a recipe describes, as it goes upstream (pure; the refresh token is in it). */
export function tokenRequest(cfg: RecipeRun, refreshToken: string | undefined, nowMs: number) {
  const recipe = cfg.recipe;
  const r = recipe.tokens.request!;
  const params = { [r.in]: r.params };
  // A signed token request carries the recipe's own parameters too (app key, timestamp, …).
  const set: Recipe['set'] = r.signed ? { ...recipe.set, [r.in]: { ...(recipe.set[r.in] ?? {}), ...r.params } } : params;
  const base = cfg.tokenBaseUrl ?? cfg.baseUrl;
  const out = signRequest(recipe, {
    method: r.method,
    baseUrl: base,
    path: r.path,
    query: [],
    ...(r.in === 'json' && { json: { kind: 'object', entries: [], json: undefined } }),
    ...(r.in === 'form' && { form: [] }),
    app: cfg.app,
    refreshToken,
    nowMs,
    set,
    signed: r.signed,
  });
  const { origin, basePath } = splitBaseUrl(base);
  const headers = out.headers;
  for (const [k, v] of Object.entries(r.headers ?? {})) {
    const val = sourceValue(v, { app: cfg.app, refreshToken, nowMs });
    if (val !== undefined) headers[k.toLowerCase()] = val;
  }
  return { origin, method: r.method, path: basePath + r.path + out.query, body: out.body, contentType: out.contentType, headers };
}

/**
 * Obtains a token the way the recipe's `tokens` section says: an app token from the app
 * credential (`model: app`), or a merchant's new pair from its refresh token (`model: merchant`).
 * The TokenService around it writes a single-use refresh token's successor before it is used
 * and renews once across replicas. Errors never quote the answer (it may hold tokens), only
 * its code, the recipe's `answer.message` field and a fault's likely cause. A timestamp
 * rejection corrects the clock from `Date` and asks once more (a refused request spends no
 * refresh token).
 */
export function createRecipeTokenSource(name: string, config: () => RecipeRun, forwarder: Forwarder, clock: Clock, upstreamClock: UpstreamClock): TokenSource {
  const model = config().recipe.tokens.model;
  return {
    obtainsFromNothing: model === 'app',
    async obtain(merchant, current) {
      const cfg = config();
      const t = cfg.recipe.tokens;
      if (t.model === 'merchant' && !current?.refreshToken) throw new TokenFetchError(`merchant "${merchant}" of ${name} has no refresh token; import a new pair`);
      const send = async () => {
        const req = tokenRequest(cfg, current?.refreshToken, upstreamClock.nowMs());
        return forwarder.send(req.origin, {
          method: req.method,
          path: req.path,
          headers: { ...req.headers, accept: 'application/json', ...(req.contentType && { 'content-type': req.contentType }) },
          ...(req.body !== undefined && { body: req.body }),
          timeoutMs: cfg.tokenTimeout ?? cfg.timeout,
          ...(cfg.tokenTimeout !== undefined && { lane: 'token' as const }),
        });
      };
      const a = t.answer!;
      const codeOf = (answer: unknown) => (a.code === undefined ? undefined : pick(answer, a.code));
      let res = await send();
      let answer = parseAnswer(name, res);
      // A timestamp rejection: the clock is corrected from the answer's Date and the request made once more.
      const first = codeOf(answer);
      if (first !== undefined && cfg.recipe.answers.timestampRejected.includes(String(first)) && upstreamClock.learn(headerValue(res.headers, 'date'))) {
        res = await send();
        answer = parseAnswer(name, res);
      }
      if (a.code !== undefined) {
        const code = codeOf(answer);
        if (code === undefined || !a.success.includes(String(code))) {
          const text = a.message === undefined ? undefined : pick(answer, a.message);
          const cause = code === undefined ? undefined : cfg.recipe.answers.faults[String(code)];
          throw new TokenFetchError(
            `${name} token endpoint answered code ${String(code).slice(0, 60)}${typeof text === 'string' && text !== '' ? ` (${text.slice(0, 200)})` : ''}${cause ? `: ${cause}` : ''}`,
          );
        }
      }
      const accessToken = pick(answer, a.accessToken);
      if (typeof accessToken !== 'string' || accessToken === '') throw new TokenFetchError(`${name} token answer lacks ${a.accessToken}`);
      let refreshToken: string | undefined;
      if (t.model === 'merchant') {
        const next = a.refreshToken === undefined ? undefined : pick(answer, a.refreshToken);
        if (typeof next === 'string' && next !== '') refreshToken = next;
        else if (t.refreshToken === 'reusable') refreshToken = current!.refreshToken;
        else throw new TokenFetchError(`${name} token answer lacks ${a.refreshToken} (refresh tokens are single-use: a new one is needed)`);
      }
      const raw = pick(answer, a.expires.field);
      const n = typeof raw === 'number' ? raw : typeof raw === 'string' && /^\d{1,16}$/.test(raw) ? Number(raw) : NaN;
      if (!Number.isFinite(n) || n <= 0) throw new TokenFetchError(`${name} token answer lacks a positive ${a.expires.field}`);
      const ms = a.expires.unit === 's' ? n * 1000 : n;
      const now = clock.now();
      const expiresAt = a.expires.is === 'relative' ? now + ms : upstreamClock.toLocal(ms);
      return {
        upstream: name,
        merchant,
        accessToken,
        ...(refreshToken !== undefined && { refreshToken }),
        issuedAt: Math.max(now, (current?.issuedAt ?? 0) + 1),
        expiresAt,
        refreshedAt: now,
        shopIds: [...(current?.shopIds ?? [])],
      } satisfies TokenRecord;
    },
  };
}

function parseAnswer(name: string, res: UpstreamResponse): unknown {
  try {
    return JSON.parse(res.body.toString('utf8'));
  } catch {
    throw new TokenFetchError(`${name} token endpoint answered HTTP ${res.status} with a body that is not JSON`);
  }
}
