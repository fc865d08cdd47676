/** KeySecure response codes the simulator answers (docs/protocols.md 2.4), with EN and zh_CN text. */
export const KEYSECURE_CODES = {
  OK: 0,
  SYSTEM_ERROR: 1001,
  API_KEY_REQUIRED: 1002,
  IP_NOT_ALLOWED: 1003,
  INVALID_PARAMETER: 1004,
  TIMESTAMP_INVALID: 1005,
  ACCESS_TOKEN_REQUIRED: 1006,
  ACCESS_TOKEN_INVALID: 1007,
  API_KEY_UNKNOWN: 1008,
  TOO_FREQUENT: 1009,
} as const;

const EN: Record<number, string> = {
  0: 'Success',
  1001: 'System error, please try again later',
  1002: 'Api-Key is required',
  1003: 'IP address not allowed',
  1004: 'Invalid request parameter',
  1005: 'Timestamp invalid or expired',
  1006: 'Access-Token is required',
  1007: 'Access-Token invalid or expired',
  1008: 'Api-Key does not exist',
  1009: 'Operation too frequent, please try again later',
};

const ZH: Record<number, string> = {
  0: '成功',
  1001: '系统错误，请稍后重试',
  1002: 'Api-Key不能为空',
  1003: 'IP地址不允许访问',
  1004: '请求参数无效',
  1005: '时间戳无效或已过期',
  1006: 'Access-Token不能为空',
  1007: 'Access-Token无效或已过期',
  1008: 'Api-Key不存在',
  1009: '操作过于频繁，请稍后重试',
};

export type KeySecureLanguage = 'en_US' | 'zh_CN';

/** `Language: zh_CN` selects Chinese; absent or anything else gives English. */
export function languageOf(header: string | undefined): KeySecureLanguage {
  return header?.trim() === 'zh_CN' ? 'zh_CN' : 'en_US';
}

export function keySecureMessage(code: number, language: KeySecureLanguage): string {
  const table = language === 'zh_CN' ? ZH : EN;
  return table[code] ?? EN[code] ?? `Error ${code}`;
}

/** Thrown inside request handling; becomes `{code, msg}`. `field` is put before the message (1004). */
export class KeySecureSimError extends Error {
  constructor(
    readonly code: number,
    readonly field?: string,
    detail?: string,
  ) {
    super(detail ?? `code ${code}`);
    this.name = 'KeySecureSimError';
  }
}
