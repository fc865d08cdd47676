import type { ExecutionContext } from 'ava';
import type { Clock } from '../../src/core/clock.js';
import { startKeetaSim, type KeetaSim, type KeetaSimOptions } from '../../src/sim/index.js';
import type { TokenStore } from '../../src/tokens/types.js';
import { startGateway, type TestGateway } from './gateway.js';
import { KEETA_APP_ID, KEETA_SECRET } from './keeta-setup.js';
import { startRecordingUpstream, type RecordingUpstream } from './recording-upstream.js';

/** What Keeta is told the gateway's URLs are (behind a load balancer); tests reach the real listener. */
export const PUBLIC_HOOK_URL = 'https://hooks.example.com/hooks/keeta';
export const PUBLIC_REDIRECT_URI = 'https://hooks.example.com/oauth/keeta/callback';

export interface KeetaIngressSetup {
  sim: KeetaSim;
  gw: TestGateway;
  /** The internal service webhooks are delivered to: orders at /orders, the rest at /other. */
  target: RecordingUpstream;
}

export interface KeetaIngressOptions {
  verify?: 'enforce' | 'observe' | 'off';
  recipes?: string[];
  sourceIps?: string;
  trustedProxies?: string;
  timestampWindow?: string;
  webhookTimeout?: string;
  sim?: Partial<KeetaSimOptions>;
  sharedSim?: KeetaSim;
  sharedTarget?: RecordingUpstream;
  store?: TokenStore | 'config';
  storeYaml?: string;
  clock?: Clock;
  extraYaml?: string;
}

export function keetaIngressYaml(simBaseUrl: string, authorizeUrl: string, targetUrl: string, o: KeetaIngressOptions = {}): string {
  return `${o.storeYaml ?? ''}upstreams:
  keeta:
    type: keeta
    baseUrl: ${simBaseUrl}
    appId: ${KEETA_APP_ID}
    appSecret: ${KEETA_SECRET}
    oauth:
      authorizeUrl: ${authorizeUrl}
      redirectUri: ${PUBLIC_REDIRECT_URI}
    webhooks:
      url: ${PUBLIC_HOOK_URL}
      verify: ${o.verify ?? 'enforce'}
      recipes: ${o.recipes ? `[${o.recipes.join(', ')}]` : '[url-query, url-concat, sorted, query]'}
      sourceIps: ${o.sourceIps ?? '[127.0.0.1]'}
      trustedProxies: ${o.trustedProxies ?? '[]'}
      timestampWindow: ${o.timestampWindow ?? '5m'}
      timeout: ${o.webhookTimeout ?? '4s'}
      deliver:
        - events: [1001, 1002, 1004]
          url: ${targetUrl}/orders
        - events: ["*"]
          url: ${targetUrl}/other
${o.extraYaml ?? ''}`;
}

/** A Keeta simulator, a gateway with its ingress listener, and a recording internal target. */
export async function keetaIngressSetup(t: ExecutionContext, o: KeetaIngressOptions = {}): Promise<KeetaIngressSetup> {
  const sim = o.sharedSim ?? (await startKeetaSim({ appId: KEETA_APP_ID, appSecret: KEETA_SECRET, redirectUris: [PUBLIC_REDIRECT_URI], ...o.sim }));
  const target = o.sharedTarget ?? (await startRecordingUpstream());
  const gw = await startGateway(keetaIngressYaml(sim.baseUrl, sim.authorizeUrl, target.url, o), {
    ingress: true,
    ...(o.store && { store: o.store }),
    ...(o.clock && { clock: o.clock }),
  });
  sim.control.setCallbackUrl(1, `${gw.ingressUrl}/hooks/keeta`);
  t.teardown(async () => {
    await gw.close();
    if (!o.sharedSim) await sim.close();
    if (!o.sharedTarget) await target.close();
  });
  return { sim, gw, target };
}

/** POST /admin/upstreams/{u}/authorizations → {url, state, expiresAt}; the state is registered as a secret. */
export async function createAuthorization(gw: TestGateway, upstream = 'keeta'): Promise<{ url: string; state: string; expiresAt: string }> {
  const res = await fetch(`${gw.adminUrl}/admin/upstreams/${upstream}/authorizations`, { method: 'POST' });
  if (res.status !== 200) throw new Error(`authorization link: ${res.status} ${await res.text()}`);
  const link = (await res.json()) as { url: string; state: string; expiresAt: string };
  gw.secrets.add(link.state);
  return link;
}

/**
 * The merchant's browser, without a browser: open the link, choose the account, press
 * Authorize (or Deny), and follow the redirect to the gateway's real ingress address.
 * Returns the gateway's page, or the simulator's answer when it did not redirect.
 */
export async function authorizeAs(
  gw: TestGateway,
  link: string,
  merchantId: string,
  decision: 'authorize' | 'deny' = 'authorize',
): Promise<{ status: number; html: string; code?: string }> {
  const page = await fetch(link);
  if (page.status !== 200) return { status: page.status, html: await page.text() };
  const html = await page.text();
  const form = new URLSearchParams();
  for (const m of html.matchAll(/<input type="hidden" name="(\w+)" value="([^"]*)">/g)) form.set(m[1]!, unescape(m[2]!));
  form.set('merchantId', merchantId);
  form.set('decision', decision);
  const action = new URL('/m/web/openapi/authorize', link);
  const decided = await fetch(action, { method: 'POST', body: form, redirect: 'manual', headers: { 'content-type': 'application/x-www-form-urlencoded' } });
  const location = decided.headers.get('location');
  if (decided.status !== 302 || !location) return { status: decided.status, html: await decided.text() };
  const back = new URL(location);
  const code = back.searchParams.get('code') ?? undefined;
  if (code) gw.secrets.add(code);
  const res = await fetch(`${gw.ingressUrl}${back.pathname}${back.search}`);
  return { status: res.status, html: await res.text(), ...(code && { code }) };
}

function unescape(text: string): string {
  return text.replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');
}

export async function adminTokens(gw: TestGateway): Promise<Array<{ merchant: string; state: string; shopCount: number }>> {
  const body = (await (await fetch(`${gw.adminUrl}/admin/tokens`)).json()) as { upstreams: Array<{ name: string; merchants: Array<{ merchant: string; state: string; shopCount: number }> }> };
  return body.upstreams.find((u) => u.name === 'keeta')?.merchants ?? [];
}

export async function waitFor(cond: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await cond()) return true;
    await new Promise((r) => setTimeout(r, 25));
  }
  return cond();
}
