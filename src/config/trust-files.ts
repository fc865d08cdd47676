import { closeSync, openSync } from 'node:fs';
import { isAbsolute, resolve as resolvePath } from 'node:path';
import { formatPath } from './resolve.js';
import type { ParsedConfig } from './schema.js';

/**
 * The certificate, key, CA and JWKS files the trust-boundary keys name: relative paths are
 * taken from the config file's folder, and each must be readable, else a problem naming its
 * key and path (`listen.tls.proxy.certFile: cannot read /etc/…/tls.crt (ENOENT)`). Their
 * contents are read where they are used (listeners, upstream connections, the JWKS source).
 */
export function resolveTrustFiles(cfg: ParsedConfig, baseDir: string, problems: string[]): void {
  const visit = (holder: Record<string, unknown> | undefined, keys: readonly string[], path: Array<string | number>, mayBeMissing: readonly string[] = []) => {
    if (!holder) return;
    for (const key of keys) {
      const value = holder[key];
      if (typeof value !== 'string') continue;
      const file = isAbsolute(value) ? value : resolvePath(baseDir, value);
      holder[key] = file;
      if (mayBeMissing.includes(key)) continue;
      try {
        closeSync(openSync(file, 'r'));
      } catch (err) {
        problems.push(`${formatPath([...path, key])}: cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
      }
    }
  };
  for (const listener of ['proxy', 'admin', 'ingress'] as const) {
    visit(cfg.listen.tls?.[listener], ['certFile', 'keyFile', 'clientCaFile'], ['listen', 'tls', listener]);
  }
  // tokenPath is the kubelet's projected token, read at each JWKS fetch: it may appear after start.
  visit(cfg.auth?.kubernetes, ['jwksFile', 'caFile', 'tokenPath'], ['auth', 'kubernetes'], ['tokenPath']);
  for (const [name, u] of Object.entries(cfg.upstreams)) visit(u.tls, ['caFile', 'certFile', 'keyFile'], ['upstreams', name, 'tls']);
}

/** check-config's lines for the trust-boundary keys: which listeners serve TLS, the issuer, how each upstream is reached. No secret. */
export function summarizeTrust(cfg: ParsedConfig): { listen: string[]; auth: string[]; upstream: (name: string) => string[] } {
  const listen = (['proxy', 'admin', 'ingress'] as const).flatMap((l) => {
    const tls = cfg.listen.tls?.[l];
    return tls ? [`tls: ${l} ${tls.certFile}${tls.clientCaFile ? ` (client certificates from ${tls.clientCaFile})` : ''}`] : [];
  });
  const k = cfg.auth?.kubernetes;
  const auth = k ? [`auth: kubernetes issuer ${k.issuer}, audience ${k.audience}, JWKS ${k.jwksFile ?? k.jwksUrl}`] : [];
  const upstream = (name: string) => {
    const u = cfg.upstreams[name]!;
    const parts = [
      ...(u.tls?.caFile ? [`CA ${u.tls.caFile}`] : []),
      ...(u.tls?.certFile ? [`client certificate ${u.tls.certFile}`] : []),
      ...(u.tls?.serverName ? [`serverName ${u.tls.serverName}`] : []),
      ...(u.egressProxy ? [`egressProxy ${u.egressProxy}`] : []),
      ...(u.insecure ? ['insecure: plain HTTP allowed'] : []),
    ];
    return parts.length > 0 ? [`    transport: ${parts.join(', ')}`] : [];
  };
  return { listen, auth, upstream };
}

/** How a caller proves itself, for the summary: nothing for a static token (its value is secret), else the certificate name or service account; and its merchants. */
export function describeIdentity(c: NonNullable<ParsedConfig['callers']>[number]): string {
  const id = c.certificate
    ? ` (certificate ${Object.entries(c.certificate).map(([k, v]) => `${k} ${v}`).join('')})`
    : c.serviceAccount !== undefined
      ? ` (serviceAccount ${c.serviceAccount})`
      : '';
  return `${id}${c.merchants ? ` merchants [${c.merchants.join(', ')}]` : ''}`;
}
