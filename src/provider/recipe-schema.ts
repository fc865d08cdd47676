import { z } from 'zod';
import { parseDuration } from '../config/duration.js';
import { CLASSES } from '../observability/metrics.js';

/**
 * The recipe language (docs/recipes.md): how one signed merchant platform is called, written
 * as data. Presets (src/provider/presets/*.yaml) and users' recipes go through this one schema;
 * unknown keys are errors everywhere and every problem is reported with its path.
 */

const duration = z.string({ invalid_type_error: 'expected a duration such as 250ms, 10s, 5m, 4d' }).transform((text, ctx) => {
  const ms = parseDuration(text);
  if (ms === undefined) {
    ctx.addIssue({ code: z.ZodIssueCode.custom, message: `"${text}" is not a duration (use 250ms, 10s, 5m, 2h, 4d)` });
    return z.NEVER;
  }
  return ms;
});

const name = z.string({ invalid_type_error: 'expected a name' }).min(1, 'must not be empty');
/** A parameter or JSON field name. */
const paramName = z.string({ invalid_type_error: 'expected a parameter name' }).min(1, 'must not be empty');
const headerName = z.string().regex(/^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/, 'expected an HTTP header name');
const path = z.string().regex(/^\/[^?#\s]*$/, 'expected a path starting with /');
/** A dotted field path into a JSON answer, e.g. `data.access_token`. */
const fieldPath = z.string().regex(/^[^.\s]+(\.[^.\s]+)*$/, 'expected a field path such as code or data.access_token');

/** `yyyy-MM-dd HH:mm:ss` and friends: yyyy MM dd HH mm ss SSS and literal text. */
const TIME_FORMAT = /^(yyyy|MM|dd|HH|mm|ss|SSS|[^A-Za-z])+$/;
const ZONE = /^(UTC|[+-]\d{2}:\d{2})$/;

/**
 * Where a value the gateway sets comes from: exactly one of
 * `app` (a value of the upstream's `app`), `text` (literal), `time` (s, ms or a format),
 * `token` (the merchant's or the app's access token; the refresh token in a token request),
 * `nonce` (that many random hex characters).
 */
export const valueSource = z
  .object({
    app: name.optional(),
    text: z.string({ invalid_type_error: 'expected text' }).optional(),
    time: z
      .string({ invalid_type_error: 'expected s, ms or a format such as "yyyy-MM-dd HH:mm:ss"' })
      .refine((t) => t === 's' || t === 'ms' || TIME_FORMAT.test(t), 'expected s, ms or a format made of yyyy MM dd HH mm ss SSS')
      .optional(),
    zone: z.string().regex(ZONE, 'expected UTC or an offset such as +08:00').optional(),
    token: z.enum(['access', 'refresh'], { errorMap: () => ({ message: 'expected access or refresh' }) }).optional(),
    nonce: z.number({ invalid_type_error: 'expected a number of hex characters' }).int().min(8, 'at least 8').max(64, 'at most 64').optional(),
  })
  .strict()
  .superRefine((v, ctx) => {
    const given = (['app', 'text', 'time', 'token', 'nonce'] as const).filter((k) => v[k] !== undefined);
    if (given.length !== 1) ctx.addIssue({ code: z.ZodIssueCode.custom, message: given.length === 0 ? 'give one of app, text, time, token, nonce' : `give only one of ${given.join(', ')}` });
    if (v.zone !== undefined && (v.time === undefined || v.time === 's' || v.time === 'ms')) {
      ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['zone'], message: 'only used with a time format' });
    }
  });
export type ValueSource = z.output<typeof valueSource>;

const valueMap = z.record(z.string(), valueSource);

/** The places a request carries parameters. */
export const PLACES = ['query', 'form', 'json', 'headers'] as const;
export type Place = (typeof PLACES)[number];

const setSchema = z
  .object({
    query: valueMap.optional(),
    form: valueMap.optional(),
    json: valueMap.optional(),
    headers: z.record(headerName, valueSource).optional(),
  })
  .strict()
  .default({});

export const ALGORITHMS = ['sha256', 'sha1', 'md5', 'hmac-sha256', 'hmac-sha1', 'hmac-md5'] as const;
export const ENCODINGS = ['hex', 'hex-upper', 'base64'] as const;

