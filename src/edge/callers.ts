import { hash, timingSafeEqual } from 'node:crypto';
import type { CallerConfig } from '../config/schema.js';
import { GatewayError } from '../errors.js';

/**
 * Caller authentication (`callers` in config): `Authorization: Bearer <token>` names the
 * caller; its allow list (`upstream:/path/glob`, `upstream:*`, `*:*`) must cover the upstream
 * and path. `*` in a path glob matches any run of characters, `/` included, so `/order/*`
 * covers everything below /order/.
 *
 * Tokens are compared as SHA-256 digests with timingSafeEqual, against every caller, so the
 * time taken says nothing about which caller or how many characters matched.
 */
export interface Caller {
  readonly name: string;
  allows(upstream: string, path: string): boolean;
}

interface CompiledCaller extends Caller {
  readonly digest: Buffer;
}

export interface CallerAuthenticator {
  /** Returns the caller, or undefined when no callers are configured. Throws 401 otherwise. */
  authenticate(authorization: string | undefined): Caller | undefined;
  /** Throws 403 unless the caller may call upstream+path. */
  authorize(caller: Caller | undefined, upstream: string, path: string): void;
}

/** One-shot SHA-256 (node:crypto `hash`, Node >= 20.12): the same digest as createHash, without its Hash object. */
const digest = (s: string): Buffer => hash('sha256', s, 'buffer');

/** An allow-list path glob as a RegExp: `*` matches any run of characters, `/` included. */
export function globToRegExp(glob: string): RegExp {
  const body = glob.split('*').map((part) => part.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*');
  return new RegExp(`^${body}$`);
}

function compileCaller(c: CallerConfig): CompiledCaller {
  const rules = c.allow.map((rule) => {
    const sep = rule.indexOf(':');
    const upstream = rule.slice(0, sep);
    const pathGlob = rule.slice(sep + 1);
    return { upstream, path: pathGlob === '*' ? undefined : globToRegExp(pathGlob) };
  });
  return {
    name: c.name,
    digest: digest(c.token),
    allows(upstream, path) {
      return rules.some((r) => (r.upstream === '*' || r.upstream === upstream) && (!r.path || r.path.test(path)));
    },
  };
}

export function createCallerAuthenticator(callers: readonly CallerConfig[] | undefined): CallerAuthenticator {
  if (!callers) {
    return { authenticate: () => undefined, authorize: () => {} };
  }
  const compiled = callers.map(compileCaller);
  const challenge = { 'WWW-Authenticate': 'Bearer realm="countersign"' };
  return {
    authenticate(authorization) {
      const m = authorization ? /^Bearer[ ]+(\S+)\s*$/i.exec(authorization) : null;
      if (!m) throw new GatewayError('CALLER_UNAUTHENTICATED', 'send Authorization: Bearer <caller token>', { headers: challenge });
      const presented = digest(m[1]!);
      let found: CompiledCaller | undefined;
      for (const c of compiled) if (timingSafeEqual(presented, c.digest)) found = c;
      if (!found) throw new GatewayError('CALLER_UNAUTHENTICATED', 'the bearer token matches no configured caller', { headers: challenge });
      return found;
    },
    authorize(caller, upstream, path) {
      if (caller && !caller.allows(upstream, path)) {
        throw new GatewayError('CALLER_FORBIDDEN', `caller "${caller.name}" is not allowed to call ${upstream}:${path}`);
      }
    },
  };
}
