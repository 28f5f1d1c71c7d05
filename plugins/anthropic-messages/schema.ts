// Schemas of the Messages API bodies, for the OpenAPI document only: the dialect's own translation
// (request.ts) owns the rules and the messages. Objects stay open, as Anthropic's API evolves.

import { Type } from '@sinclair/typebox';

const open = { additionalProperties: true } as const;

const ContentBlockSchema = Type.Object(
  {
    type: Type.String({ description: 'text, image, document, search_result, tool_use, tool_result, thinking…' }),
    text: Type.Optional(Type.String()),
  },
  open,
);

const MessageSchema = Type.Object(
  {
    role: Type.Union([Type.Literal('user'), Type.Literal('assistant')]),
    content: Type.Union([Type.String(), Type.Array(ContentBlockSchema)]),
  },
  open,
);

const SystemSchema = Type.Union([Type.String(), Type.Array(Type.Object({ type: Type.Literal('text'), text: Type.String() }, open))]);

const ToolSchema = Type.Object({ name: Type.String(), description: Type.Optional(Type.String()), input_schema: Type.Object({}, open) }, open);

const ToolChoiceSchema = Type.Object(
  { type: Type.Union([Type.Literal('auto'), Type.Literal('any'), Type.Literal('tool'), Type.Literal('none')]), name: Type.Optional(Type.String()) },
  open,
);

export const MessagesBodySchema = Type.Object(
  {
    model: Type.Optional(
      Type.String({
        minLength: 1,
        description: 'Any model Keyway routes (not only Anthropic models); optional when `provider` names a key with a default_model',
      }),
    ),
    max_tokens: Type.Integer({ minimum: 1 }),
    messages: Type.Array(MessageSchema, { minItems: 1 }),
    system: Type.Optional(SystemSchema),
    stream: Type.Optional(Type.Boolean()),
    temperature: Type.Optional(Type.Number()),
    top_p: Type.Optional(Type.Number()),
    top_k: Type.Optional(Type.Integer()),
    stop_sequences: Type.Optional(Type.Array(Type.String())),
    tools: Type.Optional(Type.Array(ToolSchema)),
    tool_choice: Type.Optional(ToolChoiceSchema),
    thinking: Type.Optional(Type.Object({ type: Type.String(), budget_tokens: Type.Optional(Type.Integer()) }, open)),
    metadata: Type.Optional(Type.Object({ user_id: Type.Optional(Type.String()) }, open)),
  },
  { ...open, description: "An Anthropic Messages request; Keyway's `provider` and `routing` extras are accepted too" },
);

export const MessageSchemaResponse = Type.Object(
  {
    id: Type.String(),
    type: Type.Literal('message'),
    role: Type.Literal('assistant'),
    model: Type.String(),
    content: Type.Array(ContentBlockSchema),
    stop_reason: Type.Union([Type.String(), Type.Null()]),
    usage: Type.Object({ input_tokens: Type.Integer(), output_tokens: Type.Integer() }, open),
  },
  { ...open, description: 'A message; with `stream: true`, Server-Sent Events in the Messages stream format instead' },
);

export const CountTokensBodySchema = Type.Object(
  {
    model: Type.String({ minLength: 1 }),
    messages: Type.Array(MessageSchema, { minItems: 1 }),
    system: Type.Optional(SystemSchema),
    tools: Type.Optional(Type.Array(ToolSchema)),
  },
  open,
);

export const CountTokensSchema = Type.Object({ input_tokens: Type.Integer() });
