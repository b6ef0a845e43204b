/**
 * The link wire format: one binary WebSocket message is one frame.
 *
 *   [type u8][streamId u32 BE][payload …]
 *
 *   OPEN    0x01  relay→host  payload: UTF-8 JSON OpenMeta (≤ 16 KiB)
 *   ACCEPT  0x02  host→relay  payload: UTF-8 JSON AcceptInfo (≤ 16 KiB)
 *   DATA    0x03  both        payload: [flags u8][bytes]; flags bit0 = binary, bit1 = FIN
 *                             (last chunk of a message). Messages are split into chunks
 *                             and reassembled; boundaries are kept.
 *   CLOSE   0x04  both        payload: [code u16 BE][reason UTF-8 ≤ 123 bytes]
 *   CREDIT  0x05  both        payload: [bytes u32 BE]: the sender may send that many more
 *                             DATA payload bytes on the stream
 *   PING    0x06  both        streamId 0, payload 8 opaque bytes
 *   PONG    0x07  both        streamId 0, payload: the PING's 8 bytes
 *   CONTROL 0x08  both        streamId 0, payload: UTF-8 JSON object (≤ 64 KiB)
 *
 * Stream ids are allocated by the relay, never 0, never reused while open.
 * Every decode validates lengths, ids, UTF-8 and JSON shapes; anything else
 * is a LoopgateError(LINK_PROTOCOL) and the link is closed with 1002 — except
 * an OPEN whose frame header is sound but whose request is not (bad JSON,
 * path, query, method, headers): that is a BadOpenError naming the stream,
 * and the host refuses that one stream (CLOSE 1008), never the link.
 */
import { LoopgateError, ErrorCodes } from "../errors.ts";
import { clampCloseReason, MAX_CLOSE_REASON_BYTES, sendableCloseCode } from "../close.ts";

export const FrameType = { OPEN: 1, ACCEPT: 2, DATA: 3, CLOSE: 4, CREDIT: 5, PING: 6, PONG: 7, CONTROL: 8 } as const;
export type FrameTypeValue = (typeof FrameType)[keyof typeof FrameType];

export const DataFlags = { BINARY: 1, FIN: 2 } as const;

export const HEADER_BYTES = 5;
/** Largest DATA chunk payload; keeps every frame well under Workers' message limits. */
export const MAX_CHUNK_BYTES = 256 * 1024;
export const MAX_FRAME_BYTES = HEADER_BYTES + 1 + MAX_CHUNK_BYTES;
export const MAX_META_BYTES = 16 * 1024;
export const MAX_CONTROL_BYTES = 64 * 1024;
export const MAX_REASON_BYTES = MAX_CLOSE_REASON_BYTES;

/** Bounds on what an OPEN may ask of the host; the relay refuses requests past them (414/405/431) before forwarding. */
export const MAX_OPEN_PATH_BYTES = 4096;
export const MAX_OPEN_QUERY_BYTES = 8192;
export const MAX_OPEN_HEADER_VALUE_BYTES = 4096;
export const MAX_OPEN_HEADERS = 64;
/** The only methods forwarded to a host. */
export const OPEN_METHODS: readonly string[] = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];
/** The close code a host answers a refused OPEN with. */
export const BAD_OPEN_CLOSE_CODE = 1008;

/** Characters a forwarded path or query may hold: printable ASCII (a URL the relay has already percent-encoded), no space, no '#'. */
const URL_PART = /^[!-"$-~]*$/;
/** A header value Node and Workers both accept: tab, printable ASCII, and bytes 0x80–0xff (no controls). */
const HEADER_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;
/** An HTTP token (RFC 9110): header names, subprotocols. */
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/** An OPEN with a sound frame header but a request the host will not run: refuse the stream, keep the link. */
export class BadOpenError extends LoopgateError {
  readonly streamId: number;
  constructor(streamId: number, message: string) {
    super(ErrorCodes.LINK_PROTOCOL, message, { details: { streamId } });
    this.name = "BadOpenError";
    this.streamId = streamId;
  }
}

export interface OpenMeta {
  kind: "ws" | "http";
  /** Path on the gateway, starting with "/". */
  path: string;
  query?: string;
  method?: string;
  headers: Record<string, string>;
  /** The client address the relay saw. */
  clientAddr: string;
  protocols?: string[];
  tokenId?: string;
  scopes?: string[];
}

export interface AcceptInfo {
  protocol?: string;
  status?: number;
  headers?: Record<string, string>;
}

export type LinkFrame =
  | { type: typeof FrameType.OPEN; streamId: number; meta: OpenMeta }
  | { type: typeof FrameType.ACCEPT; streamId: number; info: AcceptInfo }
  | { type: typeof FrameType.DATA; streamId: number; binary: boolean; fin: boolean; data: Uint8Array }
  | { type: typeof FrameType.CLOSE; streamId: number; code: number; reason: string }
  | { type: typeof FrameType.CREDIT; streamId: number; bytes: number }
  | { type: typeof FrameType.PING; streamId: 0; nonce: Uint8Array }
  | { type: typeof FrameType.PONG; streamId: 0; nonce: Uint8Array }
  | { type: typeof FrameType.CONTROL; streamId: 0; message: Record<string, unknown> };

const enc = new TextEncoder();
const dec = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false });

