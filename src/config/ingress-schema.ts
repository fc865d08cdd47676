import { isIP } from 'node:net';
import { z } from 'zod';
import { parseDuration } from './duration.js';

/**
 * Config of the ingress side (README "Ingress: merchant connection, webhooks, callbacks"): a Keeta upstream's `oauth` and `webhooks`,
 * a KeySecure upstream's `callbacks`. Unknown keys are errors, like everywhere else.
 */

const duration = z.string({ invalid_type_error: 'expected a duration such as 250ms, 10s, 5m, 4d' }).transform((text, ctx) => {
  const ms = parseDuration(text);
  if (ms === undefined || ms <= 0) {
    ctx.addIssue({ code: z.ZodIssueCode.custom, message: `"${text}" is not a duration above 0 (use 250ms, 10s, 5m, 2h, 4d)` });
    return z.NEVER;
  }
  return ms;
});

/** An absolute http(s) URL kept exactly as written (some webhook recipes sign it). */
const exactUrl = z
  .string({ required_error: 'required', invalid_type_error: 'expected a URL' })
  .url('expected an absolute URL')
  .refine((u) => /^https?:\/\//.test(u), 'expected an http:// or https:// URL')
  .refine((u) => !u.includes('#'), 'must not contain a fragment');

const urlWithoutQuery = exactUrl.refine((u) => !u.includes('?'), 'must not contain a query');

const secret = z.string({ required_error: 'required', invalid_type_error: 'expected a string' }).min(1, 'must not be empty');

/** An IPv4/IPv6 address or CIDR block (`10.0.0.0/8`, `2001:db8::/32`). */
export const ipOrCidr = z.string({ invalid_type_error: 'expected an IP address or CIDR' }).refine((text) => parseIpOrCidr(text) !== undefined, {
  message: 'expected an IP address or CIDR, e.g. 43.135.86.188 or 10.0.0.0/8',
});

export function parseIpOrCidr(text: string): { address: string; prefix: number; family: 'ipv4' | 'ipv6' } | undefined {
  const [address = '', prefixText, extra] = text.trim().split('/');
  if (extra !== undefined) return undefined;
  const version = isIP(address);
  if (version === 0) return undefined;
  const max = version === 4 ? 32 : 128;
  const prefix = prefixText === undefined ? max : /^\d{1,3}$/.test(prefixText) ? Number(prefixText) : NaN;
  if (!(prefix >= 0 && prefix <= max)) return undefined;
  return { address, prefix, family: version === 4 ? 'ipv4' : 'ipv6' };
}

export const oauthSchema = z
  .object({
    /** Keeta's merchant authorization page. */
    authorizeUrl: urlWithoutQuery,
    /** This gateway's `GET /oauth/{upstream}/callback` as the merchant's browser reaches it (registered with Keeta). */
    redirectUri: urlWithoutQuery,
  })
  .strict();

export const WEBHOOK_RECIPES = ['url-query', 'url-concat', 'sorted', 'query'] as const;
export type WebhookRecipe = (typeof WEBHOOK_RECIPES)[number];
export const VERIFY_MODES = ['enforce', 'observe', 'off'] as const;
export type VerifyMode = (typeof VERIFY_MODES)[number];

const verifyMode = z.enum(VERIFY_MODES, { errorMap: () => ({ message: 'expected enforce, observe or off' }) });

const eventId = z.union([z.number().int().nonnegative(), z.literal('*')], { errorMap: () => ({ message: 'expected an event id (a whole number) or "*"' }) });

export const webhooksSchema = z
  .object({
    /** The URL Keeta calls, exactly as registered with Keeta (the url-* recipes sign it). */
    url: urlWithoutQuery,
    verify: verifyMode.default('observe'),
    recipes: z
      .array(z.enum(WEBHOOK_RECIPES, { errorMap: () => ({ message: `expected one of ${WEBHOOK_RECIPES.join(', ')}` }) }))
      .min(1, 'list at least one recipe')
      .refine((r) => new Set(r).size === r.length, 'a recipe is listed twice')
      .default([...WEBHOOK_RECIPES]),
    timestampWindow: duration.default('5m'),
    sourceIps: z
      .union([z.literal('documented'), z.literal('any'), z.array(ipOrCidr).min(1, 'list at least one address, or write any')], {
        errorMap: (issue, ctx) => (issue.code === z.ZodIssueCode.invalid_union ? { message: 'expected documented, any, or a list of IPs/CIDRs' } : { message: ctx.defaultError }),
      })
      .default('documented'),
    trustedProxies: z.array(ipOrCidr).default([]),
    dedupeFor: duration.default('24h'),
    authorizationEvents: z
      .object({
        added: z.number().int().nonnegative().default(1301),
        cancelled: z.number().int().nonnegative().default(1302),
        revoked: z.number().int().nonnegative().default(1303),
      })
      .strict()
      .default({}),
    /** The gateway's own shop re-reads after store-authorization events, per merchant (ingress/shop-rereads.ts). */
    shopRereads: z
      .object({
        burst: z.number({ invalid_type_error: 'expected a whole number' }).int('expected a whole number').min(1, 'at least 1').max(100, 'at most 100').default(3),
        interval: duration.default('10s'),
      })
      .strict()
      .default({}),
    deliver: z
      .array(z.object({ events: z.array(eventId).min(1, 'list at least one event id or "*"'), url: exactUrl }).strict())
      .min(1, 'list at least one delivery target'),
    timeout: duration.default('4s'),
  })
  .strict()
  .superRefine((w, ctx) => {
    const stars = w.deliver.filter((d) => d.events.includes('*')).length;
    if (stars > 1) ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['deliver'], message: '"*" may appear in one rule only' });
  });

