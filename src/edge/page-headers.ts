import { createHash } from 'node:crypto';

/**
 * The security headers of every HTML page the gateway serves (the ingress pages a merchant's
 * browser sees, the operators' console): a Content-Security-Policy that allows nothing but the
 * page's own inline style and script (by hash) and, when asked, same-origin fetches and form
 * posts; no framing (clickjacking); no MIME sniffing; no referrer. One place, so every page
 * gets the same set.
 *
 *   ctx.set(pageSecurityHeaders({ styles: [PAGE_STYLE] }));
 */
export interface PagePolicy {
  /** Inline `<style>` texts the page carries, exactly as written between the tags. */
  styles?: readonly string[];
  /** Inline `<script>` texts the page carries, exactly as written between the tags. */
  scripts?: readonly string[];
  /** The page's scripts may fetch from its own origin (`connect-src 'self'`). */
  connectSelf?: boolean;
  /** The page's forms may post to its own origin (`form-action 'self'`); else no form may be sent. */
  formsToSelf?: boolean;
  /** The page loads its script, style and images as files from its own origin (the console). */
  selfAssets?: boolean;
}

/** CSP source for an inline text: `'sha256-<base64>'`. */
export function inlineSource(text: string): string {
  return `'sha256-${createHash('sha256').update(text, 'utf8').digest('base64')}'`;
}

export function contentSecurityPolicy(policy: PagePolicy = {}): string {
  const self = policy.selfAssets ? ["'self'"] : [];
  const list = (texts: readonly string[] | undefined) => [...self, ...(texts ?? []).map(inlineSource)].join(' ') || "'none'";
  return [
    "default-src 'none'",
    `style-src ${list(policy.styles)}`,
    `script-src ${list(policy.scripts)}`,
    `connect-src ${policy.connectSelf ? "'self'" : "'none'"}`,
    `img-src ${policy.selfAssets ? "'self'" : "'none'"}`,
    "base-uri 'none'",
    `form-action ${policy.formsToSelf ? "'self'" : "'none'"}`,
    "frame-ancestors 'none'",
  ].join('; ');
}

/** The headers to set on an HTML answer. */
export function pageSecurityHeaders(policy: PagePolicy = {}): Record<string, string> {
  return {
    'Content-Security-Policy': contentSecurityPolicy(policy),
    'X-Content-Type-Options': 'nosniff',
    'X-Frame-Options': 'DENY',
    'Referrer-Policy': 'no-referrer',
    'Cross-Origin-Opener-Policy': 'same-origin',
  };
}
