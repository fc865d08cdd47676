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
  const visit = (holder: Record<string, unknown> | undefined, keys: readonly string[], path: Array<string | number>) => {
    if (!holder) return;
    for (const key of keys) {
      const value = holder[key];
      if (typeof value !== 'string') continue;
      const file = isAbsolute(value) ? value : resolvePath(baseDir, value);
      holder[key] = file;
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
  visit(cfg.auth?.kubernetes, ['jwksFile', 'caFile', 'tokenPath'], ['auth', 'kubernetes']);
  for (const [name, u] of Object.entries(cfg.upstreams)) visit(u.tls, ['caFile', 'certFile', 'keyFile'], ['upstreams', name, 'tls']);
}
