// The OpenAPI document: every route's summary and, where it has one, its request and answer schemas.
// Keyway reads every body itself (`parse: 'none'`), so the schemas ride in the route's `detail`, which
// Elysia only hands to the document generator: nothing validates or parses against them. The document
// is generated once, on its first request (a gateway nobody asks for it never loads the generator
// nor holds the text), and served as a prepared string; the page at /openapi is self-contained (no
// CDN: the gateway often runs where the internet is not reachable).

import { KindGuard, type TSchema } from '@sinclair/typebox';
import type { DocumentDecoration, Elysia } from 'elysia';
import { ErrorBodySchema } from './openapi-schemas.ts';

export const OPENAPI_PATH = '/openapi';
export const OPENAPI_JSON_PATH = '/openapi/json';

export interface RouteDocs {
  summary: string;
  /** The section the route is listed under. */
  tag: string;
  description?: string;
  /** The JSON request body, for the document only; `Type.Optional(…)` for a body that may be left out. */
  body?: TSchema;
  /** The JSON answer on success, for the document only. */
  response?: TSchema;
  /** The success status (200 unless said). */
  status?: number;
  /** What the success answer is, in words. */
  responseDescription?: string;
  /** Routes anyone may call (/health, /ready); every other one takes a bearer key. */
  public?: boolean;
}

const errorResponse = {
  description: "An error, in the spec shape (a dialect plugin's routes answer in their dialect's shape)",
  content: { 'application/json': { schema: ErrorBodySchema } },
};

/** The OpenAPI operation for a route, from its docs. */
export function operationDetail(docs: RouteDocs): DocumentDecoration {
  const success: Record<string, unknown> = { description: docs.responseDescription ?? (docs.status === 204 ? 'No content' : 'Success') };
  if (docs.response !== undefined) success.content = { 'application/json': { schema: docs.response } };
  const detail: Record<string, unknown> = {
    summary: docs.summary,
    tags: [docs.tag],
    responses: { [String(docs.status ?? 200)]: success, default: errorResponse },
  };
  if (docs.description !== undefined) detail.description = docs.description;
  if (docs.public === true) detail.security = [];
  // A route that reads an optional body declares it Type.Optional (the member key re-issue, the master key rotation).
  if (docs.body !== undefined) detail.requestBody = { required: !KindGuard.IsOptional(docs.body), content: { 'application/json': { schema: docs.body } } };
  return detail as DocumentDecoration;
}

/** Options for a core route: Keyway reads the body (never Elysia), and the docs feed the document. */
export function documented(docs: RouteDocs): { parse: 'none'; detail: DocumentDecoration } {
  return { parse: 'none', detail: operationDetail(docs) };
}

/**
 * Adds the two routes that serve the document. Call it last, once every core and plugin route is on
 * the app: the document is built from the app's routes on the first request for it.
 */
export function serveOpenApi(app: Elysia): void {
  let text: Promise<string> | undefined;
  const documentText = (): Promise<string> => {
    text ??= buildDocument(app);
    return text;
  };
  const page = openApiPage();
  const hidden = { detail: { hide: true } };
  app.get(OPENAPI_JSON_PATH, async () => new Response(await documentText(), { headers: { 'content-type': 'application/json' } }), hidden);
  app.get(OPENAPI_PATH, () => new Response(page, { headers: { 'content-type': 'text/html; charset=utf-8' } }), hidden);
}

