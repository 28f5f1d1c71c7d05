// The request bodies of the teams routes, in the seed's names (byok-use-case.txt, "Team BYOK
// Configuration"), plus Keyway's own team settings (allowed_ips, rate_limits, hosted_tools). Unknown
// fields are refused: a misspelt limit silently ignored would be a policy not enforced.

import { FormatRegistry, Type, type Static, type TString } from '@sinclair/typebox';
import { AllowedIpsSchema, KeyEnvironmentSchema } from '../../core/spec/key-settings.ts';
import { displayName, displayNameSchema } from '../../core/spec/display-name.ts';
import { MAX_PROJECT_TAG_LENGTH, PROJECT_TAG_PATTERN } from '../../core/wire/project-tag.ts';
import { looksLikeSecret } from '../../core/wire/secret-fields.ts';
import { isServerPattern } from '../../core/wire/server-urls.ts';

const strict = { additionalProperties: false } as const;

export const PROVIDER_NAME_PATTERN = '^[a-z0-9][a-z0-9_.-]{0,63}$';

/** The most providers a team's `byok_permissions.providers` may name. */
export const MAX_TEAM_PROVIDERS = 100;

// A model entry as a request can name it: no space at either end and no control character. Such an
// entry matched no model, and the team's members were refused the model meant (QA20).
const MODEL_ENTRY_PATTERN =
  '^[^\\s\\u0000-\\u001f\\u007f-\\u009f\\u2028\\u2029](?:[^\\u0000-\\u001f\\u007f-\\u009f\\u2028\\u2029]*[^\\s\\u0000-\\u001f\\u007f-\\u009f\\u2028\\u2029])?$';

/** `model`: the grammar of a models entry (today's, or any name for what is already stored). */
function providerPermissionSchema(model: TString) {
  return Type.Object(
    {
      enabled: Type.Optional(Type.Boolean({ description: 'false refuses every request of the team to this provider (default: true)' })),
      models: Type.Optional(
        Type.Array(model, {
          maxItems: 1000,
          description: 'the models the team may use on this provider (absent: all)',
        }),
      ),
      max_cost_per_day: Type.Optional(Type.Number({ minimum: 0, maximum: 1_000_000_000, description: 'USD per UTC day, at list price' })),
      require_approval_above: Type.Optional(
        Type.Number({ minimum: 0, maximum: 1_000_000_000, description: "USD: a request whose worst-case cost is above it needs an admin's approval" }),
      ),
    },
    strict,
  );
}

export const ProviderPermissionSchema = providerPermissionSchema(
  Type.String({
    minLength: 1,
    maxLength: 200,
    pattern: MODEL_ENTRY_PATTERN,
    description: 'an exact model name or a `*` glob',
    errorMessage: { pattern: 'must be a model name or a * glob as a request names it: no space at either end, no control characters' },
  }),
);

const StoredProviderPermissionSchema = providerPermissionSchema(Type.String({ minLength: 1, maxLength: 200 }));

// A tag shaped like a key is refused on every request (core/wire/secret-fields.ts): a team allowing one
// would allow a project no request can name, so the entry is refused when the team is written.
const PROJECT_TAG = 'keyway-project-tag';
if (!FormatRegistry.Has(PROJECT_TAG)) FormatRegistry.Set(PROJECT_TAG, (tag) => !looksLikeSecret(tag));

const TeamNameSchema = displayNameSchema("the team's display name");

/** The name a team is stored under: without the spaces around it. */
export const teamName = displayName;

/** `projectTag`: the grammar of an allowed project (today's, or any string for what is already stored). */
function usageControlsSchema(projectTag: TString) {
  return Type.Object(
    {
      log_all_requests: Type.Optional(Type.Boolean()),
      require_project_tag: Type.Optional(Type.Boolean({ description: 'requests must carry X-Project-Tag' })),
      allowed_projects: Type.Optional(Type.Array(projectTag, { maxItems: 1000 })),
      block_sensitive_content: Type.Optional(Type.Boolean()),
    },
    strict,
  );
}

// A project is named by X-Project-Tag, whose grammar (core/wire/project-tag.ts) every request is held to:
// an entry outside it (`projé`, `project-a `, 70 characters) matches no request that can be sent, and
// with require_project_tag locks the team out behind a 201 that said nothing (QA20).
const TAG_RULE = `at most ${MAX_PROJECT_TAG_LENGTH} printable ASCII characters, without a space at either end`;

