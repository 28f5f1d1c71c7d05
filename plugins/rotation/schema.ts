// Request bodies of the rotation API (PRODUCT.md "Key lifecycle"), validated with TypeBox.

import { Type, type Static } from '@sinclair/typebox';
import { KeyMaterialSchema } from '../../core/spec/key-material.ts';

const WebhooksSchema = Type.Array(
  Type.String({
    pattern: '^https://[^\\s/]+\\S*$',
    maxLength: 2048,
    errorMessage: { pattern: 'must be an https:// URL' },
    description: 'https:// URLs that receive the signed key_rotation.started and key_rotation.completed events',
  }),
  { maxItems: 10 },
);

const RotationOptionFields = {
  rotation_strategy: Type.Optional(
    Type.Union([Type.Literal('gradual'), Type.Literal('immediate')], { description: 'gradual moves traffic over the grace period; immediate at once' }),
  ),
  grace_period_minutes: Type.Optional(
    Type.Number({
      minimum: 0,
      maximum: 43_200,
      description: 'How long the old key stays (gradual: the length of the move). Default 60 (gradual) or 5 (immediate)',
    }),
  ),
  test_before_switch: Type.Optional(
    Type.Boolean({ description: 'List models with the new key first; a failure answers 422 rotation_test_failed and changes nothing' }),
  ),
  notification_webhooks: Type.Optional(WebhooksSchema),
};

export const RotateBodySchema = Type.Object(
  {
    provider: Type.String({ minLength: 1, maxLength: 64, description: 'The provider whose key is rotated' }),
    new_api_key: KeyMaterialSchema({ description: 'The new provider key, as the provider issued it' }),
    key_id: Type.Optional(Type.String({ minLength: 1, maxLength: 64, description: 'The key to replace, when the account has several for the provider' })),
    ...RotationOptionFields,
  },
  { additionalProperties: false },
);
export type RotateBody = Static<typeof RotateBodySchema>;

const KeySourceSchema = Type.Object(
  {
    source: Type.String({ minLength: 1, maxLength: 64, description: 'A loaded key-source plugin: env, file, command, vault-kv, openai-admin…' }),
    locator: Type.String({ minLength: 1, maxLength: 2048, description: 'What the source reads, in its own terms; never the key' }),
    options: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
  },
  { additionalProperties: false },
);

export const ScheduleBodySchema = Type.Object(
  {
    provider: Type.String({ minLength: 1, maxLength: 64 }),
    schedule: Type.String({ minLength: 1, maxLength: 200, description: 'Five-field cron (minute hour day-of-month month day-of-week)' }),
    timezone: Type.Optional(Type.String({ minLength: 1, maxLength: 64, description: 'IANA time zone; UTC when absent' })),
    notification_email: Type.Optional(
      Type.String({
        maxLength: 320,
        pattern: '^[^\\s@<>(),;:"]+@[^\\s@<>(),;:"]+\\.[^\\s@<>(),;:"]+$',
        errorMessage: { pattern: 'must be an e-mail address' },
      }),
    ),
    key_id: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
    key_source: Type.Optional(KeySourceSchema),
    ...RotationOptionFields,
  },
  { additionalProperties: false },
);
export type ScheduleBody = Static<typeof ScheduleBodySchema>;

export const KeyPolicyBodySchema = Type.Object(
  {
    max_key_age_days: Type.Union([Type.Integer({ minimum: 1, maximum: 3650 }), Type.Null()], {
      description: 'A provider key older than this raises rotation_due (once per key per period); null turns it off',
    }),
    notification_email: Type.Optional(
      Type.Union([
        Type.String({
          maxLength: 320,
          pattern: '^[^\\s@<>(),;:"]+@[^\\s@<>(),;:"]+\\.[^\\s@<>(),;:"]+$',
          errorMessage: { pattern: 'must be an e-mail address' },
        }),
        Type.Null(),
      ]),
    ),
  },
  { additionalProperties: false },
);
