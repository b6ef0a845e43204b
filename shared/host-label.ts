/**
 * A host's DNS label: the name of its own browser origin on a relay,
 * `https://<label>.<relay host>/`. Host ids are case-sensitive base64url
 * (43 characters, the 32 bytes of a JWK thumbprint); DNS names are not. The
 * label is the same 32 bytes in lowercase RFC 4648 base32 without padding:
 * 52 characters of [a-z2-7] (under the 63-character label limit, no hyphen,
 * so never an `xn--` name). Both directions accept only the canonical form,
 * so one host has exactly one label and one label names exactly one host.
 */

const B64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
const B32 = "abcdefghijklmnopqrstuvwxyz234567";

export const HOST_LABEL = /^[a-z2-7]{52}$/;
const HOST_ID_SHAPE = /^[A-Za-z0-9_-]{43}$/;

function decode(text: string, alphabet: string, bitsPerChar: number, bytes: number): Uint8Array | undefined {
  const out = new Uint8Array(bytes);
  let acc = 0;
  let bits = 0;
  let n = 0;
  for (const ch of text) {
    const v = alphabet.indexOf(ch);
    if (v < 0) return undefined;
    acc = (acc << bitsPerChar) | v;
    bits += bitsPerChar;
    if (bits >= 8) {
      bits -= 8;
      if (n >= bytes) return undefined;
      out[n++] = (acc >> bits) & 0xff;
    }
    acc &= (1 << bits) - 1;
  }
  // Leftover bits must be zero, or two spellings would name the same bytes.
  if (n !== bytes || acc !== 0) return undefined;
  return out;
}

function encode(data: Uint8Array, alphabet: string, bitsPerChar: number): string {
  let out = "";
  let acc = 0;
  let bits = 0;
  for (const b of data) {
    acc = (acc << 8) | b;
    bits += 8;
    while (bits >= bitsPerChar) {
      bits -= bitsPerChar;
      out += alphabet[(acc >> bits) & ((1 << bitsPerChar) - 1)];
    }
    acc &= (1 << bits) - 1;
  }
  if (bits > 0) out += alphabet[(acc << (bitsPerChar - bits)) & ((1 << bitsPerChar) - 1)];
  return out;
}

/** The DNS label of a host id, or undefined if the id is not a canonical 32-byte base64url id. */
export function hostLabel(hostId: string): string | undefined {
  if (!HOST_ID_SHAPE.test(hostId)) return undefined;
  const bytes = decode(hostId, B64URL, 6, 32);
  return bytes ? encode(bytes, B32, 5) : undefined;
}

/** The host id a label names, or undefined if it is not a canonical label. Case-insensitive, as DNS is. */
export function hostIdFromLabel(label: string): string | undefined {
  const l = label.toLowerCase();
  if (!HOST_LABEL.test(l)) return undefined;
  const bytes = decode(l, B32, 5, 32);
  return bytes ? encode(bytes, B64URL, 6) : undefined;
}

/**
 * `https://<label>.<relay host[:port]>` for a relay URL (wss:// or https://);
 * undefined when the relay is addressed by IP (an IP has no subdomains).
 */
export function hostOrigin(hostId: string, relayUrl: string): string | undefined {
  const label = hostLabel(hostId);
  const u = new URL(relayUrl);
  if (!label || /^[\d.]+$/.test(u.hostname) || u.hostname.startsWith("[")) return undefined;
  return `https://${label}.${u.host}`;
}