function fail(message: string): never {
  throw new LoopgateError(ErrorCodes.LINK_PROTOCOL, `link frame: ${message}`);
}

/**
 * Where frames are allocated. Web APIs only give zero-filled memory; a
 * runtime with a faster allocator (Node's Buffer.allocUnsafe: every byte of
 * a frame is written before it is sent) installs it with useFrameAllocator.
 */
let allocate: (bytes: number) => Uint8Array = (n) => new Uint8Array(n);

export function useFrameAllocator(fn: (bytes: number) => Uint8Array): void {
  allocate = fn;
}

function frame(type: number, streamId: number, payloadLength: number): Uint8Array {
  const buf = allocate(HEADER_BYTES + payloadLength);
  buf[0] = type;
  buf[1] = streamId >>> 24;
  buf[2] = (streamId >>> 16) & 0xff;
  buf[3] = (streamId >>> 8) & 0xff;
  buf[4] = streamId & 0xff;
  return buf;
}

function jsonFrame(type: number, streamId: number, value: unknown, max: number): Uint8Array {
  const body = enc.encode(JSON.stringify(value));
  if (body.length > max) fail(`JSON payload of ${body.length} bytes exceeds ${max}`);
  const buf = frame(type, streamId, body.length);
  buf.set(body, HEADER_BYTES);
  return buf;
}

function checkStreamId(id: number): void {
  if (!Number.isInteger(id) || id < 1 || id > 0xffffffff) fail(`stream id ${id} out of range`);
}

export function encodeOpen(streamId: number, meta: OpenMeta): Uint8Array {
  checkStreamId(streamId);
  return jsonFrame(FrameType.OPEN, streamId, meta, MAX_META_BYTES);
}

export function encodeAccept(streamId: number, info: AcceptInfo): Uint8Array {
  checkStreamId(streamId);
  return jsonFrame(FrameType.ACCEPT, streamId, info, MAX_META_BYTES);
}

/** A DATA frame with room for `room` payload bytes after its flags, checked and headed; the payload is the caller's to write. */
function dataFrame(streamId: number, payloadLength: number, binary: boolean, fin: boolean, room: number): Uint8Array {
  checkStreamId(streamId);
  if (payloadLength > MAX_CHUNK_BYTES) fail(`DATA chunk of ${payloadLength} bytes exceeds ${MAX_CHUNK_BYTES}`);
  const buf = frame(FrameType.DATA, streamId, 1 + room);
  buf[HEADER_BYTES] = (binary ? DataFlags.BINARY : 0) | (fin ? DataFlags.FIN : 0);
  return buf;
}

export function encodeData(streamId: number, data: Uint8Array, binary: boolean, fin: boolean): Uint8Array {
  const buf = dataFrame(streamId, data.length, binary, fin, data.length);
  buf.set(data, HEADER_BYTES + 1);
  return buf;
}

/** Bytes before a DATA frame's payload: the frame header and the flags byte. */
export const DATA_HEAD_BYTES = HEADER_BYTES + 1;

/**
 * A DATA frame's first DATA_HEAD_BYTES bytes, for a transport that writes
 * them and the payload as one message without joining them (the frame is
 * this head followed by `payloadLength` bytes of payload).
 */
export function encodeDataHead(streamId: number, payloadLength: number, binary: boolean, fin: boolean): Uint8Array {
  return dataFrame(streamId, payloadLength, binary, fin, 0);
}

export function encodeClose(streamId: number, code: number, reason: string): Uint8Array {
  checkStreamId(streamId);
  const r = enc.encode(clampCloseReason(reason));
  const buf = frame(FrameType.CLOSE, streamId, 2 + r.length);
  const wire = sendableCloseCode(code);
  buf[HEADER_BYTES] = wire >>> 8;
  buf[HEADER_BYTES + 1] = wire & 0xff;
  buf.set(r, HEADER_BYTES + 2);
  return buf;
}

