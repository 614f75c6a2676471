// The issuer's published documents checked in the browser, as issuer/offline_verify.py checks
// them: the seal trust list and the status list are flattened JWS (ES256) whose x5c chain must
// lead to one of the trust roots this page ships (/v/roots.json), name the issuer's
// organisation and have keyUsage digitalSignature; each must be signed by a seal key the trust
// list itself lists, inside that key's window.

import {DIGITAL_SIGNATURE, DerError, certificate, equalBytes, publicKey, signedBy} from "./der.js";
import {PRIVATE_CLAIM, SealError, inflate, sealEntry, verifySeal} from "./seal.js";

export const TRUST_LIST_TYPE = "pramaan-trust-list+jws";
export const STATUS_LIST_TYPE = "pramaan-status-list+jws";
const TRUST_VALIDITY = 30 * 86400;
const STATUS_VALIDITY = 86400;
const SKEW = 300;
const MAX_CHAIN = 4;
const MAX_STATUS_ENTRIES = 1 << 26;

export class Refused extends Error {}

export function unb64url(text) {
  if (typeof text !== "string" || !text || text.length % 4 === 1 ||
      !/^[A-Za-z0-9_-]+$/.test(text)) {
    throw new Refused("not unpadded base64url");
  }
  return base64(text.replaceAll("-", "+").replaceAll("_", "/"));
}

function base64(text) {
  let binary;
  try {
    binary = atob(text + "=".repeat(-text.length & 3));
  } catch {
    throw new Refused("not base64");
  }
  return Uint8Array.from(binary, (c) => c.charCodeAt(0));
}

function jsonObject(bytes, what) {
  let value;
  try {
    value = JSON.parse(new TextDecoder("utf-8", {fatal: true}).decode(bytes));
  } catch (e) {
    throw new Refused(`${what} is not JSON: ${e.message}`);
  }
  if (!value || typeof value !== "object" || Array.isArray(value)) {
    throw new Refused(`${what} is not a JSON object`);
  }
  return value;
}

const exactly = (object, keys) =>
  Object.keys(object).length === keys.length && keys.every((k) => k in object);

// The trust roots shipped with the page: {organisation, roots: [certificate]}.
export function readRoots(json) {
  if (!json || typeof json.organisation !== "string" || !Array.isArray(json.roots)) {
    throw new Refused("the page's trust roots cannot be read");
  }
  return {organisation: json.organisation,
          roots: json.roots.map((b64) => certificate(base64(b64)))};
}

// A published document (its bytes as text) checked against the roots, as of `now` (ms):
// {payload, signer (certificate)}. Throws Refused.
export async function openDocument(text, typ, anchors, now) {
  const outer = jsonObject(new TextEncoder().encode(text), "the document");
  if (!exactly(outer, ["protected", "payload", "signature"]) ||
      !Object.values(outer).every((v) => typeof v === "string")) {
    throw new Refused("not a flattened JWS: exactly protected, payload and signature");
  }
  const header = jsonObject(unb64url(outer.protected), "the protected header");
  if (!exactly(header, ["alg", "typ", "x5c"]) || header.alg !== "ES256" || header.typ !== typ) {
    throw new Refused(`the header must be exactly alg ES256, typ ${typ} and x5c`);
  }
  if (!Array.isArray(header.x5c) || header.x5c.length < 1 || header.x5c.length > MAX_CHAIN ||
      !header.x5c.every((c) => typeof c === "string")) {
    throw new Refused(`x5c must hold 1 to ${MAX_CHAIN} certificates`);
  }
  let chain;
  try {
    chain = header.x5c.map((c) => certificate(base64(c)));
  } catch (e) {
    if (e instanceof DerError) throw new Refused(`x5c: ${e.message}`);
    throw e;
  }
  const signer = chain[0];
  const signature = unb64url(outer.signature);
  if (signature.length !== 64 || signer.curve !== "1.2.840.10045.3.1.7") {
    throw new Refused("the signature must be ES256 by a P-256 key");
  }
  const key = await publicKey(signer, "SHA-256");
  const signed = new TextEncoder().encode(`${outer.protected}.${outer.payload}`);
  if (!await crypto.subtle.verify({name: "ECDSA", hash: "SHA-256"}, key, signature, signed)) {
    throw new Refused("the signature does not match the document");
  }
  await requireTrusted(chain, anchors.roots, now);
  if (signer.organisation.length !== 1 || signer.organisation[0] !== anchors.organisation) {
    throw new Refused(`signed by ${signer.organisation.join(", ") || "no organisation"}, ` +
                      `not by ${anchors.organisation}`);
  }
  return {payload: jsonObject(unb64url(outer.payload), "the payload"), signer};
}

