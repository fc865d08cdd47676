import { z } from 'zod';
import { parseDuration } from './duration.js';

/**
 * Config of what the gateway lets through and how much of it it holds (README "Limits and
 * fairness"): the methods each upstream is called with, its connections and token-call
 * timeout, each caller's share, and the listeners' bounds. Imported by schema.ts.
 */

const positiveDuration = z.string({ invalid_type_error: 'expected a duration such as 250ms, 10s, 5m, 4d' }).transform((text, ctx) => {
  const ms = parseDuration(text);
  if (ms === undefined || ms <= 0) {
    ctx.addIssue({ code: z.ZodIssueCode.custom, message: `"${text}" is not a duration above 0 (use 250ms, 10s, 5m, 2h, 4d)` });
    return z.NEVER;
  }
  return ms;
});

const positiveInt = (max: number) =>
  z.union([z.number(), z.string().regex(/^\d+$/, 'expected a whole number').transform(Number)]).pipe(
    z.number().int('expected a whole number').positive('must be greater than 0').max(max, `at most ${max}`),
  );

/** Methods a client can name in a request line; CONNECT is never proxied. */
const METHOD = /^(GET|HEAD|POST|PUT|DELETE|PATCH|OPTIONS)$/;

/** The methods each upstream type is called with (docs/protocols.md): anything else is METHOD_NOT_ALLOWED. */
export const DEFAULT_METHODS = {
  keeta: ['POST'],
  keysecure: ['GET', 'POST', 'PUT', 'DELETE'],
} as const;

/** `methods:` of an upstream: overrides its type's default list. */
export const methodsSchema = z
  .array(z.string().transform((m) => m.toUpperCase()).pipe(z.string().regex(METHOD, 'expected one of GET, HEAD, POST, PUT, DELETE, PATCH, OPTIONS')))
  .min(1, 'list at least one method')
  .optional();

/** Fields every upstream has, whatever its type. */
export const upstreamTrafficFields = {
  methods: methodsSchema,
  /** Timeout of the upstream's token calls (renewals, refreshes, code exchanges), from when the request is sent. */
  tokenTimeout: positiveDuration.default('30s'),
  /** Pooled connections to the upstream for business traffic (token calls have their own). */
  connections: positiveInt(10_000).default(128),
};

/** Fields of a caller: its share of each upstream. */
export const callerTrafficFields = {
  /** Most requests of this caller in flight to one upstream at a time (a number for every upstream, or per upstream name). */
  maxInFlight: z.union([positiveInt(100_000), z.record(z.string(), positiveInt(100_000))]).optional(),
  /** Its weight in the fair share of an upstream's connections and rate budgets (default 1). */
  weight: positiveInt(1000).optional(),
};

/** `limits:` besides maxBodyBytes. */
export const listenerLimitFields = {
  /** Open connections each listener accepts at a time; more are closed at once. */
  maxConnections: positiveInt(1_000_000).default(10_000),
  /** Largest upstream answer the proxy holds for one request; over it: UPSTREAM_RESPONSE_TOO_LARGE (502). */
  maxResponseBytes: positiveInt(1024 * 1024 * 1024).default(16 * 1024 * 1024),
};
