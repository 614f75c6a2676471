// Renders /api/v1/openapi.json: operations by tag, their parameters, bodies and answers, and
// the schemas (with $refs as links). No framework and no CDN: the page's CSP allows only 'self'.

const METHODS = ["get", "put", "post", "delete", "patch"];

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
  for (const child of children) {
    node.append(typeof child === "string" ? document.createTextNode(child) : child);
  }
  return node;
}

function schemaBlock(schema) {
  const text = JSON.stringify(schema, null, 2);
  const pre = el("pre");
  // $refs become links to the schema's section below.
  const parts = text.split(/("#\/components\/schemas\/[A-Za-z0-9_]+")/);
  for (const part of parts) {
    const match = part.match(/^"#\/components\/schemas\/([A-Za-z0-9_]+)"$/);
    pre.append(match ? el("a", { href: `#schema-${match[1]}` }, part) : part);
  }
  return pre;
}

function resolve(doc, item) {
  const ref = item && item.$ref;
  if (!ref) return item;
  return ref.split("/").slice(1).reduce((node, key) => node[key], doc);
}

function parameters(params) {
  const table = el("table", {}, el("tr", {}, el("th", {}, "name"), el("th", {}, "in"),
    el("th", {}, "required"), el("th", {}, "schema"), el("th", {}, "description")));
  for (const p of params) {
    table.append(el("tr", {}, el("td", {}, p.name), el("td", {}, p.in),
      el("td", {}, p.required ? "yes" : "no"), el("td", {}, JSON.stringify(p.schema || {})),
      el("td", {}, p.description || "")));
  }
  return table;
}

function content(doc, title, body) {
  const box = el("div", {}, el("h4", {}, title));
  if (body.description) box.append(el("p", {}, body.description));
  for (const [media, item] of Object.entries(body.content || {})) {
    box.append(el("p", {}, el("code", {}, media)), schemaBlock(item.schema || {}));
  }
  return box;
}

function operation(doc, path, method, op) {
  const head = el("summary", {}, el("span", { class: `method ${method}` }, method), " ",
    el("span", { class: "path" }, path), " — ", op.summary || "");
  if (Array.isArray(op.security) && op.security.length === 0) {
    head.append(" ", el("span", { class: "public" }, "no token"));
  }
  const box = el("details", { class: "op" }, head);
  if (op.parameters) box.append(el("h4", {}, "Parameters"), parameters(op.parameters));
  if (op.requestBody) box.append(content(doc, "Request body", op.requestBody));
  for (const [status, answer] of Object.entries(op.responses || {})) {
    box.append(content(doc, `Answer ${status}`, resolve(doc, answer)));
  }
  return box;
}

async function main() {
  const doc = await (await fetch("/api/v1/openapi.json")).json();
  const byTag = new Map();
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const method of METHODS) {
      if (!item[method]) continue;
      const tag = (item[method].tags || ["other"])[0];
      if (!byTag.has(tag)) byTag.set(tag, []);
      byTag.get(tag).push(operation(doc, path, method, item[method]));
    }
  }
  const main = document.getElementById("operations");
  const nav = document.getElementById("tags");
  main.replaceChildren();
  for (const [tag, ops] of byTag) {
    nav.append(el("a", { href: `#tag-${tag}` }, tag));
    main.append(el("h2", { id: `tag-${tag}` }, tag), ...ops);
  }
  nav.append(el("a", { href: "#schemas" }, "schemas"));
  const schemas = document.getElementById("schemas");
  schemas.append(el("h2", {}, "Schemas"));
  for (const [name, schema] of Object.entries(doc.components.schemas)) {
    schemas.append(el("details", { class: "op", id: `schema-${name}` },
      el("summary", {}, name), schemaBlock(schema)));
  }
}

main().catch((error) => {
  document.getElementById("operations").textContent = `Could not load the document: ${error}`;
});