export function encodeCredit(streamId: number, bytes: number): Uint8Array {
  checkStreamId(streamId);
  if (!Number.isInteger(bytes) || bytes < 1 || bytes > 0xffffffff) fail(`credit ${bytes} out of range`);
  const buf = frame(FrameType.CREDIT, streamId, 4);
  buf[HEADER_BYTES] = bytes >>> 24;
  buf[HEADER_BYTES + 1] = (bytes >>> 16) & 0xff;
  buf[HEADER_BYTES + 2] = (bytes >>> 8) & 0xff;
  buf[HEADER_BYTES + 3] = bytes & 0xff;
  return buf;
}

export function encodePing(nonce: Uint8Array, pong = false): Uint8Array {
  if (nonce.length !== 8) fail("ping nonce must be 8 bytes");
  const buf = frame(pong ? FrameType.PONG : FrameType.PING, 0, 8);
  buf.set(nonce, HEADER_BYTES);
  return buf;
}

export function encodeControl(message: Record<string, unknown>): Uint8Array {
  return jsonFrame(FrameType.CONTROL, 0, message, MAX_CONTROL_BYTES);
}

function parseJson(bytes: Uint8Array, max: number, what: string): Record<string, unknown> {
  if (bytes.length > max) fail(`${what} of ${bytes.length} bytes exceeds ${max}`);
  let text: string;
  try {
    text = dec.decode(bytes);
  } catch {
    fail(`${what} is not valid UTF-8`);
  }
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    fail(`${what} is not valid JSON`);
  }
  if (v === null || typeof v !== "object" || Array.isArray(v)) fail(`${what} must be a JSON object`);
  return v as Record<string, unknown>;
}

const isStr = (v: unknown, max = 8192): v is string => typeof v === "string" && v.length <= max;

function stringMap(v: unknown, what: string, maxEntries = 100, maxValue = 8192): Record<string, string> {
  if (v === null || typeof v !== "object" || Array.isArray(v)) fail(`${what} must be an object of strings`);
  const entries = Object.entries(v as Record<string, unknown>);
  if (entries.length > maxEntries) fail(`${what} has more than ${maxEntries} entries`);
  const out: Record<string, string> = Object.create(null) as Record<string, string>;
  for (const [k, val] of entries) {
    if (!isStr(k, 256) || !TOKEN.test(k) || !isStr(val, maxValue) || !HEADER_VALUE.test(val))
      fail(`${what} has an invalid entry`);
    out[k.toLowerCase()] = val;
  }
  return { ...out };
}

/**
 * Checks an OPEN's request: what the host may safely turn into a local
 * WebSocket or HTTP request. The relay runs it before sending (it never
 * forwards what a host would refuse); the host runs it on receipt.
 */
export function validateOpenMeta(v: Record<string, unknown>): OpenMeta {
  if (v.kind !== "ws" && v.kind !== "http") fail("OPEN kind must be ws or http");
  if (typeof v.path !== "string" || !v.path.startsWith("/")) fail("OPEN path must start with /");
  if (v.path.length > MAX_OPEN_PATH_BYTES) fail(`OPEN path longer than ${MAX_OPEN_PATH_BYTES} bytes`);
  if (!URL_PART.test(v.path)) fail("OPEN path has characters a URL path may not");
  if (v.query !== undefined && typeof v.query !== "string") fail("OPEN query must be a string");
  if (typeof v.query === "string" && v.query.length > MAX_OPEN_QUERY_BYTES)
    fail(`OPEN query longer than ${MAX_OPEN_QUERY_BYTES} bytes`);
  if (typeof v.query === "string" && !URL_PART.test(v.query)) fail("OPEN query has characters a URL query may not");
  if (v.method !== undefined && (typeof v.method !== "string" || !OPEN_METHODS.includes(v.method)))
    fail("OPEN method is not allowed");
  if (v.kind === "ws" && v.method !== undefined && v.method !== "GET") fail("OPEN method of a WebSocket must be GET");
  if (!isStr(v.clientAddr, 128)) fail("OPEN clientAddr must be a string");
  if (
    v.protocols !== undefined &&
    (!Array.isArray(v.protocols) ||
      v.protocols.length > 16 ||
      !v.protocols.every((p) => isStr(p, 256) && TOKEN.test(p)) ||
      new Set(v.protocols).size !== v.protocols.length)
  )
    fail("OPEN protocols invalid");
  if (v.tokenId !== undefined && !isStr(v.tokenId, 256)) fail("OPEN tokenId invalid");
  if (
    v.scopes !== undefined &&
    (!Array.isArray(v.scopes) || v.scopes.length > 64 || !v.scopes.every((p) => isStr(p, 128)))
  )
    fail("OPEN scopes invalid");
  return {
    kind: v.kind,
    path: v.path,
    ...(v.query !== undefined ? { query: v.query as string } : {}),
    ...(v.method !== undefined ? { method: v.method as string } : {}),
    headers: stringMap(v.headers ?? {}, "OPEN headers", MAX_OPEN_HEADERS, MAX_OPEN_HEADER_VALUE_BYTES),
    clientAddr: v.clientAddr,
    ...(v.protocols !== undefined ? { protocols: v.protocols as string[] } : {}),
    ...(v.tokenId !== undefined ? { tokenId: v.tokenId as string } : {}),
    ...(v.scopes !== undefined ? { scopes: v.scopes as string[] } : {}),
  };
}

