// A DER reader for X.509 certificates: only what the verify page needs to check the published
// documents' signer chain in the browser (signing/signed_json.py does the same on the server with
// pyhanko-certvalidator). No framework, no external host: served by us (api.py WEB_ASSETS).

export class DerError extends Error {}

const OIDS = {
  organisation: "2.5.4.10",
  keyUsage: "2.5.29.15",
  basicConstraints: "2.5.29.19",
  rsa: "1.2.840.113549.1.1.1",
  ecPublicKey: "1.2.840.10045.2.1",
  p256: "1.2.840.10045.3.1.7",
  p384: "1.3.132.0.34",
};

// Signature algorithms a certificate in our chains may use, as WebCrypto names them.
const SIGNATURES = {
  "1.2.840.113549.1.1.11": {name: "RSASSA-PKCS1-v1_5", hash: "SHA-256"},
  "1.2.840.113549.1.1.12": {name: "RSASSA-PKCS1-v1_5", hash: "SHA-384"},
  "1.2.840.113549.1.1.13": {name: "RSASSA-PKCS1-v1_5", hash: "SHA-512"},
  "1.2.840.10045.4.3.2": {name: "ECDSA", hash: "SHA-256"},
  "1.2.840.10045.4.3.3": {name: "ECDSA", hash: "SHA-384"},
  "1.2.840.10045.4.3.4": {name: "ECDSA", hash: "SHA-512"},
};
const CURVES = {[OIDS.p256]: ["P-256", 32], [OIDS.p384]: ["P-384", 48]};

// One TLV at `pos`: {tag, from (its first byte), start (content), end (after the content)}.
export function tlv(buf, pos) {
  if (pos + 2 > buf.length) throw new DerError("truncated DER");
  const tag = buf[pos];
  if ((tag & 0x1f) === 0x1f) throw new DerError("multi-byte tags are not used in certificates");
  let length = buf[pos + 1];
  let p = pos + 2;
  if (length & 0x80) {
    const count = length & 0x7f;
    if (count === 0 || count > 3) throw new DerError("unsupported DER length");
    length = 0;
    for (let i = 0; i < count; i++) {
      if (p >= buf.length) throw new DerError("truncated DER");
      length = length * 256 + buf[p++];
    }
  }
  if (p + length > buf.length) throw new DerError("a DER value runs past its container");
  return {tag, from: pos, start: p, end: p + length};
}

export function children(buf, node) {
  const out = [];
  for (let p = node.start; p < node.end;) {
    const child = tlv(buf, p);
    if (child.end > node.end) throw new DerError("a DER value runs past its container");
    out.push(child);
    p = child.end;
  }
  return out;
}

function expect(node, tag, what) {
  if (!node || node.tag !== tag) throw new DerError(`${what}: unexpected DER`);
  return node;
}

function oid(buf, node) {
  expect(node, 0x06, "object identifier");
  const parts = [];
  let value = 0;
  for (let p = node.start; p < node.end; p++) {
    value = value * 128 + (buf[p] & 0x7f);
    if (!(buf[p] & 0x80)) { parts.push(value); value = 0; }
  }
  const first = Math.min(Math.floor(parts[0] / 40), 2);
  return [first, parts[0] - 40 * first, ...parts.slice(1)].join(".");
}

function time(buf, node) {
  const text = new TextDecoder().decode(buf.subarray(node.start, node.end));
  const m = node.tag === 0x17 ? /^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(text)
    : node.tag === 0x18 ? /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(text) : null;
  if (!m) throw new DerError("a certificate time is neither UTCTime nor GeneralizedTime");
  let year = Number(m[1]);
  if (node.tag === 0x17) year += year < 50 ? 2000 : 1900;  // RFC 5280 4.1.2.5.1
  return Date.UTC(year, Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6]));
}

// A BIT STRING's bytes after its unused-bits count.
function bits(buf, node) {
  expect(node, 0x03, "bit string");
  return buf.subarray(node.start + 1, node.end);
}

