// OpenAI's project service accounts, as the organisation admin API serves them (the openai-admin key
// source mints and revokes keys with these): `POST /v1/organization/projects/{project_id}/service_accounts`
// answers the account with its `api_key.value` (shown once), and `DELETE …/service_accounts/{id}`
// deletes it, after which its key is refused. Minted keys are accepted by the inference endpoints
// at once, and booked to their project. Admin keys only, as every organisation endpoint.

import { randomBytes } from 'node:crypto';
import { OPENAI_SIM_PROJECT, authorize, fail } from './openai-admin.ts';
import type { UsageLedger } from './usage-ledger.ts';

interface ServiceAccount {
  id: string;
  project: string;
  name: string;
  apiKey: string;
  apiKeyId: string;
  createdAt: number;
}

const accountsByLedger = new WeakMap<UsageLedger, Map<string, ServiceAccount>>();

/** The service accounts minted on this simulator (for tests: which keys exist, which were deleted). */
export function serviceAccountsOf(ledger: UsageLedger): ServiceAccount[] {
  return [...(accountsByLedger.get(ledger)?.values() ?? [])];
}

const PATH = /^\/v1\/organization\/projects\/([^/]+)\/service_accounts(?:\/([^/]+))?$/;

export function handleServiceAccounts(
  request: Request,
  url: URL,
  ledger: UsageLedger,
  adminKeys: ReadonlySet<string>,
  apiKeys: Set<string>,
): Promise<Response> | Response | undefined {
  const match = PATH.exec(url.pathname);
  if (match === null || request.method === 'GET') return undefined;
  const refused = authorize(request, adminKeys, apiKeys);
  if (refused) return refused;
  const project = decodeURIComponent(match[1] as string);
  const known = new Set([OPENAI_SIM_PROJECT, ...ledger.groups.values()]);
  if (!known.has(project)) return fail(404, `No such project: ${project}`, 'invalid_request_error', null);
  let accounts = accountsByLedger.get(ledger);
  if (accounts === undefined) accountsByLedger.set(ledger, (accounts = new Map()));
  const serviceAccountId = match[2] === undefined ? undefined : decodeURIComponent(match[2]);
  if (request.method === 'DELETE' && serviceAccountId !== undefined) {
    const account = accounts.get(serviceAccountId);
    if (account === undefined || account.project !== project) return fail(404, `No such service account: ${serviceAccountId}`, 'invalid_request_error', null);
    accounts.delete(serviceAccountId);
    apiKeys.delete(account.apiKey);
    return Response.json({ object: 'organization.project.service_account.deleted', id: serviceAccountId, deleted: true });
  }
  if (request.method === 'POST' && serviceAccountId === undefined) return create(request, project, accounts, ledger, apiKeys);
  return fail(405, `Invalid method for URL (${request.method} ${url.pathname})`, 'invalid_request_error', null);
}

async function create(request: Request, project: string, accounts: Map<string, ServiceAccount>, ledger: UsageLedger, apiKeys: Set<string>): Promise<Response> {
  const body = (await request.json().catch(() => undefined)) as { name?: unknown } | undefined;
  if (body === undefined || typeof body !== 'object' || body === null)
    return fail(400, 'We could not parse the JSON body of your request.', 'invalid_request_error', null);
  if (typeof body.name !== 'string' || body.name === '')
    return fail(400, "Missing required parameter: 'name'.", 'invalid_request_error', 'missing_required_parameter', 'name');
  const account: ServiceAccount = {
    id: `svc_acct_${randomBytes(8).toString('hex')}`,
    project,
    name: body.name,
    apiKey: `sk-svcacct-${randomBytes(24).toString('base64url')}`,
    apiKeyId: `key_${randomBytes(8).toString('hex')}`,
    createdAt: Math.floor(Date.now() / 1000),
  };
  accounts.set(account.id, account);
  apiKeys.add(account.apiKey);
  ledger.groups.set(account.apiKey, project);
  return Response.json({
    object: 'organization.project.service_account',
    id: account.id,
    name: account.name,
    role: 'member',
    created_at: account.createdAt,
    api_key: {
      object: 'organization.project.service_account.api_key',
      value: account.apiKey,
      name: 'Secret Key',
      created_at: account.createdAt,
      id: account.apiKeyId,
    },
  });
}
