// Schemas of the OpenAI-dialect bodies, for the OpenAPI document only. Nothing validates against
// them: the dialect's own parser (core/wire/request-validation.ts) owns the rules and the messages,
// and every body is read by Keyway's reader. Objects stay open (`additionalProperties`): Keyway
// forwards fields it does not model.

import { Type } from '@sinclair/typebox';

const open = { additionalProperties: true } as const;

/** The spec's error shape, on every endpoint but /v1/messages (Anthropic-shaped there). */
export const ErrorBodySchema = Type.Object(
  {
    error: Type.Object(
      {
        message: Type.String({ description: 'What was wrong; never a secret' }),
        type: Type.String({ description: 'invalid_request_error, authentication_error, permission_error, request_too_large, api_error, upstream_error…' }),
        code: Type.String({ description: 'The error table code: invalid_json, invalid_field, request_too_large, internal_error…' }),
        param: Type.Union([Type.String(), Type.Null()], { description: 'The field at fault, when one is' }),
      },
      { ...open, description: 'Documented extras (attempts, provider, reasons…) sit beside these fields' },
    ),
  },
  { description: 'The spec error shape' },
);

const ContentPartSchema = Type.Object(
  {
    type: Type.String({ description: 'text, image_url, input_audio, file…' }),
    text: Type.Optional(Type.String()),
  },
  open,
);

const ChatMessageSchema = Type.Object(
  {
    role: Type.Union([
      Type.Literal('system'),
      Type.Literal('developer'),
      Type.Literal('user'),
      Type.Literal('assistant'),
      Type.Literal('tool'),
      Type.Literal('function'),
    ]),
    content: Type.Optional(Type.Union([Type.String(), Type.Array(ContentPartSchema), Type.Null()])),
    name: Type.Optional(Type.String()),
    tool_calls: Type.Optional(
      Type.Array(
        Type.Object({ id: Type.String(), type: Type.Literal('function'), function: Type.Object({ name: Type.String(), arguments: Type.String() }) }, open),
      ),
    ),
    tool_call_id: Type.Optional(Type.String()),
  },
  open,
);

export const RoutingSchema = Type.Object(
  {
    strategy: Type.Optional(Type.String({ description: 'A loaded routing strategy: byok_preferred, cost_optimized, latency_optimized…' })),
    use_byok_only: Type.Optional(Type.Boolean()),
    fallback_to_parrotrouter: Type.Optional(Type.Boolean()),
    prefer_byok: Type.Optional(Type.Boolean()),
    provider_order: Type.Optional(Type.Array(Type.String())),
    fallback_reasons: Type.Optional(
      Type.Array(
        Type.Union(
          ['rate_limit', 'timeout', 'server_error', 'model_not_available', 'quota_exceeded', 'auth_error', 'context_length_exceeded', 'content_filtered'].map(
            (reason) => Type.Literal(reason),
          ),
        ),
      ),
    ),
    cost_weights: Type.Optional(
      Type.Record(Type.String(), Type.Number({ minimum: 0, maximum: 100 }), { description: 'loaded provider → price multiplier, 0 to 100' }),
    ),
    timeout_ms: Type.Optional(Type.Number({ exclusiveMinimum: 0, maximum: 3_600_000, description: 'First-byte deadline per attempt' })),
    connect_timeout_ms: Type.Optional(Type.Number({ exclusiveMinimum: 0, maximum: 3_600_000 })),
    total_timeout_ms: Type.Optional(Type.Number({ exclusiveMinimum: 0, maximum: 3_600_000, description: 'Deadline for the whole request' })),
    retries: Type.Optional(Type.Integer({ minimum: 0, maximum: 5 })),
    max_attempts: Type.Optional(Type.Integer({ minimum: 1, maximum: 20 })),
  },
  { additionalProperties: false, description: "Keyway's routing options for this request; any other member is a 400" },
);

export const ChatCompletionsBodySchema = Type.Object(
  {
    model: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 256,
        description: 'A model, `provider/model`, or a model class; optional when `provider` names a key with a default_model',
      }),
    ),
    messages: Type.Array(ChatMessageSchema, { minItems: 1 }),
    stream: Type.Optional(Type.Boolean()),
    stream_options: Type.Optional(Type.Union([Type.Object({ include_usage: Type.Optional(Type.Boolean()) }, open), Type.Null()])),
    temperature: Type.Optional(Type.Union([Type.Number(), Type.Null()])),
    top_p: Type.Optional(Type.Union([Type.Number(), Type.Null()])),
    max_tokens: Type.Optional(Type.Union([Type.Integer(), Type.Null()])),
    max_completion_tokens: Type.Optional(Type.Union([Type.Integer(), Type.Null()])),
    n: Type.Optional(Type.Union([Type.Integer(), Type.Null()])),
    stop: Type.Optional(Type.Union([Type.String(), Type.Array(Type.String()), Type.Null()])),
    tools: Type.Optional(
      Type.Array(
        Type.Object(
          {
            type: Type.Literal('function'),
            function: Type.Object({ name: Type.String(), description: Type.Optional(Type.String()), parameters: Type.Optional(Type.Object({}, open)) }, open),
          },
          open,
        ),
      ),
    ),
    tool_choice: Type.Optional(Type.Union([Type.String(), Type.Object({}, open)])),
    parallel_tool_calls: Type.Optional(Type.Boolean()),
    response_format: Type.Optional(Type.Object({ type: Type.String() }, open)),
    user: Type.Optional(Type.String()),
    provider: Type.Optional(Type.String({ description: 'Serve with this provider only' })),
    routing: Type.Optional(RoutingSchema),
  },
  { ...open, description: "A Chat Completions request, plus Keyway's `provider` and `routing`" },
);