const paramsRule = z
  .object({
    /** Which request parameters are signed: query, form body fields, top-level JSON body fields. */
    from: z.array(z.enum(['query', 'form', 'json'])).min(1, 'list at least one of query, form, json').default(['query', 'form']),
    /** Never signed (the signature itself always is left out). */
    except: z.array(paramName).default([]),
    /** `kv`: key then value, pairs run together; `k=v&`: key=value joined with &. */
    join: z.enum(['kv', 'k=v&'], { errorMap: () => ({ message: 'expected kv or k=v&' }) }).default('kv'),
    empty: z.enum(['keep', 'drop'], { errorMap: () => ({ message: 'expected keep or drop' }) }).default('keep'),
    /** How a JSON field's value is written: `json-value-text` (named step: strings raw, numbers by their exact lexeme, objects/arrays compact JSON). */
    values: z.enum(['json-value-text']).default('json-value-text'),
  })
  .strict();

const bodyHash = z.enum(['sha256-hex', 'md5-hex', 'sha256-base64', 'md5-base64'], { errorMap: () => ({ message: 'expected sha256-hex, md5-hex, sha256-base64 or md5-base64' }) });

/** One piece of the string to sign. */
const part = z.union(
  [
    z.enum(['method', 'url', 'path', 'body', 'secret']),
    z.object({ params: paramsRule }).strict(),
    z.object({ text: z.string() }).strict(),
    z.object({ app: name }).strict(),
    z.object({ bodyHash }).strict(),
  ],
  { errorMap: () => ({ message: 'expected method, url, path, body, secret, {params: …}, {text: …}, {app: …} or {bodyHash: …}' }) },
);
export type Part = z.output<typeof part>;

const placement = z
  .object({ query: paramName.optional(), form: paramName.optional(), json: paramName.optional(), header: headerName.optional() })
  .strict()
  .superRefine((v, ctx) => {
    const n = Object.values(v).filter((x) => x !== undefined).length;
    if (n !== 1) ctx.addIssue({ code: z.ZodIssueCode.custom, message: 'give exactly one of query, form, json, header' });
  });

const signSchema = z
  .object({
    string: z.array(part, { invalid_type_error: 'expected a list of parts' }).min(1, 'list at least one part').optional(),
    /** `none`: the calls carry no signature (header injection only, as KeySecure); then nothing else is given. */
    algorithm: z.enum([...ALGORITHMS, 'none'], { errorMap: () => ({ message: `expected one of ${ALGORITHMS.join(', ')}, none` }) }),
    /** The app value that is the secret: used by the `secret` part and as the HMAC key. */
    secret: name.default('secret'),
    encoding: z.enum(ENCODINGS, { errorMap: () => ({ message: `expected one of ${ENCODINGS.join(', ')}` }) }).optional(),
    put: placement.optional(),
  })
  .strict()
  .superRefine((v, ctx) => {
    for (const k of ['string', 'encoding', 'put'] as const) {
      if (v.algorithm === 'none' && v[k] !== undefined) ctx.addIssue({ code: z.ZodIssueCode.custom, path: [k], message: 'not used with algorithm none' });
      if (v.algorithm !== 'none' && v[k] === undefined) ctx.addIssue({ code: z.ZodIssueCode.custom, path: [k], message: 'required' });
    }
  });

/** A recipe's signing rule when it signs at all (algorithm other than none). */
export interface SignRule {
  string: Part[];
  algorithm: (typeof ALGORITHMS)[number];
  secret: string;
  encoding: (typeof ENCODINGS)[number];
  put: { query?: string | undefined; form?: string | undefined; json?: string | undefined; header?: string | undefined };
}

/** The signing rule, or undefined for `algorithm: none`. */
export function signRule(recipe: { sign: z.output<typeof signSchema> }): SignRule | undefined {
  const s = recipe.sign;
  // (A rule missing string, encoding or put is already an error at its path: treated as none.)
  return s.algorithm === 'none' || !s.string || !s.encoding || !s.put ? undefined : (s as SignRule);
}

const expiry = z
  .object({
    field: fieldPath,
    unit: z.enum(['s', 'ms']),
    /** `relative`: seconds/ms from now; `absolute`: a Unix time. */
    is: z.enum(['relative', 'absolute']),
  })
  .strict();

