import { timingSafeEqual } from 'node:crypto';
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { CallerConfig } from '../config/schema.js';
import { GatewayError } from '../core/errors.js';
import { looksLikeJwt, type ServiceAccountVerifier } from './service-accounts.js';

/**
 * Caller authentication (`callers` in config). A caller proves itself one way: a static
 * `Authorization: Bearer <token>`, the verified client certificate of its TLS connection
 * (`certificate: {uri|dns|cn}`, worked out once per connection), or a bearer ServiceAccount JWT
 * (`serviceAccount: NS/NAME`, service-accounts.ts; only a bearer value that matches no static
 * token and looks like a JWT goes there, so static tokens never touch the JWT code). Its
 * allow list (`upstream:/path/glob`, `upstream:*`, `*:*`) must cover the upstream and path,
 * and its `merchants` (patterns, same glob) the merchant it acts as. `*` in a path
 * glob matches any run of characters, `/` included, so `/order/*` covers everything below /order/.
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
  /** `callers[].merchants`: whether this caller may act as the merchant (always, without the key). */
  mayActAs(merchant: string): boolean;
}

interface CompiledCaller extends Caller {
  /** Static bearer token callers only. */
  readonly token?: Buffer;
  readonly certificate?: { readonly uri?: string; readonly dns?: string; readonly cn?: string };
  readonly serviceAccount?: string;
}

export interface CallerAuthenticator {
  /**
   * Returns the caller, or undefined when no callers are configured. Throws 401 otherwise.
   * Synchronous for static tokens, client certificates and remembered service-account tokens;
   * a promise while a service-account token is first verified.
   */
  identify(authorization: string | undefined, socket?: Socket): Caller | undefined | Promise<Caller>;
  /** identify() for static tokens and certificates only: a service-account token that still needs verifying throws. */
  authenticate(authorization: string | undefined, socket?: Socket): Caller | undefined;
  /** Throws 403 unless the caller may call upstream+path. */
  authorize(caller: Caller | undefined, upstream: string, path: string): void;
  /** Throws 403 unless the caller may act as the merchant (callers[].merchants). */
  authorizeMerchant(caller: Caller | undefined, upstream: string, merchant: string): void;
}

export interface CallerAuthenticatorOptions {
  /** Verifies `serviceAccount` callers' bearer JWTs (auth.kubernetes); absent: none configured. */
  serviceAccounts?: ServiceAccountVerifier;
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
  const merchants = c.merchants?.map(globToRegExp);
  return {
    name: c.name,
    ...(c.token !== undefined && { token: Buffer.from(c.token, 'utf8') }),
    ...(c.certificate && { certificate: c.certificate }),
    ...(c.serviceAccount !== undefined && { serviceAccount: c.serviceAccount }),
    allows(upstream, path) {
      return rules.some((r) => (r.upstream === '*' || r.upstream === upstream) && (!r.path || r.path.test(path)));
    },
    mayActAs: merchants ? (merchant) => merchants.some((m) => m.test(merchant)) : () => true,
  };
}

/** A verified client certificate's names: URI and DNS SANs, subject CN. */
interface PeerNames {
  uris: string[];
  dns: string[];
  cn: string | undefined;
}

function peerNames(socket: TLSSocket): PeerNames | undefined {
  if (!socket.authorized) return undefined;
  const cert = socket.getPeerCertificate();
  if (!cert || Object.keys(cert).length === 0) return undefined;
  const uris: string[] = [];
  const dns: string[] = [];
  // "URI:spiffe://…, DNS:a.example, IP Address:…"; a value with a comma or quote is quoted.
  for (const m of (cert.subjectaltname ?? '').matchAll(/(URI|DNS):(?:"((?:[^"\\]|\\.)*)"|([^,]*))/g)) {
    const value = m[2] !== undefined ? m[2].replace(/\\(.)/g, '$1') : m[3]!.trim();
    (m[1] === 'URI' ? uris : dns).push(value);
  }
  const cn = cert.subject?.CN;
  return { uris, dns, cn: Array.isArray(cn) ? cn[0] : cn };
}

