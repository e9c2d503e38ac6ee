// The client against the OpenAPI document, with no stack: each method maps to a documented operation,
// the error table is the document's, and the /docs page renders the document.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import vm from 'node:vm';

import { HTTP_STATUS, InstanceManagerClient, instanceManagerClient } from 'instance-manager-client';
import { env, jsonOperations, loadDocument, needsDocument, OPERATION_OF, operations } from './helpers.mjs';

const NOT_OPERATIONS = new Set(['constructor', 'setBaseUrl', 'getBaseUrl', 'setApiKey', 'request']);

test('the preconfigured client points at http://localhost:3000', () => {
  assert.ok(instanceManagerClient instanceof InstanceManagerClient);
  assert.equal(new InstanceManagerClient().getBaseUrl(), 'http://localhost:3000');
});

test('every method of the client maps to a documented operation, and every JSON operation has a method', { skip: needsDocument }, () => {
  const doc = loadDocument();
  const methods = Object.getOwnPropertyNames(InstanceManagerClient.prototype).filter((name) => !NOT_OPERATIONS.has(name));
  assert.deepEqual(methods.sort(), Object.keys(OPERATION_OF).sort());
  const documented = operations(doc);
  for (const [method, id] of Object.entries(OPERATION_OF)) assert.ok(documented.has(id), `${method}: no operation ${id}`);
  const covered = new Set(Object.values(OPERATION_OF));
  assert.deepEqual(jsonOperations(doc).filter((id) => !covered.has(id)), []);
});

test("the client's error table is the document's", { skip: needsDocument }, () => {
  assert.deepEqual({ ...HTTP_STATUS }, loadDocument().components.schemas.ErrorCode['x-http-status']);
});

class FakeNode {
  constructor(tag) {
    this.tag = tag;
    this.attributes = {};
    this.children = [];
    this.textContent = '';
  }
  setAttribute(name, value) {
    this.attributes[name] = value;
  }
  append(...children) {
    this.children.push(...children);
  }
}

test('the /docs page renders every operation and schema of the document', { skip: needsDocument }, async () => {
  const doc = loadDocument();
  // The page carries no inline script (its CSP allows none): it names its script and hands it the
  // document's URL in an attribute.
  const page = readFileSync(env.docsPageFile, 'utf8');
  assert.ok(!page.includes('<script>') && page.includes('<script src="static/docs.js"'));
  const openapiUrl = page.match(/data-openapi-url="([^"]*)"/)[1];
  const script = readFileSync(env.docsScriptFile, 'utf8');
  const byId = Object.fromEntries(['title', 'state', 'intro', 'ops', 'schemas'].map((id) => [id, new FakeNode('div')]));
  const requested = [];
  const context = vm.createContext({
    Node: FakeNode,
    URLSearchParams,
    location: { hash: '#key=the-admin-key' },
    document: {
      body: { dataset: { openapiUrl } },
      getElementById: (id) => byId[id],
      createElement: (tag) => new FakeNode(tag),
    },
    fetch: async (url, init) => {
      requested.push([url, init.headers]);
      return { ok: true, json: async () => doc };
    },
  });
  vm.runInContext(script, context);
  await new Promise((resolve) => setTimeout(resolve, 50));
  // Objects made inside the page's realm: compared as JSON.
  assert.deepEqual(JSON.parse(JSON.stringify(requested)), [['/openapi.json', { 'x-api-key': 'the-admin-key' }]]);
  assert.match(byId.state.textContent, /^OpenAPI 3\.1\.0/);
  assert.deepEqual(byId.ops.children.map((node) => node.attributes.id).sort(), [...operations(doc).keys()].sort());
  assert.equal(byId.schemas.children.length, Object.keys(doc.components.schemas).length);
});
