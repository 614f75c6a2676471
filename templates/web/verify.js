// The verify page (/v). The seal travels after '#', so it never reaches server logs.
//
// 1. On this device: the seal is checked with WebCrypto against the issuer's signed trust list
//    (seal.js, published.js), fetched or, without a network, the copy saved on an earlier visit
//    (the service worker, sw.js, also keeps the page itself). A tampered or unknown-key seal is
//    red here, whatever else happens.
// 2. Online: the server is asked for the status (current, superseded by N, revoked with reason)
//    and every particular printed on the paper. Offline: the saved status list gives the status
//    when it is recent enough, and the page says plainly what it could not check.

import {checkWithPublished, readRoots} from "./published.js";
import {unpackName} from "./seal.js";
import {startScanning} from "./camera.js";

const WELL_KNOWN = "/.well-known/pramaan/";
const SAVED = "pramaan-published-v1";

const LABELS = {current: "Genuine and current / वैध व चालू",
                superseded: "Genuine but SUPERSEDED by a correction / दुरुस्तीने बदललेले",
                revoked: "REVOKED / रद्द", invalid: "NOT GENUINE / अवैध",
                unknown: "Genuine seal, status not checked / शिक्का वैध, सद्यस्थिती तपासली नाही"};
const REASONS = {
  malformed: "the code is damaged or is not a seal of this issuer",
  too_large: "the code is too long to be a seal of this issuer",
  bad_signature: "the signature does not match: the code was altered",
  unknown_kid: "signed by a key this issuer has not published",
  outside_window: "signed outside its key's period of use",
};
const TYPES = {birth: "Birth certificate / जन्म प्रमाणपत्र",
               death: "Death certificate / मृत्यू प्रमाणपत्र",
               property_no_dues: "Property tax no-dues certificate / मालमत्ता कर थकबाकी नसल्याचे प्रमाणपत्र"};
// The types by the number prefix a compact seal carries, and the name of the one date it carries.
const SEAL_TYPES = {B: "birth", D: "death", P: "property_no_dues"};
const SEAL_DATES = {birth: "birth", death: "death", property_no_dues: "paid_up_to"};
// What the paper prints that the seal does not carry, said when only the seal could be checked.
const NOT_IN_SEAL = {
  birth: "sex, place of birth, the mother's and the father's names, the address, the date of " +
         "registration and the remarks / लिंग, जन्म ठिकाण, आई-वडिलांची नावे, पत्ता, नोंदणी दिनांक, शेरा",
  death: "sex, age, place of death, the relatives' names, the address, the date of registration " +
         "and the remarks / लिंग, वय, मृत्यूचे ठिकाण, नातेवाईकांची नावे, पत्ता, नोंदणी दिनांक, शेरा",
  property_no_dues: "the other owners' names, the property number and address, usage and " +
         "assessment year / इतर मालकांची नावे, मालमत्ता क्रमांक व पत्ता, वापर, कर आकारणी वर्ष",
};

// Dates as the paper prints them (DD-MM-YYYY), not as the seal carries them (ISO).
const paper = (d) => (/^\d{4}-\d{2}-\d{2}$/.test(d || "") ? d.split("-").reverse().join("-") : d);
const inIndia = (t) => new Date(t).toLocaleDateString("en-GB", {timeZone: "Asia/Kolkata"})
  .replaceAll("/", "-");
const inIndiaTime = (t) => inIndia(t) + " " + new Date(t).toLocaleTimeString(
  "en-GB", {timeZone: "Asia/Kolkata", hour: "2-digit", minute: "2-digit"});

(() => {
  if ("serviceWorker" in navigator) {
    navigator.serviceWorker.register("/v/sw.js", {scope: "/v"}).catch(() => {});
  }
  const upload = document.getElementById("pdf");
  upload.addEventListener("change", () => checkPdf(upload.files[0]));
  document.getElementById("scan").addEventListener("click", scan);
  // A scanned code (or another link opened in this tab) changes only the fragment.
  window.addEventListener("hashchange", check);
  check();
})();

