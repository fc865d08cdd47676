import { z } from 'zod';

/**
 * Config pieces of the trust boundary (README "TLS and caller identity", "Reaching the
 * upstream"): TLS on the listeners, the Kubernetes ServiceAccount issuer, the ways a caller
 * proves who it is, and how an upstream is reached (its CA, client certificate, forward proxy).
 * Cross-field rules are in `trustProblems`, called from schema.ts.
 */

const filePath = z.string({ required_error: 'required', invalid_type_error: 'expected a file path' }).min(1, 'must not be empty');

/** One listener's TLS: its certificate and key (reloaded when they change), and optionally the CA of client certificates. */
export const listenerTlsSchema = z
  .object({
    certFile: filePath,
    keyFile: filePath,
    /** Ask callers for a client certificate signed by this CA (a certificate from another CA is refused). */
    clientCaFile: filePath.optional(),
  })
  .strict();

export const listenTlsSchema = z
  .object({ proxy: listenerTlsSchema.optional(), admin: listenerTlsSchema.optional(), ingress: listenerTlsSchema.optional() })
  .strict();

const httpsUrl = z
  .string({ required_error: 'required' })
  .url('expected an absolute URL')
  .refine((u) => u.startsWith('https://'), 'expected an https:// URL');

/** Callers proving a projected ServiceAccount token, verified offline against the cluster's JWKS. */
export const kubernetesAuthSchema = z
  .object({
    issuer: z.string({ required_error: 'required' }).min(1, 'must not be empty'),
    audience: z.string({ required_error: 'required' }).min(1, 'must not be empty'),
    jwksFile: filePath.optional(),
    jwksUrl: httpsUrl.optional(),
    /** CA of the server behind jwksUrl (in a pod: the service-account CA). */
    caFile: filePath.optional(),
    /** A file holding a bearer token sent with jwksUrl (in a pod: the gateway's own service-account token). */
    tokenPath: filePath.optional(),
  })
  .strict()
  .superRefine((k, ctx) => {
    if ((k.jwksFile === undefined) === (k.jwksUrl === undefined)) {
      ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['jwksFile'], message: 'give exactly one of jwksFile or jwksUrl' });
    }
    if (k.caFile !== undefined && k.jwksUrl === undefined) ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['caFile'], message: 'only used with jwksUrl' });
    if (k.tokenPath !== undefined && k.jwksUrl === undefined) ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['tokenPath'], message: 'only used with jwksUrl' });
  });

export const authSchema = z.object({ kubernetes: kubernetesAuthSchema.optional() }).strict();

/** `{uri: ...}`, `{dns: ...}` or `{cn: ...}`: exactly one, matched against the verified client certificate. */
export const certificateIdentitySchema = z
  .object({ uri: z.string().min(1, 'must not be empty').optional(), dns: z.string().min(1, 'must not be empty').optional(), cn: z.string().min(1, 'must not be empty').optional() })
  .strict()
  .refine((c) => [c.uri, c.dns, c.cn].filter((v) => v !== undefined).length === 1, 'give exactly one of uri, dns or cn');

/** Kubernetes names: namespace/name, each a DNS label (name may hold dots). */
export const serviceAccountSchema = z.string().regex(/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\/[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$/, 'expected namespace/name, e.g. menu/menu-sync');

/** Merchant ids or patterns (`*` any run of characters). */
export const merchantPatternsSchema = z.array(z.string().regex(/^[A-Za-z0-9._*:@-]{1,128}$/, 'a merchant id, or a pattern with * (letters, digits, . _ : @ -)')).min(1, 'list at least one merchant or pattern');

/** How an upstream is reached: its TLS trust and client certificate, and an optional CONNECT proxy. */
export const upstreamTransportFields = {
  tls: z
    .object({
      /** PEM of the CA that signs the upstream's certificate (else the system CAs). */
      caFile: filePath.optional(),
      /** Client certificate and key, for upstreams that want mutual TLS. */
      certFile: filePath.optional(),
      keyFile: filePath.optional(),
      /** The name the certificate must carry (SNI), when it is not baseUrl's host. */
      serverName: z.string().min(1, 'must not be empty').optional(),
    })
    .strict()
    .optional(),
  egressProxy: z
    .string()
    .url('expected an absolute URL')
    .refine((u) => /^http:\/\/[^/?#]+\/?$/.test(u) && !u.includes('@'), 'expected http://host:port (no path, no credentials)')
    .optional(),
  /** Allow an http:// baseUrl to a non-loopback host (a plain-HTTP simulator elsewhere). */
  insecure: z.boolean({ invalid_type_error: 'expected true or false' }).default(false),
};

type Issue = { path: Array<string | number>; message: string };

/** Host names that only ever reach this machine, or reserved for testing and never delegated (RFC 6761). */
function isLocalOrTestHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  return h === 'localhost' || h === '::1' || /^127\.\d+\.\d+\.\d+$/.test(h) || h.endsWith('.localhost') || h.endsWith('.test');
}

interface TrustInput {
  listen: { tls?: { proxy?: { clientCaFile?: string | undefined } | undefined } | undefined };
  auth?: { kubernetes?: unknown } | undefined;
  callers?: ReadonlyArray<{ token?: string | undefined; certificate?: unknown; serviceAccount?: string | undefined }> | undefined;
  upstreams: Record<string, { baseUrl: string; insecure: boolean; tls?: { certFile?: string | undefined; keyFile?: string | undefined } | undefined }>;
}

/** The rules that span keys: one identity per caller, what each needs configured, plain HTTP only where it stays local. */
export function trustProblems(cfg: TrustInput): Issue[] {
  const out: Issue[] = [];
  cfg.callers?.forEach((c, i) => {
    const ways = (['token', 'certificate', 'serviceAccount'] as const).filter((k) => c[k] !== undefined);
    if (ways.length !== 1) {
      out.push({ path: ['callers', i], message: ways.length === 0 ? 'give one of token, certificate or serviceAccount' : `give only one of token, certificate or serviceAccount (found ${ways.join(' and ')})` });
    }
    if (c.certificate !== undefined && !cfg.listen.tls?.proxy?.clientCaFile) {
      out.push({ path: ['callers', i, 'certificate'], message: 'needs listen.tls.proxy.clientCaFile: the proxy listener asks for client certificates only then' });
    }
    if (c.serviceAccount !== undefined && !cfg.auth?.kubernetes) {
      out.push({ path: ['callers', i, 'serviceAccount'], message: 'needs auth.kubernetes (issuer, audience, jwksFile or jwksUrl)' });
    }
  });
  for (const [name, u] of Object.entries(cfg.upstreams)) {
    const url = new URL(u.baseUrl);
    if (url.protocol === 'http:' && !u.insecure && !isLocalOrTestHost(url.hostname)) {
      out.push({ path: ['upstreams', name, 'baseUrl'], message: `http:// to ${url.host} sends credentials in the clear: use https://, or set insecure: true` });
    }
    if (u.tls && (u.tls.certFile === undefined) !== (u.tls.keyFile === undefined)) {
      out.push({ path: ['upstreams', name, 'tls', u.tls.certFile === undefined ? 'certFile' : 'keyFile'], message: 'certFile and keyFile go together' });
    }
    if (u.tls && url.protocol === 'http:') out.push({ path: ['upstreams', name, 'tls'], message: 'only used with an https:// baseUrl' });
  }
  return out;
}
