// The QR seal checked in the browser, in the order signing/seal.py checks it, so that nothing an
// attacker wrote is interpreted before its signature is: digits -> bytes (bounded), inflate
// (capped), the COSE_Sign1 frame read by hand (only the exact frame we write), kid lookup, the
// ES256 signature with WebCrypto over the raw bytes, and only then the claims, with a decoder of
// plain CBOR that refuses every tag, float and indefinite length (signing/cbor_plain.py).
//
// One difference from the server: the server also refuses a seal whose DEFLATE stream is not the
// one zlib level 9 writes (one seal, one text). Browsers have no zlib to compare with; another
// DEFLATE of the same signed bytes is still the issuer's seal, so this page accepts it.

export const MAX_DIGITS = 3000;
export const MAX_INFLATED = 16 * 1024;
export const MAX_DEPTH = 8;
export const MAX_ITEMS = 1024;
export const PRIVATE_CLAIM = -65537;
const P256_HALF_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551n >> 1n;
const FRAME_START = [0xd2, 0x84];
const PROTECTED_PREFIX = [0xa2, 0x01, 0x26, 0x04, 0x48];  // {1: -7, 4: h'<8 bytes>'}
const KID_BYTES = 8;

export class SealError extends Error {
  constructor(reason, message) { super(message); this.reason = reason; }
}
const malformed = (message) => new SealError("malformed", message);

// The flag and the bytes after the sentinel of a seal text (the link or only its digits).
export function readTransport(text) {
  let digits = String(text).trim();
  if (digits.includes("#")) digits = digits.slice(digits.indexOf("#") + 1);
  if (digits.length > MAX_DIGITS) {
    throw new SealError("too_large", `${digits.length} digits, at most ${MAX_DIGITS} accepted`);
  }
  if (!/^[0-9]{2,}$/.test(digits)) throw malformed("the seal must be a flag digit and digits");
  const flag = digits[0];
  const number = digits.slice(1);
  if ((flag !== "0" && flag !== "1") || number[0] === "0") {
    throw malformed("unknown flag digit or non-canonical number");
  }
  let hex = BigInt(number).toString(16);
  if (hex.length % 2) hex = "0" + hex;
  const raw = new Uint8Array(hex.length / 2);
  for (let i = 0; i < raw.length; i++) raw[i] = parseInt(hex.substr(2 * i, 2), 16);
  if (raw[0] !== 0x01) throw malformed("the sentinel byte is missing");
  return {compressed: flag === "1", body: raw.subarray(1)};
}

// Raw DEFLATE, cut off past MAX_INFLATED bytes (a bomb never inflates further).
export async function inflate(data, format = "deflate-raw", limit = MAX_INFLATED) {
  const reader = new Blob([data]).stream().pipeThrough(new DecompressionStream(format))
    .getReader();
  const parts = [];
  let total = 0;
  try {
    for (;;) {
      const {done, value} = await reader.read();
      if (done) break;
      total += value.length;
      if (total > limit) {
        reader.cancel().catch(() => {});
        throw new SealError("too_large", `inflates beyond ${limit} bytes`);
      }
      parts.push(value);
    }
  } catch (e) {
    if (e instanceof SealError) throw e;
    throw malformed(`invalid compressed data: ${e.message}`);
  }
  const out = new Uint8Array(total);
  let at = 0;
  for (const part of parts) { out.set(part, at); at += part.length; }
  return out;
}

// One definite, shortest-form CBOR head at `pos`: [major, argument, position after it].
function readHead(data, pos) {
  if (pos >= data.length) throw malformed("truncated CBOR: a head is missing");
  const major = data[pos] >> 5;
  const info = data[pos] & 0x1f;
  if (major === 6) throw malformed("CBOR tags are not accepted");
  if (major === 7) {
    if (info < 20 || info > 22) {
      throw malformed("only the simple values false, true and null are accepted");
    }
    return [major, info, pos + 1];
  }
  if (info < 24) return [major, info, pos + 1];
  if (info > 27) throw malformed("indefinite lengths and reserved heads are not accepted");
  const size = 1 << (info - 24);
  if (pos + 1 + size > data.length) throw malformed("truncated CBOR: an argument is cut off");
  let argument = 0n;
  for (let i = 1; i <= size; i++) argument = (argument << 8n) | BigInt(data[pos + i]);
  const shortest = [24n, 256n, 65536n, 4294967296n][info - 24];
  if (argument < shortest) throw malformed("a CBOR head is not in its shortest form");
  const small = argument <= BigInt(Number.MAX_SAFE_INTEGER);
  return [major, small ? Number(argument) : argument, pos + 1 + size];
}