// The verdict on the link in the address bar, shown in place of any earlier one.
async function check() {
  const out = document.getElementById("result");
  const how = document.getElementById("how");
  const details = document.getElementById("details");
  for (const extra of [...document.getElementById("verdict-area").children]) {
    if (![out, how, details].includes(extra)) extra.remove();
  }
  details.replaceChildren();
  how.textContent = "";
  out.className = "verdict warn";
  out.textContent = "Checking… / तपासत आहे…";
  if (!location.hash.slice(1)) {
    out.textContent = "No certificate code in this link: scan the QR code on the certificate " +
                      "with your phone's camera or the button below, or check its PDF file. / " +
                      "प्रमाणपत्रावरील QR कोड स्कॅन करा किंवा खाली PDF फाइल तपासा.";
    return;
  }
  const link = location.href;
  try {
    const [local, online] = await Promise.all([checkHere(link), askServer(link)]);
    show({out, how, details}, local, online);
  } catch (e) {
    out.className = "verdict bad";
    out.textContent = "Could not check the certificate: " + e;
  }
}

// The camera, for devices whose own camera app does not open the QR's link (camera.js).
async function scan() {
  const video = document.getElementById("viewfinder");
  const status = document.getElementById("scan-status");
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    status.textContent = "This browser cannot use the camera on this page (it needs https). / " +
                         "या ब्राउझरमध्ये कॅमेरा वापरता येत नाही.";
    return;
  }
  video.hidden = false;
  status.textContent = "Point the camera at the QR code on the certificate… / " +
                       "कॅमेरा प्रमाणपत्रावरील QR कोडकडे धरा…";
  try {
    await startScanning(video, (text) => {
      video.hidden = true;
      const at = text.indexOf("#");
      let host = null;
      try { host = new URL(text).host; } catch { /* digits alone */ }
      // Another site's link is not followed: its digits are checked here like any seal.
      status.textContent = host && host !== location.host
        ? "The code links to " + host + ", not to this page; checked here. / " +
          "हा कोड दुसऱ्या संकेतस्थळाचा आहे; येथे तपासला."
        : "";
      const digits = at >= 0 ? text.slice(at + 1) : text;
      if (location.hash.slice(1) === digits) check();
      else location.hash = digits;
    });
  } catch (e) {
    video.hidden = true;
    status.textContent = "The camera could not be used: " + e.message + " / कॅमेरा वापरता आला नाही.";
  }
}

// A copy of `url` (text): from the network when it answers, else the one saved earlier.
async function kept(url) {
  const store = "caches" in window ? await caches.open(SAVED).catch(() => null) : null;
  try {
    const answer = await fetch(url, {cache: "no-cache"});
    if (answer.ok) {
      if (store) await store.put(url, answer.clone()).catch(() => {});
      return await answer.text();
    }
  } catch {
    // offline: the saved copy below
  }
  const saved = store ? await store.match(url) : undefined;
  return saved ? await saved.text() : null;
}

// The seal checked on this device: {state: "genuine" | "bad" | "unavailable", ...}.
async function checkHere(link) {
  if (!window.isSecureContext || !crypto.subtle || typeof DecompressionStream === "undefined") {
    return {state: "unavailable", why: "this browser cannot check seals itself"};
  }
  const now = Date.now();
  const [roots, trustText, statusText] = await Promise.all([
    kept("/v/roots.json"), kept(WELL_KNOWN + "trust-list.json"),
    kept(WELL_KNOWN + "status-list.json")]);
  if (!roots || !trustText) {
    return {state: "unavailable", why: "no saved copy of the issuer's trust list"};
  }
  let anchors;
  try {
    anchors = readRoots(JSON.parse(roots));
  } catch (e) {
    return {state: "unavailable", why: "the page's trust roots could not be read"};
  }
  return checkWithPublished(link, {trust: trustText, status: statusText}, anchors, now);
}

// An uploaded PDF, checked by the server (its PAdES signature needs the full PDF validator).
async function checkPdf(file) {
  const out = document.getElementById("pdf-result");
  const details = document.getElementById("pdf-details");
  details.replaceChildren();
  document.querySelectorAll("#pdf-check .printed").forEach((e) => e.remove());
  if (!file) return;
  out.className = "verdict warn";
  out.textContent = "Checking the file… / फाइल तपासत आहे…";
  try {
    const answer = await fetch("/api/v1/verify/pdf", {
      method: "POST", headers: {"Content-Type": "application/pdf"}, body: file});
    const v = await answer.json();
    if (!answer.ok) {
      out.className = "verdict bad";
      const first = Array.isArray(v.errors) && v.errors[0] ? v.errors[0].message : null;
      out.textContent = "Could not check the file: " + (first || v.detail || v.title);
      return;
    }
    const verdict = (cls, text) => { out.className = "verdict " + cls; out.textContent = text; };
    showServer({details}, v, verdict);
  } catch (e) {
    out.className = "verdict bad";
    out.textContent = "Could not reach the issuer to check the file (a PDF is checked online). / " +
                      "फाइल तपासण्यासाठी नेटवर्क लागते.";
  }
}