async function requireTrusted(chain, roots, now) {
  // The signer's keyUsage is checked with the trust list's entries: a document counts only
  // when signed by a listed seal key (requireListed), and every listed key must be for
  // digital signatures (trustEntries).
  for (const cert of chain) {
    if (now < cert.notBefore || now > cert.notAfter) {
      throw new Refused("a certificate of the signer's chain is not valid now");
    }
  }
  for (let i = 0; i + 1 < chain.length; i++) {
    if (!await signedBy(chain[i], chain[i + 1])) {
      throw new Refused("the signer's chain does not hold together");
    }
  }
  const last = chain[chain.length - 1];
  for (const root of roots) {
    if (now >= root.notBefore && now <= root.notAfter &&
        (equalBytes(last.der, root.der) || await signedBy(last, root))) {
      return;
    }
  }
  throw new Refused("the signer does not chain to a trust root of this page");
}

// The document's iat and exp in seconds, checked as offline_verify._require_current does.
function times(document, longest, now, what, expiredOk) {
  const {iat, exp} = document.payload;
  if (!Number.isInteger(iat) || !Number.isInteger(exp) || iat > now / 1000 + SKEW ||
      !(exp - iat > 0 && exp - iat <= longest)) {
    throw new Refused(`the ${what} claims impossible times`);
  }
  if (!expiredOk && exp * 1000 <= now) throw new Refused(`the ${what} has expired`);
  return {iat, exp};
}

// The trust list's seal keys as seal.js entries, each checked against its certificate.
async function trustEntries(payload) {
  if (payload.version !== 1 || !Array.isArray(payload.keys)) {
    throw new Refused("not a version 1 trust list");
  }
  const entries = [];
  for (const item of payload.keys) {
    let entry;
    try {
      const cert = certificate(base64(item.certificate));
      const from = Date.parse(item.signing_from);
      const until = Date.parse(item.signing_until);
      if (cert.curve !== "1.2.840.10045.3.1.7" || cert.ca || cert.keyUsage === null ||
          !(cert.keyUsage & DIGITAL_SIGNATURE) || !(from <= until) ||
          from < cert.notBefore || until > cert.notAfter) {
        throw new Refused("window");
      }
      entry = await sealEntry(cert, from, until);
    } catch (e) {
      if (e instanceof Refused || e instanceof DerError || e instanceof DOMException) {
        throw new Refused(`trust list entry ${item && item.kid}: cannot be read or its window ` +
                          "does not match its certificate");
      }
      throw e;
    }
    if (item.kid !== entry.kid) throw new Refused(`trust list entry ${item.kid}: wrong kid`);
    entries.push(entry);
  }
  return entries;
}

// A document must be signed by a listed seal key, inside its window when made and now.
function requireListed(document, entries, what, now) {
  const made = document.payload.iat * 1000;
  if (!entries.some((e) => equalBytes(e.certificate.der, document.signer.der) &&
                    e.from <= made && made <= e.until && e.from <= now && now <= e.until)) {
    throw new Refused(`the ${what} is not signed by a listed seal key in its window`);
  }
}

// The trust list (text) checked: {entries, iat, exp}.
export async function openTrustList(text, anchors, now) {
  const document = await openDocument(text, TRUST_LIST_TYPE, anchors, now);
  const {iat, exp} = times(document, TRUST_VALIDITY, now, "trust list", false);
  const entries = await trustEntries(document.payload);
  requireListed(document, entries, "trust list", now);
  return {entries, iat, exp};
}

