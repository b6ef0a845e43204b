/**
 * Credentials out of every URL loopgate prints (messages, `status`, logs):
 * userinfo (`user:pass@`), query and fragment parameters whose names say
 * they carry a secret (`?token=`, `#token=`, `access_token`, `password`,
 * `api_key`, `sig`, …), and anything shaped like a JWT anywhere in it.
 * Works on strings that do not parse as URLs too, since those are exactly
 * the ones echoed in "not a valid URL" errors. Pure; runs on Workers too.
 */
export const REDACTED = "***";

const JWT_SHAPE = /eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*/g;
const SECRET_NAME =
  /token|secret|passw|pwd|^pass$|api[-_]?key|^key$|^auth|^sig$|^signature$|^jwt$|^code$|credential|session|^bearer$/i;

function decodeName(name: string): string {
  try {
    return decodeURIComponent(name.replace(/\+/g, " "));
  } catch {
    return name;
  }
}

/** True for a query/fragment parameter name that carries a secret. */
export function isSecretParam(name: string): boolean {
  return SECRET_NAME.test(decodeName(name).trim());
}

/** The URL with its credentials replaced by ***; anything else is kept as written. */
export function redactUrl(raw: string): string {
  let s = raw;
  const scheme = s.indexOf("://");
  if (scheme >= 0) {
    const start = scheme + 3;
    const rest = s.slice(start);
    const end = rest.search(/[/?#\\]/);
    const authority = end < 0 ? rest : rest.slice(0, end);
    const at = authority.lastIndexOf("@");
    if (at >= 0) s = s.slice(0, start) + REDACTED + authority.slice(at) + rest.slice(authority.length);
  }
  s = s.replace(/([?&#;])([^=&#?;]*)=([^&#;]*)/g, (m, sep: string, name: string) =>
    isSecretParam(name) ? `${sep}${name}=${REDACTED}` : m,
  );
  return s.replace(JWT_SHAPE, REDACTED);
}

const URL_IN_TEXT = /\b[a-z][a-z0-9+.-]*:\/\/[^\s"'<>`]+/gi;

/** Redacts every scheme://… URL inside free text (log lines, error messages). */
export function redactUrlsInText(text: string): string {
  return text.replace(URL_IN_TEXT, (u) => redactUrl(u));
}
