import { z } from 'zod';
import { parseDuration } from './duration.js';
import { loadPreset } from '../provider/presets.js';
import { recipeSchema, type Recipe } from '../provider/recipe-schema.js';
import { upstreamTransportFields } from './trust-schema.js';

/**
 * Upstreams described by a recipe (SPEC "Upstreams described, not coded"): `type: signed` with
 * `recipe` (inline) or `recipeFile` (read by load.ts and put in `recipe`), and the shipped
 * presets `lazada`, `tiktok-shop`, `taobao-top` (appKey/appSecret are its app values).
 * Every one comes out the same shape: `{type, baseUrl, app, recipe, ...}`.
 */

const durationText = z.string({ invalid_type_error: 'expected a duration such as 250ms, 10s, 5m, 4d' }).transform((text, ctx) => {
  const ms = parseDuration(text);
  if (ms === undefined) {
    ctx.addIssue({ code: z.ZodIssueCode.custom, message: `"${text}" is not a duration (use 250ms, 10s, 5m, 2h, 4d)` });
    return z.NEVER;
  }
  return ms;
});

const httpUrl = z
  .string({ required_error: 'required' })
  .url('expected an absolute URL')
  .refine((u) => /^https?:\/\//.test(u), 'expected an http:// or https:// URL')
  .refine((u) => !u.includes('?') && !u.includes('#'), 'must not contain a query or fragment')
  .transform((u) => u.replace(/\/+$/, ''));

const secretText = z.string({ required_error: 'required', invalid_type_error: 'expected a string' }).min(1, 'must not be empty');

/** The keys every recipe upstream has besides its recipe and app values. */
export function recipeUpstreamKeys<R extends z.ZodTypeAny>(rateLimits: R) {
  return {
    baseUrl: httpUrl,
    /** Where the token endpoint lives when not at baseUrl (Lazada: https://auth.lazada.com/rest). */
    tokenBaseUrl: httpUrl.optional(),
    /** Overrides the recipe's tokens.refreshBefore. */
    refreshBefore: durationText.optional(),
    timeout: durationText.refine((ms) => ms > 0, 'must be more than 0').default('10s'),
    rateLimits,
    /** tls, egressProxy, insecure: how the upstream is reached (trust-schema.ts). */
    ...upstreamTransportFields,
  };
}

export function signedUpstreamObject<R extends z.ZodTypeAny>(rateLimits: R) {
  return z
    .object({
      type: z.literal('signed'),
      ...recipeUpstreamKeys(rateLimits),
      /** Informational once loaded: the file the recipe was read from. */
      recipeFile: z.string().optional(),
      recipe: recipeSchema,
      app: z.record(z.string(), secretText).default({}),
    })
    .strict();
}

export function presetUpstreamObject<T extends PresetType, R extends z.ZodTypeAny>(type: T, rateLimits: R) {
  return z
    .object({
      type: z.literal(type),
      ...recipeUpstreamKeys(rateLimits),
      appKey: z.union([z.string(), z.number()], { required_error: 'required', invalid_type_error: 'expected a string' }).transform(String).pipe(secretText),
      appSecret: secretText,
      /** taobao-top only: md5 (default) or hmac. */
      signMethod: z.enum(['md5', 'hmac']).optional(),
    })
    .strict();
}

export const PRESET_TYPES = ['lazada', 'tiktok-shop', 'taobao-top'] as const;
export type PresetType = (typeof PRESET_TYPES)[number];
export const RECIPE_TYPES: readonly string[] = ['signed', ...PRESET_TYPES];

type SignedInput = z.output<ReturnType<typeof signedUpstreamObject>>;
type PresetInput = z.output<ReturnType<typeof presetUpstreamObject>>;

/** What every recipe upstream becomes once parsed. */
interface RateLimitRule {
  name: string;
  paths: string[];
  perSecond: number;
  burst: number;
  maxWait: number;
}

export type RecipeUpstream = {
  type: 'signed' | PresetType;
  baseUrl: string;
  tokenBaseUrl?: string | undefined;
  refreshBefore: number;
  timeout: number;
  rateLimits: RateLimitRule[];
  recipe: Recipe;
  /** App values the recipe refers to (secrets among them: recipe.secrets). */
  app: Readonly<Record<string, string>>;
  recipeFile?: string | undefined;
  tls?: { caFile?: string | undefined; certFile?: string | undefined; keyFile?: string | undefined; serverName?: string | undefined } | undefined;
  egressProxy?: string | undefined;
  insecure: boolean;
};

/** Cross-field checks of a recipe upstream, each problem at its path. */
export function recipeUpstreamProblems(u: SignedInput | PresetInput): Array<{ path: string[]; message: string }> {
  const out: Array<{ path: string[]; message: string }> = [];
  if (u.type === 'signed') {
    for (const k of u.recipe.app) if (u.app[k] === undefined) out.push({ path: ['app', k], message: `required: the recipe refers to app value "${k}"` });
    for (const k of Object.keys(u.app)) if (!u.recipe.app.includes(k)) out.push({ path: ['app', k], message: `the recipe does not use app value "${k}" (it lists ${u.recipe.app.join(', ')})` });
  } else if (u.signMethod !== undefined && u.type !== 'taobao-top') {
    out.push({ path: ['signMethod'], message: 'only taobao-top has sign methods' });
  }
  return out;
}

/** A parsed recipe upstream in its common shape: a preset's appKey/appSecret become app.key/app.secret. */
export function toRecipeUpstream(u: (SignedInput | PresetInput) & { rateLimits: RateLimitRule[] }): RecipeUpstream {
  if (u.type === 'signed') {
    const { recipe, app, ...rest } = u;
    return { ...rest, recipe, app, refreshBefore: u.refreshBefore ?? recipe.tokens.refreshBefore };
  }
  const { appKey, appSecret, signMethod, ...rest } = u;
  const recipe = loadPreset(u.type === 'taobao-top' && signMethod === 'hmac' ? 'taobao-top-hmac' : u.type);
  return { ...rest, type: u.type, recipe, app: { key: appKey, secret: appSecret }, refreshBefore: u.refreshBefore ?? recipe.tokens.refreshBefore };
}
