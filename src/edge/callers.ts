import { timingSafeEqual } from 'node:crypto';
import type { CallerConfig } from '../config/schema.js';
import { GatewayError } from '../core/errors.js';

/**
 * Caller authentication (`callers` in config): `Authorization: Bearer <token>` names the
 * caller; its allow list (`upstream:/path/glob`, `upstream:*`, `*:*`) must cover the upstream
 * and path. `*` in a path glob matches any run of characters, `/` included, so `/order/*`
 * covers everything below /order/.
 *
 * The presented token is compared with timingSafeEqual against every caller's token, and a
 * caller whose token has another length gets the same comparison against itself, so the time
 * taken depends on the tokens' lengths, never on their contents: not on which caller matched
 * or how many characters did. (Hashing both sides first gives the same property
 * at ten times the cost per request: README "Performance".)
 */
export interface Caller {
  readonly name: string;
  allows(upstream: string, path: string): boolean;
}

interface CompiledCaller extends Caller {
  readonly token: Buffer;
}

export interface CallerAuthenticator {
  /** Returns the caller, or undefined when no callers are configured. Throws 401 otherwise. */
  authenticate(authorization: string | undefined): Caller | undefined;
  /** Throws 403 unless the caller may call upstream+path. */
  authorize(caller: Caller | undefined, upstream: string, path: string): void;
}


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
    token: Buffer.from(c.token, 'utf8'),
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
      const presented = Buffer.from(m[1]!, 'utf8');
      let found: CompiledCaller | undefined;
      for (const c of compiled) {
        // The same work whether the lengths match or not (a length mismatch compares c with itself).
        const same = presented.length === c.token.length ? timingSafeEqual(presented, c.token) : !timingSafeEqual(c.token, c.token);
        if (same) found = c;
      }
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
