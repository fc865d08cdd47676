/**
 * KeySecure's configuration faults (docs/protocols.md 4.3): codes that no retry can cure, each
 * with the likely cause an operator has to fix. Never retried; logged with the cause.
 */
export const CONFIG_FAULTS: Readonly<Record<number, string>> = {
  1003: "this host's egress IP is not on the Api-Key's whitelist",
  1008: 'the configured apiKey does not exist upstream',
  1010: 'the Api-Key is not enabled upstream',
  1011: 'the Api-Key has expired upstream',
  1012: "the merchant's integration mode does not support this call",
};
