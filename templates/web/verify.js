// Minimal page (issue 2): the seal travels after '#', so it never reaches server logs; we post
// it to the verify API. The full page (offline WebCrypto check, status list) is a later issue.
(async () => {
  const out = document.getElementById("result");
  const details = document.getElementById("details");
  const seal = location.hash.slice(1);
  if (!seal) { out.textContent = "No certificate code in this link. Scan the QR code on the certificate."; return; }
  try {
    const res = await fetch("/api/v1/verify", {method: "POST", headers: {"Content-Type": "application/json"},
                                               body: JSON.stringify({qr: location.href})});
    const v = await res.json();
    const labels = {current: "Genuine and current / वैध व चालू", superseded: "Genuine but SUPERSEDED by a correction / दुरुस्तीने बदललेले",
                    revoked: "REVOKED / रद्द", invalid: "NOT GENUINE / अवैध"};
    const c = v.certificate || {};
    // Dates as the paper prints them (DD-MM-YYYY), not as the seal carries them (ISO).
    const paper = (d) => (/^\d{4}-\d{2}-\d{2}$/.test(d || "") ? d.split("-").reverse().join("-") : d);
    const inIndia = (t) => new Date(t).toLocaleDateString("en-GB", {timeZone: "Asia/Kolkata"}).replaceAll("/", "-");
    let why = v.reason ? " (" + v.reason + ")" : "";
    if (v.status === "revoked" && c.revoked_reason) {
      why = ": " + c.revoked_reason + (c.revoked_at ? " (" + inIndia(c.revoked_at) + ")" : "");
    } else if (v.status === "superseded" && c.current_number) {
      why = ": the current certificate is / चालू प्रमाणपत्र " + c.current_number;
    }
    out.className = "verdict " + (v.current ? "ok" : (v.genuine ? "warn" : "bad"));
    out.textContent = (labels[v.status] || v.status) + why;
    const types = {birth: "Birth certificate / जन्म प्रमाणपत्र", death: "Death certificate / मृत्यू प्रमाणपत्र",
                   property_no_dues: "Property tax no-dues certificate / मालमत्ता कर थकबाकी नसल्याचे प्रमाणपत्र"};
    const dates = Object.fromEntries(Object.entries(c.dates || {}).map(([k, d]) => [k, paper(d)]));
    const rows = [["Certificate number", c.number], ["Type", types[c.type] || c.type],
                  ["Name", c.holder && c.holder.en], ["नाव", c.holder && c.holder.mr],
                  ["Date of birth / जन्म दिनांक", dates.birth], ["Date of death / मृत्यू दिनांक", dates.death],
                  ["Tax paid up to / कर भरलेला कालावधी (पर्यंत)", dates.paid_up_to],
                  ["Registration number", c.registration_number],
                  ["Ward", c.ward]];
    const show = (list, label, val) => {
      const dt = document.createElement("dt"); dt.textContent = label;
      const dd = document.createElement("dd"); dd.textContent = val;
      list.append(dt, dd);
    };
    for (const [k, val] of rows) if (val) show(details, k, val);
    // Online: every particular printed on the paper, from the record the seal matched, with
    // the paper's own labels, for comparison line by line.
    if (c.particulars) {
      const head = document.createElement("h2");
      head.textContent = "As printed on the certificate / प्रमाणपत्रावर छापलेला तपशील";
      const printed = document.createElement("dl");
      printed.id = "particulars";
      details.after(head, printed);
      for (const [path, val] of flatten(c.particulars)) {
        if (SHOWN.has(path)) continue;
        const text = /date/.test(path) ? paper(val) : (/\.sex$/.test(path) ? SEXES[val] || val : val);
        show(printed, PRINTED[path] || path, text);
      }
    }
  } catch (e) {
    out.className = "verdict bad"; out.textContent = "Could not check the certificate: " + e;
  }
})();

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