async function buildDocument(app: Elysia): Promise<string> {
  const { toOpenAPISchema } = await import('@elysiajs/openapi/openapi');
  const generated = toOpenAPISchema(app as never, undefined, undefined, undefined, '3.1.0');
  const document = {
    openapi: '3.1.0',
    info: {
      title: 'Keyway',
      version: 'v1',
      description:
        'A self-hosted gateway to LLM providers with your own keys. Errors use the spec shape `{"error": {"message", "type", "code", "param"}}`. Authenticate with `Authorization: Bearer <key>`.',
    },
    tags: [
      { name: 'Inference', description: 'Model calls, in every loaded dialect' },
      { name: 'Provider keys', description: 'Provider keys: stored encrypted, never shown again' },
      { name: 'Accounts and keys', description: 'Accounts and their gateway keys' },
      { name: 'Routing and health', description: 'Routing settings, model classes and provider health' },
      { name: 'Platform', description: 'Operator-wide settings and the loaded plugins' },
      { name: 'Plugins', description: 'Routes added by plugins' },
      { name: 'Service', description: 'Liveness and readiness' },
    ],
    security: [{ bearer: [] }],
    paths: generated.paths,
    components: {
      schemas: generated.components.schemas,
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'A gateway key (kw_ak_…) or the operator key' } },
    },
  };
  return JSON.stringify(document);
}

/** A page that renders /openapi/json with no asset from anywhere else. */
function openApiPage(): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Keyway API</title>
<style>
body { font: 15px/1.5 system-ui, sans-serif; margin: 0 auto; max-width: 60rem; padding: 1rem 1.5rem; color: #1b1b1b; background: #fff; }
@media (prefers-color-scheme: dark) { body { color: #e6e6e6; background: #161616; } pre { background: #222 !important; } .op { border-color: #333 !important; } }
h1 { margin-bottom: 0.2rem; } h2 { margin-top: 2rem; border-bottom: 1px solid #8884; }
.op { border: 1px solid #ddd; border-radius: 6px; margin: 0.5rem 0; padding: 0.4rem 0.8rem; }
.method { display: inline-block; min-width: 4.2rem; font-weight: 700; font-family: ui-monospace, monospace; }
.path { font-family: ui-monospace, monospace; } .summary { color: #888; margin-left: 0.6rem; }
pre { background: #f5f5f5; padding: 0.6rem; overflow: auto; font-size: 13px; border-radius: 4px; }
summary { cursor: pointer; }
</style>
</head>
<body>
<h1>Keyway API</h1>
<p id="intro">Loading <a href="openapi/json">the OpenAPI document</a>…</p>
<div id="ops"></div>
<script>
(async () => {
  const text = (tag, content, cls) => { const node = document.createElement(tag); node.textContent = content; if (cls) node.className = cls; return node; };
  const block = (title, value) => { const details = document.createElement('details'); details.append(text('summary', title), text('pre', JSON.stringify(value, null, 2))); return details; };
  const doc = await (await fetch('openapi/json')).json();
  const intro = document.getElementById('intro');
  intro.textContent = doc.info.description + ' ';
  const link = text('a', 'OpenAPI JSON'); link.href = 'openapi/json'; intro.append(link);
  const sections = new Map();
  for (const [path, item] of Object.entries(doc.paths)) for (const [method, op] of Object.entries(item)) {
    const tag = (op.tags && op.tags[0]) || 'Other';
    if (!sections.has(tag)) sections.set(tag, []);
    sections.get(tag).push([method, path, op]);
  }
  const root = document.getElementById('ops');
  for (const [tag, ops] of sections) {
    root.append(text('h2', tag));
    for (const [method, path, op] of ops) {
      const box = document.createElement('div'); box.className = 'op';
      box.append(text('span', method.toUpperCase(), 'method'), text('span', path, 'path'), text('span', op.summary || '', 'summary'));
      if (op.description) box.append(text('p', op.description));
      const body = op.requestBody && op.requestBody.content && op.requestBody.content['application/json'];
      if (body) box.append(block('Request body', body.schema));
      for (const [status, response] of Object.entries(op.responses || {})) {
        const schema = response.content && response.content['application/json'] && response.content['application/json'].schema;
        box.append(schema ? block(status + ': ' + response.description, schema) : text('div', status + ': ' + response.description));
      }
      root.append(box);
    }
  }
})().catch((error) => { document.getElementById('intro').textContent = 'The OpenAPI document could not be loaded: ' + error; });
</script>
</body>
</html>`;
}