/** KeySecure expects an Auth answer within 800 ms (docs/protocols.md 2.5). */
export const KEYSECURE_AUTH_DEADLINE_MS = 800;
export const DEFAULT_AUTH_BUDGET_MS = 700;
export const DEFAULT_CALLBACK_TIMEOUT_MS = 5000;

export const callbacksSchema = z
  .object({
    verify: verifyMode.default('enforce'),
    /** The `appId` signed into every callback (unconfirmed upstream; a secret-like value, `appIdFile` works). */
    appId: secret.optional(),
    /** HMAC key; defaults to the upstream's apiSecret. */
    secret: secret.optional(),
    timestampWindow: duration.default('5m'),
    dedupeFor: duration.default('24h'),
    deliver: z
      .array(
        z
          .object({
            actions: z.array(z.string().regex(/^(\*|[A-Za-z_]{1,64})$/, 'expected an action such as Auth, Consumption, Card_update, or "*"')).min(1, 'list at least one action or "*"'),
            url: exactUrl,
            timeout: duration.optional(),
          })
          .strict(),
      )
      .min(1, 'list at least one delivery target'),
  })
  .strict()
  .superRefine((c, ctx) => {
    if (c.verify !== 'off' && c.appId === undefined) ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['appId'], message: 'required to verify callbacks (or set verify: off)' });
    if (c.deliver.filter((d) => d.actions.includes('*')).length > 1) {
      ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['deliver'], message: '"*" may appear in one rule only' });
    }
    c.deliver.forEach((d, i) => {
      if (d.actions.includes('Auth') && d.timeout !== undefined && d.timeout >= KEYSECURE_AUTH_DEADLINE_MS) {
        ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['deliver', i, 'timeout'], message: `must be below ${KEYSECURE_AUTH_DEADLINE_MS}ms: KeySecure wants an Auth answer within ${KEYSECURE_AUTH_DEADLINE_MS} ms` });
      }
    });
  })
  .transform((c) => ({
    ...c,
    deliver: c.deliver.map((d) => ({ ...d, timeout: d.timeout ?? (d.actions.includes('Auth') ? DEFAULT_AUTH_BUDGET_MS : DEFAULT_CALLBACK_TIMEOUT_MS) })),
  }));

export type OAuthConfig = z.output<typeof oauthSchema>;
export type WebhooksConfig = z.output<typeof webhooksSchema>;
export type CallbacksConfig = z.output<typeof callbacksSchema>;
