/**
 * What a WebSocket close may carry, in one place: the code a peer may send
 * and a reason within the protocol's 123 UTF-8 bytes. The link codec, the
 * relay's hub and adapters, and the gateway all close sockets with codes and
 * reasons that came from elsewhere (a peer, a stream, an error message).
 */

/** The longest close reason, in UTF-8 bytes (RFC 6455 §5.5: 125-byte control payload less the 2-byte code). */
export const MAX_CLOSE_REASON_BYTES = 123;

const enc = new TextEncoder();

/**
 * A close code that may be sent: 1000-1003, 1007-1014 and 3000-4999 pass;
 * 1005 (no status) becomes 1000; 1006 (abnormal), 1015 (TLS), 1004 and
 * anything else out of range become 1011.
 */
export function sendableCloseCode(code: number): number {
  if (
    code === 1000 ||
    (code >= 1001 && code <= 1014 && code !== 1004 && code !== 1005 && code !== 1006) ||
    (code >= 3000 && code <= 4999)
  )
    return code;
  return code === 1005 ? 1000 : 1011;
}

/** The reason cut to at most 123 UTF-8 bytes, never in the middle of a character. */
export function clampCloseReason(reason: string): string {
  if (reason.length * 3 <= MAX_CLOSE_REASON_BYTES) return reason;
  const bytes = enc.encode(reason);
  if (bytes.length <= MAX_CLOSE_REASON_BYTES) return reason;
  let end = MAX_CLOSE_REASON_BYTES;
  // Back up to the first byte of a character (continuation bytes are 10xxxxxx).
  while (end > 0 && (bytes[end]! & 0xc0) === 0x80) end--;
  return new TextDecoder().decode(bytes.subarray(0, end));
}

/** Code and reason as a socket may send them. */
export function sendableClose(code: number, reason: string): { code: number; reason: string } {
  return { code: sendableCloseCode(code), reason: clampCloseReason(reason) };
}
