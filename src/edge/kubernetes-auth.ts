import { readFileSync } from 'node:fs';
import type { Clock } from '../core/clock.js';
import type { ParsedConfig } from '../config/schema.js';
import type { Logger } from '../observability/logger.js';
import { createJwksSource, fileJwksReader, urlJwksReader, type JwksSource } from './jwks.js';
import { createServiceAccountVerifier, type ServiceAccountVerifier } from './service-accounts.js';

type KubernetesAuthConfig = NonNullable<NonNullable<ParsedConfig['auth']>['kubernetes']>;

/**
 * The service-account verifier of the config in force (auth.kubernetes). Kept across config
 * reloads while auth.kubernetes stays the same, so the JWKS read and the remembered tokens are
 * not thrown away by an unrelated change; replaced (and the old JWKS reader closed) when it changes.
 */
export class KubernetesAuth {
  #key: string | undefined;
  #verifier: ServiceAccountVerifier | undefined;
  #jwks: JwksSource | undefined;

  constructor(private readonly deps: { clock: Clock; log: Logger; jwksMinRereadMs?: number }) {}

  verifierFor(cfg: KubernetesAuthConfig | undefined): ServiceAccountVerifier | undefined {
    const key = cfg ? JSON.stringify(cfg) : undefined;
    if (key === this.#key) return this.#verifier;
    void this.#jwks?.close();
    this.#key = key;
    this.#jwks = undefined;
    this.#verifier = undefined;
    if (!cfg) return undefined;
    const { clock, log } = this.deps;
    const url = cfg.jwksUrl !== undefined ? urlJwksReader(cfg.jwksUrl, { ...(cfg.caFile && { ca: readFileSync(cfg.caFile) }), ...(cfg.tokenPath && { tokenPath: cfg.tokenPath }) }) : undefined;
    this.#jwks = createJwksSource({
      read: url ? url.read : fileJwksReader(cfg.jwksFile!),
      describe: cfg.jwksUrl ?? cfg.jwksFile!,
      clock,
      log,
      ...(url && { close: url.close }),
      ...(this.deps.jwksMinRereadMs !== undefined && { minRereadMs: this.deps.jwksMinRereadMs }),
    });
    this.#verifier = createServiceAccountVerifier({ issuer: cfg.issuer, audience: cfg.audience, getKey: this.#jwks.getKey, clock });
    return this.#verifier;
  }

  async close(): Promise<void> {
    await this.#jwks?.close();
  }
}
