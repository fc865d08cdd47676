import { z } from 'zod';
import { tracingSchema } from './tracing-schema.js';
import { parseDuration } from './duration.js';
import { callbacksSchema, oauthSchema, webhooksSchema } from './ingress-schema.js';
import { callerTrafficFields, listenerLimitFields, upstreamTrafficFields } from './traffic-schema.js';
import { authSchema, certificateIdentitySchema, listenTlsSchema, merchantPatternsSchema, serviceAccountSchema, trustProblems, upstreamTransportFields } from './trust-schema.js';
import { storeEncryptionSchema } from './store-encryption.js';
import { presetUpstreamObject, RECIPE_TYPES, recipeUpstreamProblems, signedUpstreamObject, toRecipeUpstream } from './signed-schema.js';

/**
 * The config file's schema (README "Config"). Unknown keys are errors everywhere.
 * Validation only: interpolation and `<key>File` secrets happen before (resolve.ts).
 */

const duration = z
  .string({ invalid_type_error: 'expected a duration such as 250ms, 10s, 5m, 4d' })
  .transform((text, ctx) => {
    const ms = parseDuration(text);
    if (ms === undefined) {
      ctx.addIssue({ code: z.ZodIssueCode.custom, message: `"${text}" is not a duration (use 250ms, 10s, 5m, 2h, 4d)` });
      return z.NEVER;
    }
    return ms;
  });

/** A duration that must be more than zero (a zero timeout would mean none at all). */
const positiveDuration = duration.refine((ms) => ms > 0, 'must be more than 0');

const positiveInt = z.union([z.number(), z.string().regex(/^\d+$/, 'expected a whole number').transform(Number)]).pipe(
  z.number().int('expected a whole number').positive('must be greater than 0'),
);

const secret = z.string({ required_error: 'required', invalid_type_error: 'expected a string' }).min(1, 'must not be empty');

const hostPort = z
  .string({ invalid_type_error: 'expected host:port, e.g. 127.0.0.1:9090 or [::1]:9090' })
  .regex(/^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):\d{1,5}$/, 'expected host:port, e.g. 127.0.0.1:9090 or [::1]:9090');

