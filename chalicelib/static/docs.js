// The /docs page's script (chalicelib/openapi.py docs_page): fetches the OpenAPI document named by the
// page's data-openapi-url and lists its operations and schemas. Vanilla JS, no CDN; text goes in as text nodes.
"use strict";
const specUrl = document.body.dataset.openapiUrl;
const key = new URLSearchParams(location.hash.slice(1)).get("key");
function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) node.setAttribute(name, value);
  for (const child of children) node.append(child instanceof Node ? child : String(child));
  return node;
}
function schemaBlock(schema) { return el("pre", {}, JSON.stringify(schema, null, 2)); }
function render(spec) {
  document.getElementById("title").textContent = spec.info.title + " " + spec.info.version;
  const intro = document.getElementById("intro");
  intro.append(el("p", {}, "Server: ", el("code", {}, (spec.servers || [{}])[0].url || "")),
               el("pre", {}, spec.info.description || ""));
  const table = el("table", {}, el("tr", {}, el("th", {}, "code"), el("th", {}, "HTTP")));
  const codes = spec.components.schemas.ErrorCode["x-http-status"] || {};
  for (const [code, status] of Object.entries(codes)) table.append(el("tr", {}, el("td", {}, code), el("td", {}, status)));
  intro.append(el("h2", {}, "Errors"), table);
  const ops = document.getElementById("ops");
  for (const [path, methods] of Object.entries(spec.paths)) {
    for (const [method, op] of Object.entries(methods)) {
      const verb = method.toUpperCase();
      const head = el("summary", {}, el("span", {class: "m " + verb}, verb), el("code", {}, path), " — " + op.summary,
                      op.security && op.security.length === 0 ? el("span", {class: "open"}, " (open)") : "");
      const body = el("details", {id: op.operationId}, head, el("p", {}, "operationId: ", el("code", {}, op.operationId)));
      if (op.description) body.append(el("p", {}, op.description));
      for (const p of op.parameters || []) {
        body.append(el("p", {}, p.in + " ", el("code", {}, p.name), p.required ? " (required) " : " ", p.description || ""));
      }
      if (op.requestBody) {
        body.append(el("h4", {}, "Request body"), schemaBlock(op.requestBody.content["application/json"].schema));
      }
      for (const [status, answer] of Object.entries(op.responses)) {
        body.append(el("h4", {}, status + " " + answer.description));
        for (const content of Object.values(answer.content || {})) body.append(schemaBlock(content.schema));
      }
      ops.append(body);
    }
  }
  const schemas = document.getElementById("schemas");
  for (const [name, schema] of Object.entries(spec.components.schemas)) {
    schemas.append(el("details", {id: "schema-" + name}, el("summary", {}, el("code", {}, name)), schemaBlock(schema)));
  }
  document.getElementById("state").textContent = "OpenAPI " + spec.openapi + " · raw document: ";
  document.getElementById("state").append(el("a", {href: specUrl}, specUrl));
}
fetch(specUrl, {headers: key ? {"x-api-key": key} : {}})
  .then(async (answer) => {
    const body = await answer.json();
    if (!answer.ok) throw new Error(body.error || answer.status);
    render(body);
  })
  .catch((error) => { document.getElementById("state").textContent = "Could not load " + specUrl + ": " + error.message +
    " (if the service needs the admin key, add #key=ADMIN_KEY to this page's URL)"; });