const tokenRequest = z
  .object({
    method: z.enum(['GET', 'POST']).default('POST'),
    path,
    /** Where `params` go. */
    in: z.enum(['query', 'form', 'json']).default('query'),
    params: valueMap.default({}),
    /** Headers of the token request (KeySecure: the Api-Key and a timestamp). */
    headers: z.record(headerName, valueSource).optional(),
    /** Sign the token request with the recipe's `sign` rule (the path in the string is this path). */
    signed: z.boolean().default(false),
  })
  .strict();

const tokenAnswer = z
  .object({
    code: fieldPath.optional(),
    success: z.array(z.union([z.string(), z.number()]).transform(String)).default(['0']),
    accessToken: fieldPath,
    refreshToken: fieldPath.optional(),
    /** A field whose text names the refusal in the error (never the whole answer: it may hold tokens). */
    message: fieldPath.optional(),
    expires: expiry,
  })
  .strict();

const tokensSchema = z
  .object({
    model: z.enum(['none', 'app', 'merchant'], { errorMap: () => ({ message: 'expected none, app or merchant' }) }),
    refreshBefore: duration.default('1d'),
    refreshSpacing: duration.default('0s'),
    /** Whether a refresh token works once only (then it is written before the new pair is used and never spent twice). */
    refreshToken: z.enum(['single-use', 'reusable']).default('single-use'),
    request: tokenRequest.optional(),
    answer: tokenAnswer.optional(),
  })
  .strict()
  .superRefine((t, ctx) => {
    if (t.model !== 'none' && !t.request) ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['request'], message: `required with model ${t.model}` });
    if (t.model !== 'none' && !t.answer) ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['answer'], message: `required with model ${t.model}` });
    if (t.model === 'merchant' && t.answer && !t.answer.refreshToken) ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['answer', 'refreshToken'], message: 'required with model merchant' });
  })
  .default({ model: 'none' });

const codeList = z.array(z.union([z.string(), z.number()]).transform(String));

const classRule = z
  .object({
    class: z.enum(CLASSES, { errorMap: () => ({ message: `expected one of ${CLASSES.join(', ')}` }) }),
    codes: codeList.optional(),
    /** An inclusive numeric range of codes. */
    from: z.number().int().optional(),
    to: z.number().int().optional(),
  })
  .strict()
  .superRefine((r, ctx) => {
    const ranged = r.from !== undefined || r.to !== undefined;
    if (!r.codes && !ranged) ctx.addIssue({ code: z.ZodIssueCode.custom, message: 'give codes or from/to' });
    if (ranged && (r.from === undefined || r.to === undefined)) ctx.addIssue({ code: z.ZodIssueCode.custom, path: [r.from === undefined ? 'from' : 'to'], message: 'required with a range' });
    if (r.from !== undefined && r.to !== undefined && r.from > r.to) ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['to'], message: 'must not be below from' });
  });

const answersSchema = z
  .object({
    code: fieldPath,
    success: codeList.default(['0']),
    /** The class of a 2xx answer that has no code field (Taobao: success). */
    noCode: z.enum(CLASSES).default('unknown_error'),
    classes: z.array(classRule).default([]),
    /** Codes that say the access token was refused: renew, re-sign, retry once. */
    tokenRejected: codeList.default([]),
    /** Codes that say the timestamp was refused: correct the clock from `Date`, retry once. */
    timestampRejected: codeList.default([]),
    /**
     * Named step `config-faults`: codes no retry can cure, each with the likely cause an operator
     * has to fix. Logged at most once a minute per code with the cause, named in token errors.
     */
    faults: z.record(z.string(), z.string().min(1, 'give the likely cause')).default({}),
  })
  .strict();

const merchantSchema = z
  .object({
    /** A request field whose value is looked up in the merchants' imported ids (`shopIds`). */
    index: z
      .object({ query: paramName.optional(), form: paramName.optional(), json: paramName.optional() })
      .strict()
      .refine((v) => Object.values(v).filter(Boolean).length === 1, 'give exactly one of query, form, json')
      .optional(),
    /** Calls made without a merchant token. */
    appLevelPaths: z.array(path).default([]),
  })
  .strict()
  .default({});