function validateAccept(v: Record<string, unknown>): AcceptInfo {
  if (v.protocol !== undefined && !isStr(v.protocol, 256)) fail("ACCEPT protocol invalid");
  if (
    v.status !== undefined &&
    (typeof v.status !== "number" || !Number.isInteger(v.status) || v.status < 100 || v.status > 599)
  )
    fail("ACCEPT status invalid");
  return {
    ...(v.protocol !== undefined ? { protocol: v.protocol as string } : {}),
    ...(v.status !== undefined ? { status: v.status as number } : {}),
    ...(v.headers !== undefined ? { headers: stringMap(v.headers, "ACCEPT headers") } : {}),
  };
}

function u32(b: Uint8Array, at: number): number {
  return (
    (((b[at] as number) << 24) |
      ((b[at + 1] as number) << 16) |
      ((b[at + 2] as number) << 8) |
      (b[at + 3] as number)) >>>
    0
  );
}

/** Decodes and validates one frame. Throws LoopgateError(LINK_PROTOCOL) on anything malformed. */
export function decodeFrame(bytes: Uint8Array): LinkFrame {
  if (bytes.length < HEADER_BYTES) fail(`truncated: ${bytes.length} bytes`);
  if (bytes.length > MAX_FRAME_BYTES && bytes[0] !== FrameType.CONTROL && bytes[0] !== FrameType.OPEN)
    fail(`frame of ${bytes.length} bytes exceeds ${MAX_FRAME_BYTES}`);
  const type = bytes[0] as number;
  const streamId = u32(bytes, 1);
  // DATA first, and without closures or views: it is nearly every frame.
  if (type === FrameType.DATA) {
    if (streamId === 0) fail(`type ${type} needs a stream id`);
    if (bytes.length < HEADER_BYTES + 1) fail("DATA without flags");
    const flags = bytes[HEADER_BYTES] as number;
    if (flags & ~3) fail(`DATA has unknown flags ${flags}`);
    return {
      type,
      streamId,
      binary: (flags & DataFlags.BINARY) !== 0,
      fin: (flags & DataFlags.FIN) !== 0,
      data: bytes.subarray(HEADER_BYTES + 1),
    };
  }
  const payload = bytes.subarray(HEADER_BYTES);
  const needStream = () => {
    if (streamId === 0) fail(`type ${type} needs a stream id`);
  };
  const noStream = () => {
    if (streamId !== 0) fail(`type ${type} must use stream 0`);
  };
  switch (type) {
    case FrameType.OPEN:
      needStream();
      try {
        return { type, streamId, meta: validateOpenMeta(parseJson(payload, MAX_META_BYTES, "OPEN meta")) };
      } catch (e) {
        // The frame header is sound: the request is what is bad. Only that stream fails.
        throw new BadOpenError(streamId, e instanceof Error ? e.message : String(e));
      }
    case FrameType.ACCEPT:
      needStream();
      return { type, streamId, info: validateAccept(parseJson(payload, MAX_META_BYTES, "ACCEPT info")) };
    case FrameType.CLOSE: {
      needStream();
      if (payload.length < 2) fail("CLOSE without a code");
      if (payload.length > 2 + MAX_REASON_BYTES) fail("CLOSE reason too long");
      const code = ((bytes[HEADER_BYTES] as number) << 8) | (bytes[HEADER_BYTES + 1] as number);
      if (sendableCloseCode(code) !== code) fail(`CLOSE code ${code} is not allowed on the wire`);
      let reason: string;
      try {
        reason = dec.decode(payload.subarray(2));
      } catch {
        fail("CLOSE reason is not valid UTF-8");
      }
      return { type, streamId, code, reason };
    }
    case FrameType.CREDIT: {
      needStream();
      if (payload.length !== 4) fail("CREDIT must carry 4 bytes");
      const n = u32(bytes, HEADER_BYTES);
      if (n === 0) fail("CREDIT of 0");
      return { type, streamId, bytes: n };
    }
    case FrameType.PING:
    case FrameType.PONG:
      noStream();
      if (payload.length !== 8) fail("PING/PONG must carry 8 bytes");
      return { type, streamId: 0, nonce: payload.slice() };
    case FrameType.CONTROL:
      noStream();
      return { type, streamId: 0, message: parseJson(payload, MAX_CONTROL_BYTES, "CONTROL message") };
    default:
      fail(`unknown frame type ${type}`);
  }
}
