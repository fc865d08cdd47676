import { readFileSync } from 'node:fs';

/**
 * What `countersign --help` and `countersign COMMAND --help` print. Each command's text explains
 * its own options; the general usage lists the commands.
 */
export const USAGE = `usage: countersign COMMAND [options]        (countersign COMMAND --help explains one command)

commands:
  serve --config FILE            run the gateway (the default command; COUNTERSIGN_CONFIG may name the file)
  check-config --config FILE     validate the config and print a summary (exit 0 or 2)
  sign --config FILE --upstream NAME --path /order/get[?a=b] [--body TEXT] [--merchant ID | --access-token T]
       [--timestamp SEC] [--method M]
                                 print the exact string that is hashed and the signature
  store rekey --config FILE      rewrite every token record with the first store.encryption key
  admin tokens|connect|refresh|forget|import ...
                                 the admin API from a shell
  sim keeta|keysecure [--port N] run a local simulator of an upstream

options:
  -h, --help                     show this help, or a command's own
  --version                      print the version`;

const SERVE = `usage: countersign [serve] --config FILE

Run the gateway: the proxy, admin and (when listen.ingress is set) ingress listeners.

options:
  --config FILE    the gateway config (YAML); COUNTERSIGN_CONFIG names it when --config is absent.
                   SIGHUP, or a change to the file or a secret file it names, reloads it.
  -h, --help       show this help`;

const CHECK_CONFIG = `usage: countersign check-config --config FILE

Validate a config as serve would (secret files read, environment variables resolved) and print a
summary with every secret left out. Exit 0 when valid, 2 with one line per problem otherwise.

options:
  --config FILE    the config to check; COUNTERSIGN_CONFIG names it when --config is absent
  -h, --help       show this help`;

const SIGN = `usage: countersign sign --config FILE --upstream NAME --path /order/get[?a=b] [--body TEXT]
                        [--merchant ID | --access-token T] [--timestamp SEC] [--method M]

Print the exact string a Keeta request is signed over (the app secret shown as <appSecret>, a
merchant's token as <accessToken>) and the signature the proxy would send. Nothing is sent.

options:
  --config FILE      the gateway config; COUNTERSIGN_CONFIG names it when --config is absent
  --upstream NAME    a Keeta upstream of the config. KeySecure upstreams have no request
                     signature (the proxy only sets headers), so there is nothing to print for them.
  --path PATH        the endpoint path below the upstream's baseUrl, with its leading slash
                     (e.g. /order/get)
  --body JSON        the request's JSON object as the caller sends it (default {})
  --merchant ID      read that merchant's access token from the configured token store (read only;
                     a running gateway may share it) and sign with it, as the proxy does on a
                     merchant path. Without it a merchant path is signed without the token.
                     Ignored on app-level paths.
  --access-token T   sign with this access token instead of reading one from the store
  --timestamp SEC    the Unix time in seconds to sign with (default now), to reproduce a request
  --method M         the request's HTTP method, for upstreams whose signature covers it
  -h, --help         show this help`;

const SIM = `usage: countersign sim keeta|keysecure [options]

Run a local simulator of an upstream until SIGINT or SIGTERM. It prints its base URL and the
credentials it accepts.

options (both):
  --port N                  port to listen on (default 0: any free port, printed at start)
  --host ADDR               address to listen on (default 127.0.0.1; 0.0.0.0 exposes it)
  --json                    print the start-up information as one JSON line instead of text
  -h, --help                show this help

keeta:
  --app-id ID               the appId the simulator accepts (digits; default 3340612437)
  --app-secret S            the app secret it verifies signatures with (default sim-keeta-app-secret)
  --merchant ID             the merchant seeded with a token pair (default demo-brand)
  --shops A,B               that merchant's shopIds (default 466663,9007199254740993)
  --redirect-uri URL        a redirect URI registered for the authorize page (repeatable)
  --demo-accounts           add merchant accounts to pick on the authorize page
  --oauth-delivery MODE     how an authorization reaches the gateway: redirect, event or both
  --event1-url URL          where OAuth authorization events are pushed
  --webhook-recipe R        how webhook signatures are computed: url-query, url-concat, sorted, query

keysecure:
  --api-key K               the API key it accepts (default sim-api-key)
  --api-secret S            the API secret it accepts (default sim-api-secret)
  --whitelist IP,IP         source addresses allowed to call it
  --callback-app-id ID      the appId of the callbacks it sends
  --callback-secret S       the secret those callbacks are signed with`;

const ADMIN = `usage: countersign admin COMMAND [options]

The admin API from a shell.

commands:
  tokens [--json]                            every upstream and merchant with state, expiry, last
                                             refresh and shop count (--json: the API's answer)
  connect UPSTREAM                           create a merchant authorization link (Keeta ingress)
  refresh UPSTREAM [MERCHANT]                renew now: a Keeta merchant, or a KeySecure upstream
  forget UPSTREAM MERCHANT                   delete a merchant's token pair
  import UPSTREAM MERCHANT --file PAIR.json  import a Keeta pair
                                             ({accessToken, refreshToken, expiresIn, issuedAtTime[, shopIds]})

options:
  --admin URL         the admin listener (default: listen.admin of --config FILE or
                      COUNTERSIGN_CONFIG when given, else http://127.0.0.1:9090)
  --config FILE       read the admin listener's address from this config
  --token-file FILE   a file holding the admin token; otherwise COUNTERSIGN_ADMIN_TOKEN is used.
                      Without either, no Authorization header is sent.
  --json              print the API's JSON answers as they are
  -h, --help          show this help`;

const STORE = `usage: countersign store rekey --config FILE

Rewrite every token record of the configured store with the first key of store.encryption
(after adding a key in front, or to encrypt records stored in plaintext). Exit 0 when every
record was rewritten, 1 when some could not be, 2 on bad usage or config.

options:
  --config FILE    the gateway config; COUNTERSIGN_CONFIG names it when --config is absent
  -h, --help       show this help`;

const HELP: Record<string, string> = {
  store: STORE,
  serve: SERVE,
  'check-config': CHECK_CONFIG,
  sign: SIGN,
  sim: SIM,
  admin: ADMIN,
};

/** The help of one command, or the general usage for none or an unknown one. */
export function helpFor(command: string | undefined): string {
  return (command !== undefined && HELP[command]) || USAGE;
}

/** The package's version, from its package.json (one level above src/ and dist/). */
export function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}