// The status list (text) checked against the trust list: {iat, exp, size, packed}.
export async function openStatusList(text, anchors, trust, now) {
  const document = await openDocument(text, STATUS_LIST_TYPE, anchors, now);
  const {iat, exp} = times(document, STATUS_VALIDITY, now, "status list", true);
  requireListed(document, trust.entries, "status list", now);
  const claim = document.payload.status_list;
  if (!claim || !exactly(claim, ["bits", "size", "lst"]) || claim.bits !== 2 ||
      !Number.isInteger(claim.size) || claim.size < 0 || claim.size > MAX_STATUS_ENTRIES) {
    throw new Refused("a status list holds exactly bits 2, size and lst");
  }
  const expected = Math.ceil(claim.size * 2 / 8);
  let packed;
  try {
    packed = await inflate(unb64url(claim.lst), "deflate", expected);
  } catch (e) {
    if (e instanceof SealError || e instanceof Refused) {
      throw new Refused(`lst does not inflate to ${expected} bytes`);
    }
    throw e;
  }
  if (packed.length !== expected) throw new Refused(`lst does not inflate to ${expected} bytes`);
  return {iat, exp, size: claim.size, packed};
}

const STATUS_NAMES = ["current", "revoked", null, "superseded"];

// A sealed certificate's status by the list, as offline_verify._status says it:
// {status: "current" | "revoked" | "superseded" | "unknown", reason}.
export function statusOf(list, index, sealedAt, now) {
  if (list.exp * 1000 <= now) {
    return {status: "unknown", reason: "the saved status list has expired"};
  }
  if (!Number.isInteger(index) || !Number.isInteger(sealedAt)) {
    return {status: "unknown", reason: "the seal carries no status index"};
  }
  if (list.iat < sealedAt) {
    return {status: "unknown", reason: "the saved status list is older than this certificate"};
  }
  if (index < 0 || index >= list.size) {
    return {status: "unknown", reason: "the status list does not cover this certificate"};
  }
  const value = (list.packed[index >> 2] >> ((index & 3) * 2)) & 3;
  const name = STATUS_NAMES[value];
  if (name === null) {
    return {status: "unknown", reason: "not yet issued when the saved status list was made"};
  }
  return {status: name, reason: null};
}

// A document refused (or a key WebCrypto would not take), not a bug of this page.
const refusal = (e) => e instanceof Refused || e instanceof DerError || e instanceof DOMException;

// Seal `link` checked against the published documents (texts; status may be null) and the
// page's anchors, as of `now` (ms): {state: "genuine", facts (Map), issuedAt, status, trust},
// {state: "bad", reason} for a seal that is not the issuer's, or {state: "unavailable", why}
// when the trust list cannot be used. Unlike `pramaan verify --published`, a status list that
// cannot be used leaves the seal genuine with its status unknown, said with the reason.
export async function checkWithPublished(link, documents, anchors, now) {
  let trust;
  try {
    trust = await openTrustList(documents.trust, anchors, now);
  } catch (e) {
    if (!refusal(e)) throw e;
    return {state: "unavailable", why: "the issuer's trust list could not be checked: " + e.message};
  }
  const seal = await verifySeal(link, trust.entries);
  if (!seal.ok) return {state: "bad", reason: seal.reason, trust};
  const ours = seal.claims.get(PRIVATE_CLAIM);
  const facts = ours instanceof Map ? ours : new Map();
  let status = {status: "unknown", reason: "no saved status list"};
  if (documents.status) {
    try {
      const list = await openStatusList(documents.status, anchors, trust, now);
      status = {...statusOf(list, facts.get("si"), seal.claims.get(6), now), signedAt: list.iat};
    } catch (e) {
      if (!refusal(e)) throw e;
      status = {status: "unknown", reason: "the status list could not be checked: " + e.message};
    }
  }
  return {state: "genuine", facts, issuedAt: seal.claims.get(6), status, trust};
}