export const recipeSchema = z
  .object({
    /** What the recipe describes, for people. */
    title: z.string().optional(),
    /** Where the rules come from. */
    docs: z.array(z.string().url('expected a URL')).default([]),
    /** App values the upstream must give (`app: {…}` or a preset's appKey/appSecret). */
    app: z.array(name).default(['key', 'secret']),
    /** App values that are secrets: masked in `countersign sign`, never logged. */
    secrets: z.array(name).default(['secret']),
    /** App values the upstream may leave out: a value source naming an absent one sets nothing. */
    optional: z.array(name).default([]),
    set: setSchema,
    /** Headers set only when the caller sent none (KeySecure: content-type, timezone, language). */
    defaults: z.object({ headers: z.record(headerName, valueSource).default({}) }).strict().default({}),
    /**
     * What happens to the body. Default: parsed as the recipe needs (form or JSON fields).
     * `{check: json}` (named step `json-check`): forwarded byte for byte; a non-empty body
     * that is not JSON is refused.
     */
    body: z.object({ check: z.literal('json') }).strict().optional(),
    /** Caller parameters dropped before signing (never forwarded): e.g. a token the gateway sends elsewhere. */
    remove: z.object({ query: z.array(paramName).default([]), form: z.array(paramName).default([]), json: z.array(paramName).default([]) }).strict().default({}),
    sign: signSchema,
    tokens: tokensSchema,
    merchant: merchantSchema,
    answers: answersSchema,
    /** Subtracted from every timestamp, so none lands in the upstream's future. */
    timestampMargin: duration.default('0s'),
  })
  .strict()
  .superRefine((r, ctx) => {
    const known = new Set([...r.app, ...r.optional]);
    const checkApp = (v: { app?: string | undefined }, at: (string | number)[]) => {
      if (v.app !== undefined && !known.has(v.app)) ctx.addIssue({ code: z.ZodIssueCode.custom, path: at, message: `names app value "${v.app}", which is not listed in app (${r.app.join(', ')})` });
    };
    for (const place of ['query', 'form', 'json', 'headers'] as const) {
      for (const [k, v] of Object.entries(r.set[place] ?? {})) {
        checkApp(v, ['set', place, k, 'app']);
        if (v.token === 'refresh') ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['set', place, k, 'token'], message: 'a call carries the access token; the refresh token goes only in tokens.request' });
        if (v.token && r.tokens.model === 'none') ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['set', place, k, 'token'], message: 'the recipe has no tokens (tokens.model is none)' });
      }
    }
    for (const [k, v] of Object.entries(r.tokens.request?.params ?? {})) checkApp(v, ['tokens', 'request', 'params', k, 'app']);
    for (const [k, v] of Object.entries(r.tokens.request?.headers ?? {})) checkApp(v, ['tokens', 'request', 'headers', k, 'app']);
    for (const [k, v] of Object.entries(r.defaults.headers)) checkApp(v, ['defaults', 'headers', k, 'app']);
    const rule = signRule(r);
    if (!rule && r.tokens.request?.signed) ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['tokens', 'request', 'signed'], message: 'the recipe has no sign rule' });
    if (r.body?.check === 'json') {
      const touches = r.set.json || r.set.form || rule?.put.json || rule?.put.form || r.remove.json.length > 0 || r.remove.form.length > 0 || r.merchant.index?.json || r.merchant.index?.form ||
        rule?.string.some((p) => typeof p === 'object' && 'params' in p && p.params.from.some((f) => f !== 'query'));
      if (touches) ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['body'], message: 'a body forwarded byte for byte cannot have fields set, removed, signed or indexed' });
    }
    r.secrets.forEach((s, i) => {
      if (!known.has(s)) ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['secrets', i], message: `"${s}" is not listed in app` });
    });
    if (rule && !known.has(r.sign.secret)) ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['sign', 'secret'], message: `"${r.sign.secret}" is not listed in app` });
    rule?.string.forEach((p, i) => {
      if (typeof p === 'object' && 'app' in p) checkApp(p, ['sign', 'string', i, 'app']);
    });
    const hasJson = r.set.json !== undefined || rule?.put.json !== undefined;
    if (hasJson && (r.set.form !== undefined || rule?.put.form !== undefined)) ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['set'], message: 'a body is either JSON or a form, not both' });
    if (r.tokens.model !== 'merchant' && (r.merchant.index || r.merchant.appLevelPaths.length > 0)) {
      ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['merchant'], message: 'merchants are chosen only with tokens.model merchant' });
    }
  });

export type Recipe = z.output<typeof recipeSchema>;
export type RecipeInput = z.input<typeof recipeSchema>;