export function equalBytes(a, b) {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

// The certificate `der` (Uint8Array) read into what a chain check needs; DerError for
// anything that is not one.
export function certificate(der) {
  try {
    return readCertificate(der);
  } catch (e) {
    if (e instanceof DerError) throw e;
    throw new DerError("not a certificate: " + e.message);
  }
}

function readCertificate(der) {
  const top = expect(tlv(der, 0), 0x30, "certificate");
  if (top.end !== der.length) throw new DerError("bytes after the certificate");
  const [tbs, algorithm, signature] = children(der, top);
  const fields = children(der, expect(tbs, 0x30, "tbsCertificate"));
  const at = fields[0] && fields[0].tag === 0xa0 ? 1 : 0;
  const [, , issuer, validity, subject, spki] = fields.slice(at);
  const [notBefore, notAfter] = children(der, expect(validity, 0x30, "validity"));
  const [keyAlgorithm] = children(der, expect(spki, 0x30, "subjectPublicKeyInfo"));
  const [keyOid, parameter] = children(der, keyAlgorithm);
  const cert = {
    der,
    tbs: der.subarray(tbs.from, tbs.end),
    signatureAlgorithm: oid(der, children(der, algorithm)[0]),
    signature: bits(der, signature),
    issuer: der.subarray(issuer.from, issuer.end),
    subject: der.subarray(subject.from, subject.end),
    spki: der.subarray(spki.from, spki.end),
    keyType: oid(der, keyOid),
    curve: parameter && parameter.tag === 0x06 ? oid(der, parameter) : null,
    notBefore: time(der, notBefore),
    notAfter: time(der, notAfter),
    organisation: [],
    keyUsage: null,  // the first byte of keyUsage, when present
    ca: false,
  };
  for (const set of children(der, subject)) {
    for (const pair of children(der, set)) {
      const [type, value] = children(der, pair);
      if (oid(der, type) === OIDS.organisation) {
        cert.organisation.push(new TextDecoder().decode(der.subarray(value.start, value.end)));
      }
    }
  }
  const extensions = fields.find((f) => f.tag === 0xa3);
  for (const ext of extensions ? children(der, children(der, extensions)[0]) : []) {
    const parts = children(der, ext);
    const id = oid(der, parts[0]);
    const value = expect(parts[parts.length - 1], 0x04, "extension value");
    const inner = tlv(der, value.start);
    if (id === OIDS.keyUsage) cert.keyUsage = bits(der, inner)[0] || 0;
    if (id === OIDS.basicConstraints) {
      const first = children(der, inner)[0];
      cert.ca = Boolean(first && first.tag === 0x01 && der[first.start] !== 0);
    }
  }
  return cert;
}

export const DIGITAL_SIGNATURE = 0x80;
export const KEY_CERT_SIGN = 0x04;

// The certificate's public key for WebCrypto, to verify with `hash` (null: its curve's own).
export async function publicKey(cert, hash) {
  if (cert.keyType === OIDS.rsa) {
    return crypto.subtle.importKey("spki", cert.spki, {name: "RSASSA-PKCS1-v1_5", hash}, false,
                                   ["verify"]);
  }
  if (cert.keyType === OIDS.ecPublicKey && CURVES[cert.curve]) {
    return crypto.subtle.importKey("spki", cert.spki,
                                   {name: "ECDSA", namedCurve: CURVES[cert.curve][0]}, false,
                                   ["verify"]);
  }
  throw new DerError("a key that is neither RSA nor EC P-256/P-384");
}

// An X.509 ECDSA signature (DER SEQUENCE of r and s) as WebCrypto wants it: r || s.
function rawEcdsa(signature, size) {
  const [r, s] = children(signature, expect(tlv(signature, 0), 0x30, "ECDSA signature"));
  const out = new Uint8Array(2 * size);
  [r, s].forEach((n, i) => {
    let bytes = signature.subarray(expect(n, 0x02, "ECDSA integer").start, n.end);
    while (bytes.length > size && bytes[0] === 0) bytes = bytes.subarray(1);
    if (bytes.length > size) throw new DerError("an ECDSA integer is too long");
    out.set(bytes, (i + 1) * size - bytes.length);
  });
  return out;
}

// Whether `issuer` (a CA certificate) signed `cert`: names chain, and the signature verifies.
export async function signedBy(cert, issuer) {
  const algorithm = SIGNATURES[cert.signatureAlgorithm];
  if (!algorithm || !equalBytes(cert.issuer, issuer.subject) || !issuer.ca ||
      (algorithm.name === "ECDSA") !== (issuer.keyType === OIDS.ecPublicKey) ||
      (issuer.keyUsage !== null && !(issuer.keyUsage & KEY_CERT_SIGN))) {
    return false;
  }
  try {
    const key = await publicKey(issuer, algorithm.hash);
    if (algorithm.name === "ECDSA") {
      const size = CURVES[issuer.curve][1];
      return await crypto.subtle.verify({name: "ECDSA", hash: algorithm.hash}, key,
                                        rawEcdsa(cert.signature, size), cert.tbs);
    }
    return await crypto.subtle.verify(algorithm.name, key, cert.signature, cert.tbs);
  } catch (e) {
    if (e instanceof DerError) return false;
    throw e;
  }
}
