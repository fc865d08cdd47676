import { signRecipeCommand } from './sign-recipe.js';
import type { Config } from '../config/load.js';
import { isRecipeUpstream } from '../config/schema.js';
import { JsonSyntaxError, parseJsonText } from '../provider/steps/json-text.js';
import { signKeetaRequest } from '../provider/steps/sorted-json-body-sign.js';
import { createStore } from '../tokens/create-store.js';
import { FileStore } from '../tokens/file-store.js';

export interface SignArgs {
  upstream?: string | undefined;
  path?: string | undefined;
  body?: string | undefined;
  merchant?: string | undefined;
  timestamp?: string | undefined;
  /** Sign with this token instead of the store's. */
  accessToken?: string | undefined;
  method?: string | undefined;
}

const ACCESS_TOKEN_PLACEHOLDER = '<accessToken>';

/**
 * `countersign sign`: the exact string that is hashed for a Keeta call, with the secret shown as
 * `<appSecret>` (and a merchant's token as `<accessToken>`), plus the signature. With
 * `--merchant` the token is read from the configured store; `--timestamp` reproduces a
 * particular request.
 */
export async function signCommand(config: Config, args: SignArgs): Promise<string> {
  const name = args.upstream;
  if (!name) throw new Error('--upstream NAME is required');
  const cfg = config.upstreams[name];
  if (!cfg) throw new Error(`no upstream "${name}" in ${config.source}`);
  if (isRecipeUpstream(cfg)) {
    if (!args.path?.startsWith('/')) throw new Error('--path /endpoint/path is required (below baseUrl; it may carry ?a=b)');
    const ts = args.timestamp ? Number(args.timestamp) : Math.floor(Date.now() / 1000);
    if (!Number.isSafeInteger(ts) || ts <= 0) throw new Error('--timestamp must be Unix seconds');
    let token = args.accessToken;
    if (token === undefined && args.merchant) token = (await storedRecord(config, name, args.merchant)).accessToken;
    return signRecipeCommand(cfg, { name, path: args.path, method: args.method, body: args.body, timestampSec: ts, accessToken: token });
  }
  if (cfg.type !== 'keeta') {
    throw new Error(`signing is not available for ${name}: ${cfg.type} upstreams carry no request signature (docs/protocols.md 2.2); the proxy only sets headers`);
  }
  const path = args.path;
  if (!path) throw new Error('--path /endpoint/path is required (below baseUrl, e.g. /order/get)');
  if (!path.startsWith('/')) throw new Error(`--path must start with "/" (the path below baseUrl): did you mean --path /${path}?`);
  const body = parseJsonText(args.body ?? '{}');
  if (body.kind !== 'object') throw new Error('--body must be a JSON object');
  const timestampSec = args.timestamp ? Number(args.timestamp) : Math.floor(Date.now() / 1000);
  if (!Number.isSafeInteger(timestampSec) || timestampSec <= 0) throw new Error('--timestamp must be Unix seconds');

  const appLevel = cfg.appLevelPaths.includes(path);
  const notes: string[] = [];
  if (appLevel && args.merchant) notes.push(`note: ${path} is an app-level path: signed without accessToken, --merchant ignored (as the proxy does)`);
  if (!appLevel && !args.merchant) {
    notes.push(`note: ${path} is a merchant path: the proxy adds the merchant's accessToken; pass --merchant ID to include it`);
  }
  let accessToken: string | undefined;
  if (args.accessToken !== undefined && !appLevel) accessToken = args.accessToken;
  else if (args.merchant && !appLevel) accessToken = (await storedRecord(config, name, args.merchant)).accessToken;
  const signed = signKeetaRequest({
    signUrl: (cfg.signUrlBase ?? cfg.baseUrl) + path,
    appSecret: cfg.appSecret,
    appId: cfg.appId,
    timestampSec,
    ...(accessToken !== undefined && { accessToken }),
    body,
  });
  const shown = accessToken === undefined ? signed.preHashRedacted : signed.preHashRedacted.split(`accessToken=${accessToken}`).join(`accessToken=${ACCESS_TOKEN_PLACEHOLDER}`);
  return [
    `string to sign (SHA-256 of its UTF-8 bytes; the secret is appended at the end):`,
    shown,
    ``,
    `sig: ${signed.sig}`,
    `timestamp: ${timestampSec}`,
    ...notes,
    ``,
  ].join('\n');
}

/** A merchant's stored record, read-only (a gateway may be running on the same file). */
async function storedRecord(config: Config, name: string, merchant: string) {
  const store = config.store.type === 'file' ? new FileStore({ path: config.store.path, readOnly: true }) : createStore(config.store);
  try {
    await store.open();
    const rec = await store.get(name, merchant);
    if (!rec) throw new Error(`no token is stored for merchant "${merchant}" of ${name}`);
    return rec;
  } finally {
    await store.close();
  }
}

export function jsonSyntaxMessage(err: unknown): string {
  if (err instanceof JsonSyntaxError) return `--body is not valid JSON: ${err.message}`;
  return err instanceof Error ? err.message : String(err);
}