// The server's verdict, or null when it cannot be reached.
async function askServer(link) {
  try {
    const answer = await fetch("/api/v1/verify", {
      method: "POST", headers: {"Content-Type": "application/json"},
      body: JSON.stringify({qr: link})});
    if (!answer.ok && answer.status !== 422) return null;
    return await answer.json();
  } catch {
    return null;
  }
}

function show(page, local, online) {
  const {out, how, details} = page;
  const verdict = (cls, text) => { out.className = "verdict " + cls; out.textContent = text; };
  if (local.state === "bad") {
    // Never a partial green: nothing the code claims is shown.
    verdict("bad", LABELS.invalid + ": " + (REASONS[local.reason] || local.reason));
    how.textContent = "Checked on this device against the issuer's published keys. / " +
                      "या उपकरणावर तपासले.";
    return;
  }
  if (online && online.status) {
    showServer(page, online, verdict);
    how.textContent = local.state === "genuine"
      ? "Seal checked on this device; status and particulars from the issuer. / " +
        "शिक्का या उपकरणावर तपासला; सद्यस्थिती व तपशील कार्यालयाकडून."
      : "Checked by the issuer's server (" + local.why + ").";
    return;
  }
  if (local.state === "genuine") {
    showOffline(page, local, verdict);
    return;
  }
  verdict("warn", "Cannot check now: no network, and " + local.why + ". Connect and try again. / " +
                  "आत्ता तपासता येत नाही: नेटवर्क जोडून पुन्हा प्रयत्न करा.");
}

function showServer({details}, v, verdict) {
  const c = v.certificate || {};
  let why = v.reason ? " (" + v.reason + ")" : "";
  if (v.status === "revoked" && c.revoked_reason) {
    why = ": " + c.revoked_reason + (c.revoked_at ? " (" + inIndia(c.revoked_at) + ")" : "");
  } else if (v.status === "superseded" && c.current_number) {
    why = ": the current certificate is / चालू प्रमाणपत्र " + c.current_number;
  }
  verdict(v.current ? "ok" : (v.genuine ? "warn" : "bad"), (LABELS[v.status] || v.status) + why);
  const dates = Object.fromEntries(Object.entries(c.dates || {}).map(([k, d]) => [k, paper(d)]));
  summary(details, {number: c.number, type: c.type, holder: c.holder, dates,
                    registration: c.registration_number, ward: c.ward});
  // Every particular printed on the paper, from the record the seal matched, with the paper's
  // own labels, for comparison line by line.
  if (c.particulars) {
    const head = document.createElement("h2");
    head.textContent = "As printed on the certificate / प्रमाणपत्रावर छापलेला तपशील";
    const printed = document.createElement("dl");
    printed.id = details.id === "details" ? "particulars" : "pdf-particulars";
    head.className = printed.className = "printed";
    details.after(head, printed);
    for (const [path, val] of flatten(c.particulars)) {
      if (SHOWN.has(path)) continue;
      const text = /date/.test(path) ? paper(val) : (/\.sex$/.test(path) ? SEXES[val] || val : val);
      row(printed, PRINTED[path] || path, text);
    }
  }
}

