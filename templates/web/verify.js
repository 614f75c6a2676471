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
    for (const [k, val] of rows) {
      if (!val) continue;
      const dt = document.createElement("dt"); dt.textContent = k;
      const dd = document.createElement("dd"); dd.textContent = val;
      details.append(dt, dd);
    }
  } catch (e) {
    out.className = "verdict bad"; out.textContent = "Could not check the certificate: " + e;
  }
})();
