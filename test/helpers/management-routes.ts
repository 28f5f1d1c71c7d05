// The writing routes that are not management routes, by `METHOD /path`: the inference routes (they
// read their own bodies, and are audited as requests under all_requests, never as admin actions) and
// the dashboard's sign-in and sign-out (docs/dashboard.md: what the session then does is audited).
// The suites that walk every management route (the audit trail, the body gate) leave these out.

export const NOT_MANAGEMENT_ROUTES: ReadonlySet<string> = new Set([
  'POST /v1/chat/completions',
  'POST /v1/embeddings',
  'POST /v1/messages',
  'POST /v1/messages/count_tokens',
  'POST /v1/responses',
  'POST /dashboard/session',
  'DELETE /dashboard/session',
]);