function readByteString(data, pos) {
  const [major, length, start] = readHead(data, pos);
  if (major !== 2) throw malformed("a byte string was expected");
  if (typeof length !== "number" || length > data.length - start) {
    throw malformed("truncated CBOR: a byte string is cut off");
  }
  return [data.subarray(start, start + length), start + length];
}

// The COSE_Sign1 frame exactly as signing/cose.py writes it; nothing inside is interpreted.
export function decodeFrame(cose) {
  if (cose[0] !== FRAME_START[0] || cose[1] !== FRAME_START[1]) {
    throw malformed("not a tagged COSE_Sign1 array of four items");
  }
  const [prot, afterProtected] = readByteString(cose, 2);
  if (prot.length !== PROTECTED_PREFIX.length + KID_BYTES ||
      PROTECTED_PREFIX.some((b, i) => prot[i] !== b)) {
    throw malformed("the protected header must be exactly {1: -7, 4: kid}");
  }
  if (cose[afterProtected] !== 0xa0) throw malformed("the unprotected header must be empty");
  const [payload, afterPayload] = readByteString(cose, afterProtected + 1);
  const [signature, end] = readByteString(cose, afterPayload);
  if (signature.length !== 64) throw malformed("an ES256 signature is 64 bytes");
  if (end !== cose.length) throw malformed("trailing bytes after the COSE_Sign1");
  return {kid: hex(prot.subarray(PROTECTED_PREFIX.length)), protected: prot, payload, signature};
}

function byteStringHead(length) {
  if (length < 24) return [0x40 | length];
  if (length < 256) return [0x58, length];
  return [0x59, length >> 8, length & 0xff];  // payloads are at most 16 KiB
}

// Sig_structure = ["Signature1", protected, h'', payload] (RFC 9052 4.4), as CBOR.
function toBeSigned(message) {
  const context = new TextEncoder().encode("Signature1");
  return new Uint8Array([0x84, 0x60 | context.length, ...context,
                         ...byteStringHead(message.protected.length), ...message.protected, 0x40,
                         ...byteStringHead(message.payload.length), ...message.payload]);
}

// Plain CBOR only (signing/cbor_plain.py): integers, byte and text strings, arrays, maps with
// integer or text keys (as Map), false/true/null. Anything else is refused.
export function loadsPlain(data) {
  if (data.length > 16 * 1024) throw new SealError("too_large", "CBOR over 16384 bytes");
  const text = new TextDecoder("utf-8", {fatal: true});
  let items = 0;
  function item(pos, depth) {
    if (++items > MAX_ITEMS) throw malformed(`more than ${MAX_ITEMS} CBOR items`);
    const [major, argument, start] = readHead(data, pos);
    if (major === 0) return [argument, start];
    if (major === 1) {
      return [typeof argument === "number" && argument < Number.MAX_SAFE_INTEGER
        ? -1 - argument : -1n - BigInt(argument), start];
    }
    if (major === 7) return [{20: false, 21: true, 22: null}[argument], start];
    if (typeof argument !== "number" || argument > data.length - start) {
      throw malformed("truncated CBOR: a declared length runs past the data");
    }
    if (major === 2) return [data.slice(start, start + argument), start + argument];
    if (major === 3) {
      try {
        return [text.decode(data.subarray(start, start + argument)), start + argument];
      } catch {
        throw malformed("text is not valid UTF-8");
      }
    }
    if (depth >= MAX_DEPTH) throw malformed(`nesting deeper than ${MAX_DEPTH}`);
    let at = start;
    if (major === 4) {
      const list = [];
      for (let i = 0; i < argument; i++) {
        const [value, next] = item(at, depth + 1);
        list.push(value);
        at = next;
      }
      return [list, at];
    }
    const map = new Map();
    for (let i = 0; i < argument; i++) {
      const keyMajor = data[at] >> 5;
      if (keyMajor > 1 && keyMajor !== 3) throw malformed("map keys must be integers or text");
      const [key, afterKey] = item(at, depth + 1);
      if (map.has(key)) throw malformed("duplicate map key");
      const [value, afterValue] = item(afterKey, depth + 1);
      map.set(key, value);
      at = afterValue;
    }
    return [map, at];
  }
  const [value, end] = item(0, 0);
  if (end !== data.length) throw malformed("trailing bytes after the CBOR item");
  return value;
}