export const UsageControlsSchema = usageControlsSchema(
  Type.String({
    minLength: 1,
    maxLength: MAX_PROJECT_TAG_LENGTH,
    pattern: PROJECT_TAG_PATTERN,
    format: PROJECT_TAG,
    errorMessage: {
      maxLength: `must be usable as an X-Project-Tag (${TAG_RULE}), so that a request can name it`,
      pattern: `must be usable as an X-Project-Tag (${TAG_RULE}), so that a request can name it`,
      format: 'looks like an API key: X-Project-Tag values shaped like keys are refused on every request, so no request could use this project',
    },
  }),
);

function byokPermissionsSchema(usageControls: ReturnType<typeof usageControlsSchema>, providerPermission: typeof ProviderPermissionSchema) {
  return Type.Object(
    {
      providers: Type.Optional(
        Type.Record(Type.String({ pattern: PROVIDER_NAME_PATTERN }), providerPermission, {
          additionalProperties: false,
          // Bounded as every other list of a team is: 50,000 entries were taken, each read on every request of the team.
          maxProperties: MAX_TEAM_PROVIDERS,
          errorMessage: `must be an object keyed by provider name (lowercase letters, digits, '-', '_' and '.', as in openai, anthropic, google), of at most ${MAX_TEAM_PROVIDERS} providers`,
          description: `per provider name (openai, anthropic, google…), at most ${MAX_TEAM_PROVIDERS}: a team that lists providers may use those only`,
        }),
      ),
      usage_controls: Type.Optional(usageControls),
    },
    strict,
  );
}

export const ByokPermissionsSchema = byokPermissionsSchema(UsageControlsSchema, ProviderPermissionSchema);

export const RateLimitsSchema = Type.Object(
  {
    requests_per_minute: Type.Optional(Type.Integer({ minimum: 1, maximum: 10_000_000 })),
    tokens_per_minute: Type.Optional(Type.Integer({ minimum: 1, maximum: 10_000_000_000 })),
  },
  strict,
);

// The hosted-tools policy's own grammar (core/wire/server-urls.ts): an entry it could not
// match with is refused when written (400 naming it), as a bad allowed_ips entry is, instead of
// silently matching nothing (QA12).
const MCP_SERVER_PATTERN = 'keyway-mcp-server-pattern';
if (!FormatRegistry.Has(MCP_SERVER_PATTERN)) FormatRegistry.Set(MCP_SERVER_PATTERN, isServerPattern);

export const HostedToolsSchema = Type.Object(
  {
    web_search: Type.Optional(Type.Boolean()),
    code_execution: Type.Optional(Type.Boolean()),
    mcp_servers: Type.Optional(
      Type.Array(
        Type.String({
          minLength: 1,
          maxLength: 2048,
          format: MCP_SERVER_PATTERN,
          description: 'an MCP server URL or a `*` glob of them',
          errorMessage: {
            format:
              'must be * or an MCP server URL pattern, scheme://host[:port][/path] with * for host labels, the port or the path (https://*.mycorp.com/*), without user info or whitespace',
          },
        }),
        { maxItems: 256 },
      ),
    ),
  },
  strict,
);

export const MEMBER_ROLES = ['developer', 'viewer', 'admin'] as const;

export const MemberSchema = Type.Object(
  {
    // No whitespace and no control character (NUL, ESC, DEL, C1): an email is shown and exported as is.
    email: Type.String({
      minLength: 3,
      maxLength: 320,
      pattern: '^[^\\s@\\u0000-\\u001f\\u007f-\\u009f]+@[^\\s@\\u0000-\\u001f\\u007f-\\u009f]+$',
      description: 'an email address',
    }),
    role: Type.Union(
      MEMBER_ROLES.map((role) => Type.Literal(role)),
      { description: 'developer calls models, viewer reads usage only, admin also manages the team' },
    ),
    byok_access: Type.Optional(
      Type.Boolean({ description: "whether the member's key may spend the account's provider keys (default: false for viewers, true otherwise)" }),
    ),
    allowed_ips: Type.Optional(AllowedIpsSchema),
    environment: Type.Optional(KeyEnvironmentSchema),
  },
  strict,
);

const reissueProperties = { allowed_ips: Type.Optional(AllowedIpsSchema), environment: Type.Optional(KeyEnvironmentSchema) };

/**
 * What a member's re-issued key changes (POST /v1/teams/{id}/members/{member_id}/keys, an optional
 * body), as the route checks it: the grammar and bounds of a member's on add. `environment: null` is
 * taken out before (it removes the member's environment), so a wrong name is refused with its rule.
 */
export const ReissueChangeSchema = Type.Object(reissueProperties, strict);

/** The re-issue body as the OpenAPI document shows it: optional. */
export const ReissueKeySchema = Type.Optional(
  Type.Object(
    {
      ...reissueProperties,
      environment: Type.Optional(Type.Union([KeyEnvironmentSchema, Type.Null()], { description: "the new key's environment; null: none" })),
    },
    {
      ...strict,
      description: "optional: the settings the new key gets instead of the member's (allowed_ips [] allows every address); no body keeps them",
    },
  ),
);