export function createCallerAuthenticator(callers: readonly CallerConfig[] | undefined, options: CallerAuthenticatorOptions = {}): CallerAuthenticator {
  if (!callers) {
    return { identify: () => undefined, authenticate: () => undefined, authorize: () => {}, authorizeMerchant: () => {} };
  }
  const compiled = callers.map(compileCaller);
  const byToken = compiled.filter((c) => c.token !== undefined) as Array<CompiledCaller & { token: Buffer }>;
  const byCertificate = compiled.filter((c) => c.certificate !== undefined);
  const byAccount = new Map<string, CompiledCaller>();
  for (const c of compiled) if (c.serviceAccount !== undefined && !byAccount.has(c.serviceAccount)) byAccount.set(c.serviceAccount, c);
  const accounts = byAccount.size > 0 ? options.serviceAccounts : undefined;
  /** The caller a connection's certificate names, worked out once per connection. */
  const certCallers = new WeakMap<Socket, CompiledCaller | null>();
  const challenge = { 'WWW-Authenticate': 'Bearer realm="countersign"' };

  const byPeer = (socket: Socket | undefined): CompiledCaller | undefined => {
    if (byCertificate.length === 0 || !socket || !(socket as TLSSocket).encrypted) return undefined;
    let found = certCallers.get(socket);
    if (found === undefined) {
      const names = peerNames(socket as TLSSocket);
      found =
        (names &&
          byCertificate.find(({ certificate: id }) =>
            id!.uri !== undefined ? names.uris.includes(id!.uri) : id!.dns !== undefined ? names.dns.includes(id!.dns) : names.cn !== undefined && names.cn === id!.cn,
          )) ??
        null;
      certCallers.set(socket, found);
    }
    return found ?? undefined;
  };

  const fromAccount = (account: string): Caller => {
    const c = byAccount.get(account);
    if (!c) throw new GatewayError('CALLER_UNAUTHENTICATED', `service account ${account} is no configured caller`, { headers: challenge });
    return c;
  };

  const identify: CallerAuthenticator['identify'] = (authorization, socket) => {
    const m = authorization ? /^Bearer[ ]+(\S+)\s*$/i.exec(authorization) : null;
    if (!m) {
      const peer = byPeer(socket);
      if (peer) return peer;
      const certified = byCertificate.length > 0 && socket && (socket as TLSSocket).authorized;
      throw new GatewayError(
        'CALLER_UNAUTHENTICATED',
        certified ? 'the client certificate names no configured caller' : 'send Authorization: Bearer <caller token>',
        { headers: challenge },
      );
    }
    const presented = Buffer.from(m[1]!, 'utf8');
    let found: CompiledCaller | undefined;
    for (const c of byToken) {
      // The same work whether the lengths match or not (a length mismatch compares c with itself).
      const same = presented.length === c.token.length ? timingSafeEqual(presented, c.token) : !timingSafeEqual(c.token, c.token);
      if (same) found = c;
    }
    if (found) return found;
    if (accounts && looksLikeJwt(m[1]!)) {
      const account = accounts.verify(m[1]!);
      return typeof account === 'string' ? fromAccount(account) : account.then(fromAccount);
    }
    throw new GatewayError('CALLER_UNAUTHENTICATED', 'the bearer token matches no configured caller', { headers: challenge });
  };

  return {
    identify,
    authenticate(authorization, socket) {
      const caller = identify(authorization, socket);
      if (caller instanceof Promise) {
        caller.catch(() => {});
        throw new TypeError('a service-account token is verified asynchronously: use identify()');
      }
      return caller;
    },
    authorize(caller, upstream, path) {
      if (caller && !caller.allows(upstream, path)) {
        throw new GatewayError('CALLER_FORBIDDEN', `caller "${caller.name}" is not allowed to call ${upstream}:${path}`);
      }
    },
    authorizeMerchant(caller, upstream, merchant) {
      if (caller && !caller.mayActAs(merchant)) {
        throw new GatewayError('CALLER_FORBIDDEN', `caller "${caller.name}" may not act as merchant "${merchant}" of ${upstream}`);
      }
    },
  };
}
