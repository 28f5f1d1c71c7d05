// The teams the stored-response suites scope by: each may use OpenAI's gpt-4o models only, and its
// members' keys are what the suites call with.

import type { ClientWorld } from '../clients/client-fixtures.ts';
import { call } from '../helpers/gateway.ts';

export type MemberRole = 'admin' | 'developer';

/** A member key for each role; '' for a role the team was created without. */
export type TeamKeys = Record<MemberRole, string>;

/** The part before the @ of a role's member: `lead@teamred.example`, `dev@teamred.example`. */
const MAILBOX: Record<MemberRole, string> = { admin: 'lead', developer: 'dev' };

/** Creates, with the account's admin key, a team `name` with one member for each of `roles`; their keys. */
export async function createTeam(world: ClientWorld, name: string, roles: readonly MemberRole[]): Promise<TeamKeys> {
  const domain = `${name.replace(' ', '').toLowerCase()}.example`;
  const response = await call(
    world.gateway,
    'POST',
    '/v1/teams',
    {
      name,
      byok_permissions: { providers: { openai: { enabled: true, models: ['gpt-4o*'] } } },
      members: roles.map((role) => ({ email: `${MAILBOX[role]}@${domain}`, role, byok_access: true })),
    },
    { key: world.gateway.defaultAdminKey },
  );
  const body = (await response.json()) as { members: Array<{ role: string; api_key: string }> };
  if (response.status !== 201) throw new Error(`creating ${name} failed: ${response.status} ${JSON.stringify(body)}`);
  const keyOf = (role: MemberRole): string => body.members.find((member) => member.role === role)?.api_key ?? '';
  return { admin: keyOf('admin'), developer: keyOf('developer') };
}