const UsageSchema = Type.Object({ prompt_tokens: Type.Integer(), completion_tokens: Type.Integer(), total_tokens: Type.Integer() }, open);

export const ChatCompletionSchema = Type.Object(
  {
    id: Type.String(),
    object: Type.Literal('chat.completion'),
    created: Type.Integer(),
    model: Type.String(),
    choices: Type.Array(
      Type.Object(
        {
          index: Type.Integer(),
          message: Type.Object({ role: Type.Literal('assistant'), content: Type.Union([Type.String(), Type.Null()]) }, open),
          finish_reason: Type.String(),
        },
        open,
      ),
    ),
    usage: UsageSchema,
  },
  { ...open, description: 'A chat completion; with `stream: true`, Server-Sent Events of chat.completion.chunk objects instead' },
);

export const EmbeddingsBodySchema = Type.Object(
  {
    model: Type.String({ minLength: 1 }),
    input: Type.Union([
      Type.String({ minLength: 1 }),
      Type.Array(Type.String({ minLength: 1 }), { minItems: 1 }),
      Type.Array(Type.Integer(), { minItems: 1 }),
      Type.Array(Type.Array(Type.Integer()), { minItems: 1 }),
    ]),
    encoding_format: Type.Optional(Type.Union([Type.Literal('float'), Type.Literal('base64')])),
    dimensions: Type.Optional(Type.Integer({ minimum: 1 })),
    user: Type.Optional(Type.String()),
    provider: Type.Optional(Type.String()),
    routing: Type.Optional(RoutingSchema),
  },
  open,
);

export const EmbeddingsSchema = Type.Object(
  {
    object: Type.Literal('list'),
    data: Type.Array(
      Type.Object({ object: Type.Literal('embedding'), index: Type.Integer(), embedding: Type.Union([Type.Array(Type.Number()), Type.String()]) }, open),
    ),
    model: Type.String(),
    usage: Type.Object({ prompt_tokens: Type.Integer(), total_tokens: Type.Integer() }, open),
  },
  open,
);

export const ModelSchema = Type.Object(
  { id: Type.String(), object: Type.Literal('model'), created: Type.Integer(), owned_by: Type.String(), provider: Type.String() },
  open,
);

export const ModelListSchema = Type.Object({
  object: Type.Literal('list'),
  data: Type.Array(ModelSchema),
});

export const RoutingSettingsBodySchema = Type.Object(
  { routing: RoutingSchema },
  { additionalProperties: false, description: 'The account default routing (a bare routing object is accepted too)' },
);

/** A model name in a class override: not blank, no spaces around it (core/routing/model-classes.ts checks it). */
const ClassModelName = Type.String({ minLength: 1, maxLength: 200, pattern: '^\\S(.*\\S)?$' });

export const ModelClassesBodySchema = Type.Object({
  classes: Type.Record(
    Type.String({ pattern: '^[\\w.-]{1,64}$' }),
    Type.Union([
      Type.Object(
        {
          models: Type.Optional(Type.Record(Type.String(), ClassModelName, { maxProperties: 100, description: 'provider → model name' })),
          members: Type.Optional(Type.Array(ClassModelName, { maxItems: 100 })),
          description: Type.Optional(Type.String({ maxLength: 1000 })),
        },
        { additionalProperties: false },
      ),
      Type.Null(),
    ]),
    {
      maxProperties: 100,
      description:
        'class name → its override (models merged into the table, members and description replaced) or null to remove the class; at most 100 classes; the body replaces every override stored before, and {} clears them',
    },
  ),
});

export const ProviderKeySchema = Type.Object(
  {
    name: Type.String(),
    key_id: Type.String(),
    owner: Type.Union([Type.Literal('account'), Type.Literal('platform')]),
    status: Type.String({ description: 'verifying (not checked yet), active, invalid, unreachable, disabled…' }),
    masked_key: Type.String(),
    fingerprint: Type.String(),
    organization_id: Type.Union([Type.String(), Type.Null()]),
    settings: Type.Object({}, open),
    weight: Type.Number(),
    available_models: Type.Array(Type.String()),
    models_checked_at: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
    created_at: Type.String(),
    key_storage: Type.Optional(
      Type.Union([Type.Literal('encrypted'), Type.Literal('reference')], { description: 'reference: resolved by a key source at use (never-store mode)' }),
    ),
    key_reference: Type.Optional(Type.Object({ source: Type.String(), locator: Type.String(), options: Type.Optional(Type.Object({}, open)) }, open)),
  },
  { ...open, description: 'A stored provider key: never the key itself' },
);

export const ProviderKeysSchema = Type.Object({ providers: Type.Array(ProviderKeySchema) }, open);
