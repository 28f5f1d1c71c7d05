// Schemas of the Responses API bodies, for the OpenAPI document only: the dialect's own translation
// (request.ts) owns the rules and the messages. Objects stay open, as OpenAI's API evolves.

import { Type } from '@sinclair/typebox';

const open = { additionalProperties: true } as const;

const InputItemSchema = Type.Object(
  {
    type: Type.Optional(
      Type.String({
        description:
          "message (default), function_call, function_call_output, custom_tool_call, custom_tool_call_output, reasoning, item_reference; hosted tools' items when OpenAI serves",
      }),
    ),
  },
  open,
);

export const ResponsesBodySchema = Type.Object(
  {
    model: Type.Optional(
      Type.String({ minLength: 1, description: 'Any model Keyway routes (not only OpenAI models); optional when `provider` names a key with a default_model' }),
    ),
    input: Type.Union([Type.String(), Type.Array(InputItemSchema)]),
    instructions: Type.Optional(Type.String()),
    stream: Type.Optional(Type.Boolean()),
    tools: Type.Optional(
      Type.Array(
        Type.Object(
          {
            type: Type.String({
              description:
                'function and custom tools on every provider; OpenAI-hosted tools (web_search, file_search, code_interpreter, mcp…) when OpenAI serves',
            }),
          },
          open,
        ),
      ),
    ),
    tool_choice: Type.Optional(Type.Unknown()),
    text: Type.Optional(Type.Object({ format: Type.Optional(Type.Object({ type: Type.String() }, open)) }, open)),
    reasoning: Type.Optional(Type.Object({ effort: Type.Optional(Type.String()) }, open)),
    max_output_tokens: Type.Optional(Type.Integer({ minimum: 1 })),
    metadata: Type.Optional(Type.Record(Type.String(), Type.String())),
    provider: Type.Optional(Type.String({ description: "Keyway: the provider to use (else the model's)" })),
    routing: Type.Optional(Type.Object({}, open)),
  },
  open,
);

export const ResponseObjectSchema = Type.Object(
  {
    id: Type.String(),
    object: Type.Literal('response'),
    status: Type.String({ description: 'completed, incomplete or failed' }),
    model: Type.String(),
    output: Type.Array(Type.Object({ type: Type.String() }, open)),
    usage: Type.Object({ input_tokens: Type.Integer(), output_tokens: Type.Integer(), total_tokens: Type.Integer() }, open),
  },
  open,
);
