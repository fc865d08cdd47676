/** Local upstream simulators (Keeta, KeySecure). Nothing here imports from src/ outside src/sim/. */
export { startKeetaSim } from './keeta/server.js';
export type { AddMerchantInput, KeetaControl, KeetaSim, KeetaSimCounters, KeetaSimOptions } from './keeta/server.js';
export { KEETA_SIM_CODES, KEETA_SIM_MESSAGES } from './keeta/codes.js';
export type { KeetaSimCodeName } from './keeta/codes.js';
export type { IssuedPair, KeetaMerchantView } from './keeta/tokens.js';
export type { TokenResponseShape } from './keeta/state.js';
export { keetaJoinedParams, keetaPreHash, keetaSign, keetaSignText } from './keeta/signature.js';
export { startKeySecureSim } from './keysecure/server.js';
export type { KeySecureControl, KeySecureSim, KeySecureSimCounters, KeySecureSimOptions } from './keysecure/server.js';
export { KEYSECURE_CODES } from './keysecure/codes.js';
export type { FailNextOptions, RecordedRequest } from './control.js';
export { runSimCli, SimUsageError, SIM_DEFAULTS, SIM_USAGE } from './cli.js';