const httpUrl = z
  .string({ required_error: 'required' })
  .url('expected an absolute URL')
  .refine((u) => /^https?:\/\//.test(u), 'expected an http:// or https:// URL')
  .refine((u) => !u.includes('?') && !u.includes('#'), 'must not contain a query or fragment')
  .transform((u) => u.replace(/\/+$/, ''));

const upstreamPath = z.string().regex(/^\/[^?#\s]*$/, 'expected a path starting with /');

const pathPattern = z.string().regex(/^\/[^?#\s]*$/, 'expected a path starting with /, where * matches any run of characters');

/**
 * One shared budget (src/limits): every request to one of `paths` counts against `perSecond`,
 * across all replicas. Without a `name` the rule is named after its paths (metric label `rule`).
 */
const rateLimitRule = z
  .object({
    name: z.string().regex(/^[A-Za-z0-9._-]{1,64}$/, '1-64 letters, digits, . _ -').optional(),
    paths: z.array(pathPattern, { required_error: 'required' }).min(1, 'list at least one path'),
    perSecond: z.number({ required_error: 'required', invalid_type_error: 'expected a number' }).positive('must be more than 0').max(100_000, 'at most 100000'),
    burst: z.number().int('expected a whole number').positive('must be at least 1').max(100_000, 'at most 100000').default(1),
    maxWait: duration.default('1s'),
  })
  .strict()
  .transform((r) => ({ ...r, name: r.name ?? r.paths.join(',') }));

/**
 * Keeta's documented limits (docs/protocols.md 1.10), per appId: 10 QPS on the Keeta-ID menu
 * write endpoints, each its own budget, and 50 QPS on /product/choicegroup/list. The
 * ChoiceGroup create/update paths are named after the documented batchdel/list ones.
 */
export const KEETA_DEFAULT_RATE_LIMITS = [
  { name: 'spustatus-batchupdate', paths: ['/product/spustatus/batchupdate'], perSecond: 10 },
  { name: 'choicegroup-batchdel', paths: ['/product/choicegroup/batchdel'], perSecond: 10 },
  { name: 'spupicture-batchbind', paths: ['/product/spupicture/batchbind'], perSecond: 10 },
  { name: 'choicegroup-create', paths: ['/product/choicegroup/create'], perSecond: 10 },
  { name: 'choicegroup-update', paths: ['/product/choicegroup/update'], perSecond: 10 },
  { name: 'choicegroup-list', paths: ['/product/choicegroup/list'], perSecond: 50 },
];

/** The rule name the cooldown after an upstream's rate-limit answer counts under. */
export const COOLDOWN_RULE = 'cooldown';

const keetaUpstream = z
  .object({
    type: z.literal('keeta'),
    baseUrl: httpUrl,
    /** Overrides baseUrl in the string to sign, for hosts reached through an alias (docs/protocols.md 4.1). */
    signUrlBase: httpUrl.optional(),
    appId: z
      .union([z.number().int().nonnegative(), z.string().regex(/^\d+$/, 'expected digits')], {
        required_error: 'required',
        invalid_type_error: 'expected a number',
      })
      .transform(String),
    appSecret: secret,
    refreshBefore: duration.default('4d'),
    refreshSpacing: duration.default('60s'),
    tokenErrorCodes: z.array(z.number().int()).default([]),
    appLevelPaths: z.array(upstreamPath).default(['/base/callback/url/set']),
    timeout: positiveDuration.default('10s'),
    /** Merchant authorization links and the OAuth redirect (ingress). */
    oauth: oauthSchema.optional(),
    /** Webhooks Keeta pushes to the ingress listener. */
    webhooks: webhooksSchema.optional(),
    rateLimits: z.array(rateLimitRule).default(KEETA_DEFAULT_RATE_LIMITS),
    ...upstreamTrafficFields,
    ...upstreamTransportFields,
  })
  .strict();

const keysecureUpstream = z
  .object({
    type: z.literal('keysecure'),
    baseUrl: httpUrl,
    apiKey: secret,
    /** Issued with the Api-Key; used to verify platform callbacks, not for outbound calls. */
    apiSecret: secret.optional(),
    timezone: z.string().regex(/^UTC[+-]\d{1,2}(:\d{2})?$/, 'expected e.g. UTC+8').optional(),
    language: z.enum(['en_US', 'zh_CN']).optional(),
    refreshBefore: duration.default('5m'),
    /** Stamp this far in the past so a timestamp never lands in the upstream's future (docs/protocols.md 4.3). */
    timestampMargin: duration.default('1s'),
    timeout: positiveDuration.default('10s'),
    /** Callbacks KeySecure pushes to the ingress listener. */
    callbacks: callbacksSchema.optional(),
    rateLimits: z.array(rateLimitRule).default([]),
    ...upstreamTrafficFields,
    /** After a 1009 (too frequent): this upstream is paced at `perSecond` for `cooldown`; 0s turns it off. */
    onRateLimited: z
      .object({
        cooldown: duration.default('10s'),
        perSecond: z.number({ invalid_type_error: 'expected a number' }).positive('must be more than 0').max(100_000, 'at most 100000').default(5),
        maxWait: duration.default('2s'),
      })
      .strict()
      .default({}),
    ...upstreamTransportFields,
  })
  .strict();

const recipeRateLimits = z.array(rateLimitRule).default([]);

const upstream = z
  .discriminatedUnion(
    'type',
    [
      keetaUpstream,
      keysecureUpstream,
      signedUpstreamObject(recipeRateLimits),
      presetUpstreamObject('lazada', recipeRateLimits),
      presetUpstreamObject('tiktok-shop', recipeRateLimits),
      presetUpstreamObject('taobao-top', recipeRateLimits),
    ],
    {
      errorMap: (issue, ctx) =>
        issue.code === z.ZodIssueCode.invalid_union_discriminator
          ? { message: `type must be one of: keeta, keysecure, ${RECIPE_TYPES.join(', ')}` }
          : { message: ctx.defaultError },
    },
  )
  .superRefine((u, ctx) => {
    if (u.type === 'keeta' || u.type === 'keysecure') return;
    for (const p of recipeUpstreamProblems(u)) ctx.addIssue({ code: z.ZodIssueCode.custom, path: p.path, message: p.message });
  });

const UPSTREAM_NAME = /^[a-z0-9][a-z0-9_-]{0,62}$/;

const caller = z
  .object({
    name: z.string({ required_error: 'required' }).regex(/^[A-Za-z0-9._-]+$/, 'letters, digits, . _ - only'),
    /** Exactly one of token, certificate, serviceAccount (trustProblems). */
    token: secret.refine((t) => t.length >= 16, 'must be at least 16 characters').optional(),
    certificate: certificateIdentitySchema.optional(),
    serviceAccount: serviceAccountSchema.optional(),
    merchants: merchantPatternsSchema.optional(),
    allow: z.array(z.string().regex(/^[^:\s]+:(\*|\/\S*)$/, 'expected "upstream:/path/glob" or "upstream:*"')).min(1, 'list at least one upstream:path'),
    ...callerTrafficFields,
  })
  .strict();

/**
 * `store.type: redis`: one of `url` (redis:// or rediss://), `sentinels` + `name`, or `nodes`
 * (Cluster); checked together in redisStoreProblems. Passwords may be `passwordFile`.
 */
const redisStore = z
  .object({
    type: z.literal('redis'),
    url: z.string().regex(/^rediss?:\/\/[^\s]+$/, 'expected redis://host:port/db or rediss://host:port/db').optional(),
    sentinels: z.array(hostPort).min(1, 'list at least one sentinel').optional(),
    /** The master's name as the sentinels know it. */
    name: z.string().min(1, 'must not be empty').optional(),
    nodes: z.array(hostPort).min(1, 'list at least one node').optional(),
    username: z.string().min(1, 'must not be empty').optional(),
    password: secret.optional(),
    sentinelPassword: secret.optional(),
    db: z.number().int('expected a whole number').min(0).optional(),
    tls: z
      .object({
        /** PEM file of the CA that signed the server certificate (else the system CAs). */
        caFile: z.string().min(1, 'must not be empty').optional(),
        /** The name the certificate must carry, when it is not the host connected to. */
        serverName: z.string().min(1, 'must not be empty').optional(),
      })
      .strict()
      .optional(),
    // `{` and `}` would make a Redis Cluster hash tag of the prefix and put every key in one slot.
    keyPrefix: z.string().regex(/^[^{}]*$/, 'must not contain { or } (Redis Cluster reads them as a hash tag)').default('countersign:'),
    encryption: storeEncryptionSchema.optional(),
  })
  .strict();

type RedisStoreInput = z.output<typeof redisStore>;

/** Cross-field rules of a redis store: how to reach it is given exactly one way. */
export function redisStoreProblems(cfg: RedisStoreInput): Array<{ path: string[]; message: string }> {
  const out: Array<{ path: string[]; message: string }> = [];
  const ways = [cfg.url && 'url', cfg.sentinels && 'sentinels', cfg.nodes && 'nodes'].filter(Boolean);
  if (ways.length === 0) out.push({ path: ['url'], message: 'required: give url, sentinels (with name) or nodes' });
  if (ways.length > 1) out.push({ path: [ways[1] as string], message: `give only one of url, sentinels or nodes (found ${ways.join(' and ')})` });
  if (cfg.sentinels && !cfg.name) out.push({ path: ['name'], message: 'required with sentinels: the master name the sentinels watch' });
  if (cfg.name && !cfg.sentinels) out.push({ path: ['name'], message: 'only used with sentinels' });
  if (cfg.sentinelPassword && !cfg.sentinels) out.push({ path: ['sentinelPassword'], message: 'only used with sentinels' });
  if (cfg.db !== undefined && !cfg.sentinels) {
    out.push({ path: ['db'], message: cfg.nodes ? 'Redis Cluster has only database 0' : 'put the database in the url (redis://host:6379/2)' });
  }
  if (cfg.url) {
    let parsed: URL | undefined;
    try {
      parsed = new URL(cfg.url);
    } catch {
      out.push({ path: ['url'], message: 'is not a valid URL' });
    }
    if (parsed && parsed.password !== '' && cfg.password !== undefined) out.push({ path: ['password'], message: 'the url already carries a password; give it once' });
    if (parsed && parsed.protocol === 'redis:' && cfg.tls) out.push({ path: ['tls'], message: 'use a rediss:// url for TLS' });
  }
  return out;
}

const store = z.discriminatedUnion(
  'type',
  [
    z.object({ type: z.literal('memory'), maxEntries: positiveInt.default(100_000) }).strict(),
    z.object({ type: z.literal('file'), path: z.string().min(1).default('./data/tokens.json'), encryption: storeEncryptionSchema.optional() }).strict(),
    redisStore,
  ],
  {
    errorMap: (issue, ctx) =>
      issue.code === z.ZodIssueCode.invalid_union_discriminator
        ? { message: 'type must be one of: memory, file, redis' }
        : { message: ctx.defaultError },
  },
);

export const configSchema = z
  .object({
    listen: z
      .object({ proxy: hostPort.default('0.0.0.0:8080'), admin: hostPort.default('127.0.0.1:9090'), ingress: hostPort.optional(), tls: listenTlsSchema.optional() })
      .strict()
      .default({}),
    admin: z.object({ token: secret.refine((t) => t.length >= 16, 'must be at least 16 characters').optional() }).strict().default({}),
    auth: authSchema.optional(),
    store: store.default({ type: 'file' }),
    limits: z.object({ maxBodyBytes: positiveInt.default(1_048_576), ...listenerLimitFields }).strict().default({}),
    callers: z.array(caller).min(1, 'remove the key or list at least one caller').optional(),
    upstreams: z.record(z.string(), upstream, { required_error: 'required' }),
    tracing: tracingSchema.optional(),
  })
  .strict()
  .superRefine((cfg, ctx) => {
    const names = Object.keys(cfg.upstreams);
    if (names.length === 0) ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['upstreams'], message: 'configure at least one upstream' });
    for (const name of names) {
      if (!UPSTREAM_NAME.test(name)) {
        ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['upstreams', name], message: 'name must be lowercase letters, digits, - or _ (it is the first path segment)' });
      }
      const u = cfg.upstreams[name]!;
      if (u.type === 'keysecure' && u.callbacks && u.callbacks.verify !== 'off' && u.callbacks.secret === undefined && u.apiSecret === undefined) {
        ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['upstreams', name, 'callbacks', 'secret'], message: 'required to verify callbacks (or set apiSecret, the default)' });
      }
      const ruleNames = new Set<string>();
      cfg.upstreams[name]!.rateLimits.forEach((r, i) => {
        const where = ['upstreams', name, 'rateLimits', i, 'name'];
        if (r.name === COOLDOWN_RULE) ctx.addIssue({ code: z.ZodIssueCode.custom, path: where, message: `"${COOLDOWN_RULE}" is the name of the pacing after a rate-limit answer; choose another` });
        if (ruleNames.has(r.name)) ctx.addIssue({ code: z.ZodIssueCode.custom, path: where, message: `duplicate rule name "${r.name}"; give each rule its own name` });
        ruleNames.add(r.name);
      });
    }
    // One caller may have several entries (same name, different tokens): that is how a caller
    // token is rotated without downtime, old and new accepted for a while.
    const seenTokens = new Set<string>();
    cfg.callers?.forEach((c, i) => {
      if (c.token !== undefined && seenTokens.has(c.token)) ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['callers', i, 'token'], message: 'the same token is given to two callers' });
      if (c.token !== undefined) seenTokens.add(c.token);
      if (c.maxInFlight !== undefined && typeof c.maxInFlight === 'object') {
        for (const up of Object.keys(c.maxInFlight)) {
          if (!Object.hasOwn(cfg.upstreams, up)) ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['callers', i, 'maxInFlight', up], message: `names unknown upstream "${up}"` });
        }
      }
      c.allow.forEach((rule, j) => {
        const up = rule.slice(0, rule.indexOf(':'));
        if (up !== '*' && !Object.hasOwn(cfg.upstreams, up)) {
          ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['callers', i, 'allow', j], message: `names unknown upstream "${up}"` });
        }
      });
    });
    for (const p of trustProblems(cfg)) ctx.addIssue({ code: z.ZodIssueCode.custom, path: p.path, message: p.message });
    if (cfg.store.type === 'redis') {
      for (const p of redisStoreProblems(cfg.store)) ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['store', ...p.path], message: p.message });
    }
    const adminHost = cfg.listen.admin.replace(/:\d+$/, '');
    if (!isLoopbackHost(adminHost) && !cfg.admin.token) {
      ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['admin', 'token'], message: `required when the admin listener is not on loopback (listen.admin is ${cfg.listen.admin})` });
    }
  })
  // Recipe upstreams take their common shape last: a transform inside would stop the checks above
  // from running whenever any upstream has a problem.
  .transform((cfg) => ({
    ...cfg,
    upstreams: Object.fromEntries(Object.entries(cfg.upstreams).map(([n, u]) => [n, u.type === 'keeta' || u.type === 'keysecure' ? u : toRecipeUpstream(u)])),
  }));

export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '');
  return h === 'localhost' || h === '::1' || /^127\.\d+\.\d+\.\d+$/.test(h);
}

export type RawConfig = z.input<typeof configSchema>;
export type ParsedConfig = z.output<typeof configSchema>;
export type UpstreamConfig = ParsedConfig['upstreams'][string];
export type KeetaUpstreamConfig = Extract<UpstreamConfig, { type: 'keeta' }>;
export type KeySecureUpstreamConfig = Extract<UpstreamConfig, { type: 'keysecure' }>;
/** An upstream described by a recipe (type signed or a preset). */
export type RecipeUpstreamConfig = Exclude<UpstreamConfig, { type: 'keeta' } | { type: 'keysecure' }>;
export function isRecipeUpstream(u: UpstreamConfig): u is RecipeUpstreamConfig {
  return u.type !== 'keeta' && u.type !== 'keysecure';
}
export type StoreConfig = ParsedConfig['store'];
export type RedisStoreConfig = Extract<StoreConfig, { type: 'redis' }>;
export type CallerConfig = NonNullable<ParsedConfig['callers']>[number];
export type RateLimitRuleConfig = UpstreamConfig['rateLimits'][number];
export type RateLimitedConfig = KeySecureUpstreamConfig['onRateLimited'];