/** A validated re-issue body: a field left out keeps the member's setting. */
export interface ReissueChange {
  allowed_ips?: string[];
  environment?: string | null;
}

/** The team's settings, without its members: what PATCH merges into and the result is checked against. */
const teamSettingsProperties = {
  name: TeamNameSchema,
  byok_permissions: Type.Optional(ByokPermissionsSchema),
  allowed_ips: Type.Optional(AllowedIpsSchema),
  rate_limits: Type.Optional(RateLimitsSchema),
  hosted_tools: Type.Optional(HostedToolsSchema),
};

export const TeamSettingsSchema = Type.Object(teamSettingsProperties, strict);

/**
 * The settings a PATCH merges into, with the name and the lists whose entries gained a stricter grammar in a later
 * release (allowed_ips, hosted_tools.mcp_servers, usage_controls.allowed_projects, providers.<p>.models) taken as any strings: a team stored before
 * must stay editable (a rename, a budget) without first fixing a list the patch does not touch. What
 * the patch itself sets is checked against TeamSettingsSchema's grammar (plugins/teams/index.ts).
 */
export const StoredTeamSettingsSchema = Type.Object(
  {
    ...teamSettingsProperties,
    name: Type.String({ maxLength: 200 }),
    byok_permissions: Type.Optional(byokPermissionsSchema(usageControlsSchema(Type.String({ maxLength: 200 })), StoredProviderPermissionSchema)),
    allowed_ips: Type.Optional(Type.Array(Type.String(), { maxItems: 256 })),
    hosted_tools: Type.Optional(
      Type.Object({ ...HostedToolsSchema.properties, mcp_servers: Type.Optional(Type.Array(Type.String(), { maxItems: 256 })) }, strict),
    ),
  },
  strict,
);

export const CreateTeamSchema = Type.Object({ ...teamSettingsProperties, members: Type.Optional(Type.Array(MemberSchema, { maxItems: 1000 })) }, strict);

/** PATCH: a JSON merge patch (RFC 7386) of the team's settings: objects merge, `null` removes, arrays replace. */
export const PatchTeamSchema = Type.Object(
  {
    name: Type.Optional(TeamNameSchema),
    byok_permissions: Type.Optional(Type.Union([Type.Record(Type.String(), Type.Unknown()), Type.Null()])),
    allowed_ips: Type.Optional(Type.Union([Type.Array(Type.Unknown()), Type.Null()])),
    rate_limits: Type.Optional(Type.Union([Type.Record(Type.String(), Type.Unknown()), Type.Null()])),
    hosted_tools: Type.Optional(Type.Union([Type.Record(Type.String(), Type.Unknown()), Type.Null()])),
  },
  { additionalProperties: false, description: 'a JSON merge patch of the team: objects merge, null removes, arrays replace; members have their own routes' },
);

export type CreateTeamBody = Static<typeof CreateTeamSchema>;
export type TeamSettings = Static<typeof TeamSettingsSchema>;
export type MemberBody = Static<typeof MemberSchema>;
export type TeamPatch = Static<typeof PatchTeamSchema>;

export const MemberAnswerSchema = Type.Object({
  id: Type.String(),
  team_id: Type.String(),
  email: Type.String(),
  role: Type.String(),
  byok_access: Type.Boolean(),
  key_id: Type.String(),
  key_status: Type.Union([Type.Literal('active'), Type.Literal('revoked')], {
    description: 'revoked: the key was revoked (DELETE /v1/keys/{id}); POST /v1/teams/{id}/members/{member_id}/keys issues a new one',
  }),
  masked_key: Type.Union([Type.String(), Type.Null()], { description: 'null once the key is revoked' }),
  allowed_ips: Type.Optional(Type.Array(Type.String())),
  environment: Type.Optional(Type.String()),
  created_at: Type.String(),
  api_key: Type.Optional(Type.String({ description: 'the member key, answered once when it is issued' })),
});

export const TeamAnswerSchema = Type.Object({
  id: Type.String(),
  account_id: Type.String(),
  name: Type.String(),
  byok_permissions: ByokPermissionsSchema,
  allowed_ips: Type.Optional(Type.Array(Type.String())),
  rate_limits: Type.Optional(RateLimitsSchema),
  hosted_tools: Type.Optional(HostedToolsSchema),
  created_at: Type.String(),
  updated_at: Type.String(),
  members: Type.Array(MemberAnswerSchema),
  warnings: Type.Optional(
    Type.Array(Type.String(), { description: 'POST and PATCH: providers with keys the provider list now shuts the team out of, and how to allow one' }),
  ),
});
