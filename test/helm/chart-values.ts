import { join } from 'node:path';
import { CHART, one, render, RenderError, type Rendered } from './renderer.js';

/** Values and helpers shared by the chart tests. */

export const CONFIG_PATH = '/etc/countersign/config.yaml';
export const example = (name: string) => join(CHART, 'examples', name);

// Fake secret values that must never show up outside the Secret.
export const FAKE = {
  'admin.token': 'FAKE-admin-token-5f1c0e9a2b',
  'store.url': 'redis://:FAKE-redis-password-77ad@redis-master.redis:6379/0',
  'callers.order-service.token': 'FAKE-caller-order-token-93be',
  'callers.card-service.token': 'FAKE-caller-card-token-0c4d2',
  'upstreams.keeta.appSecret': 'FAKE-keeta-app-secret-d41f',
  'upstreams.keysecure-hk.apiKey': 'FAKE-keysecure-api-key-8e2a',
  'upstreams.keysecure-hk.apiSecret': 'FAKE-keysecure-api-secret-61b7',
} as const;

export const FULL_CENTRAL = {
  config: {
    callers: [
      { name: 'order-service', allow: ['keeta:/order/*'] },
      { name: 'card-service', allow: ['keysecure-hk:*'] },
    ],
    upstreams: {
      keeta: { type: 'keeta', baseUrl: 'https://open.mykeeta.com/api/open', appId: 3340612437 },
      'keysecure-hk': { type: 'keysecure', baseUrl: 'https://openplatform.keysecure.io', timezone: 'UTC+8' },
    },
  },
  secrets: { values: FAKE },
};

/** The chart's refusal message; fails if the chart renders. */
export async function refusal(opts: Parameters<typeof render>[0]): Promise<string> {
  try {
    await render(opts);
  } catch (err) {
    if (err instanceof RenderError) return err.message;
    throw err;
  }
  throw new Error('the chart rendered, but should have refused');
}

/** A value for a key of an operator's existing Secret, shaped as the gateway expects. */
export function existingSecretValue(key: string): string {
  return key === 'store.url' ? 'redis://:existing-redis-password@redis-master.redis:6379/0' : `existing-secret-value-for-${key}`;
}

/** The chart-made Secret's data, decoded. */
export function secretData(r: Rendered): Record<string, string> {
  const secret = one<{ data: Record<string, string> }>(r, 'Secret');
  return Object.fromEntries(Object.entries(secret.data).map(([k, v]) => [k, Buffer.from(v, 'base64').toString('utf8')]));
}