export function hex(bytes) {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

// A trust list entry for the browser: {kid, key (CryptoKey), from, until (ms since epoch)}.
export async function sealEntry(certificate, from, until) {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", certificate.der));
  const key = await crypto.subtle.importKey("spki", certificate.spki,
                                            {name: "ECDSA", namedCurve: "P-256"}, false,
                                            ["verify"]);
  return {kid: hex(digest.subarray(0, KID_BYTES)), key, from, until, certificate};
}

// The verdict on seal `text` against `entries`: {ok, reason, kid, claims (Map)}. Never throws
// for anything a seal can hold; reasons are those of signing/seal.py.
export async function verifySeal(text, entries) {
  let message;
  try {
    const {compressed, body} = readTransport(text);
    message = decodeFrame(compressed ? await inflate(body) : body);
  } catch (e) {
    if (e instanceof SealError) return {ok: false, reason: e.reason, detail: e.message};
    throw e;
  }
  const candidates = entries.filter((entry) => entry.kid === message.kid);
  if (!candidates.length) return {ok: false, reason: "unknown_kid", kid: message.kid};
  const s = BigInt("0x" + hex(message.signature.subarray(32)));
  let signer = null;
  if (s <= P256_HALF_ORDER) {  // we only write low-S signatures; the high-S twin is a 2nd form
    for (const entry of candidates) {
      if (await crypto.subtle.verify({name: "ECDSA", hash: "SHA-256"}, entry.key,
                                     message.signature, toBeSigned(message))) {
        signer = entry;
        break;
      }
    }
  }
  if (!signer) return {ok: false, reason: "bad_signature", kid: message.kid};
  let claims;
  try {
    claims = loadsPlain(message.payload);
    if (!(claims instanceof Map) || [...claims.keys()].some((k) => typeof k !== "number")) {
      throw malformed("the payload must be a CBOR map with integer keys");
    }
  } catch (e) {
    if (e instanceof SealError) return {ok: false, reason: e.reason, kid: message.kid};
    throw e;
  }
  const iat = claims.get(6);
  if (typeof iat !== "number" || !Number.isInteger(iat) ||
      iat * 1000 < signer.from || iat * 1000 > signer.until) {
    return {ok: false, reason: "outside_window", kid: message.kid};
  }
  return {ok: true, reason: null, kid: message.kid, claims, signer};
}

// A name as the seal carries it: text, or Marathi packed one byte per letter
// (issuer.seal_fields.py): 0x80 + (code point - U+0900) for the Devanagari block, printable ASCII
// as itself, 0x01 and 0x02 for ZWNJ and ZWJ.
export function unpackName(value) {
  if (typeof value === "string") return value;
  if (!(value instanceof Uint8Array)) return null;
  let text = "";
  for (const byte of value) {
    if (byte >= 0x80) text += String.fromCharCode(0x0900 + byte - 0x80);
    else if (byte >= 0x20 && byte < 0x7f) text += String.fromCharCode(byte);
    else if (byte === 0x01) text += "\u200c";
    else if (byte === 0x02) text += "\u200d";
    else return null;
  }
  return text;
}