function showOffline({how, details}, local, verdict) {
  const {facts, status} = local;
  const text = (LABELS[status.status] || status.status) +
    (status.reason ? " (" + status.reason + ")" : "");
  verdict(status.status === "current" ? "ok" : status.status === "unknown" ? "warn" : "bad", text);
  how.textContent = "Checked on this device without a network, against the issuer's trust list " +
    "signed " + inIndiaTime(local.trust.iat * 1000) +
    (status.signedAt ? " and status list signed " + inIndiaTime(status.signedAt * 1000) : "") +
    ". / नेटवर्कशिवाय या उपकरणावर तपासले.";
  const holder = facts.get("n") instanceof Map
    ? Object.fromEntries([...facts.get("n")].map(([lang, name]) => [lang, unpackName(name)])) : {};
  // Compact seals carry the type's number prefix and its one date (issuer/seal_fields.py).
  const type = SEAL_TYPES[facts.get("t")] || facts.get("t");
  const sealed = facts.get("d");
  const dates = typeof sealed === "string" ? {[SEAL_DATES[type]]: paper(sealed)}
    : sealed instanceof Map ? Object.fromEntries([...sealed].map(([k, d]) => [k, paper(d)])) : {};
  summary(details, {number: facts.get("no"), type, holder, dates,
                    registration: facts.get("r"), ward: facts.get("w"),
                    issued: local.issuedAt ? inIndia(local.issuedAt * 1000) : null});
  const note = document.createElement("p");
  note.id = "unchecked";
  note.className = "verdict warn";
  note.textContent = "Not checked without a network: " +
    (NOT_IN_SEAL[type] || "the particulars not listed above") +
    ". The seal carries only what is listed above; compare the rest when you are online. / " +
    "शिक्क्यात फक्त वरील तपशील आहे; उर्वरित तपशील नेटवर्क असताना तपासा.";
  details.after(note);
}

function summary(list, c) {
  const rows = [["Certificate number / प्रमाणपत्र क्रमांक", c.number],
                ["Type / प्रकार", TYPES[c.type] || c.type],
                ["Name", c.holder && c.holder.en], ["नाव", c.holder && c.holder.mr],
                ["Date of birth / जन्म दिनांक", c.dates.birth],
                ["Date of death / मृत्यू दिनांक", c.dates.death],
                ["Tax paid up to / कर भरलेला कालावधी (पर्यंत)", c.dates.paid_up_to],
                ["Registration number / नोंदणी क्रमांक", c.registration],
                ["Ward / क्षेत्रीय कार्यालय", c.ward],
                ["Issued on / जारी दिनांक", c.issued]];
  for (const [label, value] of rows) if (value) row(list, label, value);
}

function row(list, label, value) {
  const dt = document.createElement("dt"); dt.textContent = label;
  const dd = document.createElement("dd"); dd.textContent = value;
  list.append(dt, dd);
}

// The printed particulars as [dotted path, text] pairs: an English/Marathi pair on one line.
function flatten(obj, prefix = "") {
  const out = [];
  for (const [k, v] of Object.entries(obj)) {
    const path = prefix + k;
    if (v && typeof v === "object" && ("en" in v || "mr" in v)) {
      out.push([path, [v.en, v.mr].filter(Boolean).join(" / ")]);
    } else if (v && typeof v === "object") {
      out.push(...flatten(v, path + "."));
    } else if (v !== null && v !== undefined && v !== "") {
      out.push([path, String(v)]);
    }
  }
  return out;
}

// Shown above from the seal already, or not a particular of the paper.
const SHOWN = new Set(["type", "registration_number"]);

const SEXES = {male: "Male / पुरुष", female: "Female / स्त्री", other: "Other / इतर"};

// The certificates' own labels (templates/*/1.typ), English / Marathi.
const PRINTED = {
  "child.name": "Name of the child / बाळाचे नाव",
  "child.sex": "Sex / लिंग",
  "child.date_of_birth": "Date of birth / जन्म दिनांक",
  "child.place_of_birth": "Place of birth / जन्म ठिकाण",
  "mother.name": "Name of the mother / आईचे नाव",
  "father.name": "Name of the father / वडिलांचे नाव",
  "permanent_address": "Permanent address / कायमचा पत्ता",
  "registration_date": "Date of registration / नोंदणी दिनांक",
  "ward_office": "Ward office / क्षेत्रीय कार्यालय",
  "remarks": "Remarks / शेरा",
  "deceased.name": "Name of the deceased / मृत व्यक्तीचे नाव",
  "deceased.sex": "Sex / लिंग",
  "deceased.date_of_death": "Date of death / मृत्यू दिनांक",
  "deceased.place_of_death": "Place of death / मृत्यूचे ठिकाण",
  "property_id": "Property number / मालमत्ता क्रमांक",
  "property_address": "Property address / मालमत्तेचा पत्ता",
  "usage": "Usage / वापर",
  "assessment_year": "Assessment year / कर आकारणी वर्ष",
  "certificate_reference": "Certificate reference / प्रमाणपत्र संदर्भ क्रमांक",
};
