// What the OpenAPI document says about each core route (core/http/app.ts passes these as route
// options). The schemas are for the document only: Keyway reads and validates every body itself.

import { AccountBodySchema, KeyBodySchema } from '../credentials/account-routes.ts';
import { ProviderKeysBodySchema } from '../credentials/provider-key-routes.ts';
import { ConvertBodySchema } from '../credentials/key-references.ts';
import { MasterKeyRotationBodySchema } from '../credentials/master-key-routes.ts';
import { HealthPolicySchema } from '../routing/health/routes.ts';
import {
  ChatCompletionSchema,
  ChatCompletionsBodySchema,
  EmbeddingsBodySchema,
  EmbeddingsSchema,
  ModelClassesBodySchema,
  ModelListSchema,
  ModelSchema,
  ProviderKeysSchema,
  RoutingSettingsBodySchema,
} from './openapi-schemas.ts';
import type { RouteDocs } from './openapi.ts';
import { PlatformSettingsSchema } from './platform-routes.ts';
import { PriceOverridesBodySchema } from './price-routes.ts';

const inference = 'Inference';
const providerKeys = 'Provider keys';
const accounts = 'Accounts and keys';
const routing = 'Routing and health';
const platform = 'Platform';
const service = 'Service';

export const routeDocs = {
  health: { summary: 'Liveness: the process answers', tag: service, public: true },
  ready: { summary: 'Readiness: storage reachable, configuration loaded, provider keys decryptable', tag: service, public: true },
  chatCompletions: {
    summary: 'Chat Completions, streamed or not, over every provider',
    tag: inference,
    body: ChatCompletionsBodySchema,
    response: ChatCompletionSchema,
  },
  embeddings: { summary: 'Embeddings', tag: inference, body: EmbeddingsBodySchema, response: EmbeddingsSchema },
  listModels: { summary: "The models the caller may call: what its keys report, narrowed by its team's policy", tag: inference, response: ModelListSchema },
  retrieveModel: { summary: "One model of the caller's list (404 model_not_found for any other)", tag: inference, response: ModelSchema },
  addProviderKeys: {
    summary: "Store the account's provider keys (encrypted); each says `verifying` until its provider has been checked",
    tag: providerKeys,
    body: ProviderKeysBodySchema,
    response: ProviderKeysSchema,
    status: 201,
  },
  listProviderKeys: { summary: "The account's provider keys, their status and models", tag: providerKeys, response: ProviderKeysSchema },
  removeProviderKey: { summary: "Delete one of the account's provider keys", tag: providerKeys, status: 204 },
  convertProviderKey: {
    summary: 'Convert a stored (encrypted) provider key into a key reference and wipe its ciphertext (never-store mode)',
    tag: providerKeys,
    body: ConvertBodySchema,
  },
  addPlatformKeys: {
    summary: 'Store platform provider keys (operator)',
    tag: providerKeys,
    body: ProviderKeysBodySchema,
    response: ProviderKeysSchema,
    status: 201,
  },
  listPlatformKeys: { summary: 'The platform provider keys (operator)', tag: providerKeys, response: ProviderKeysSchema },
  removePlatformKey: { summary: 'Delete a platform provider key (operator)', tag: providerKeys, status: 204 },
  rotateMasterKey: {
    summary: 'Re-wrap every stored data key under the newest master key version, online; answers the counts (operator)',
    tag: platform,
    body: MasterKeyRotationBodySchema,
  },
  masterKeyStatus: { summary: 'Master key versions, what stored ciphertexts use, rotation progress, keys to re-enter (operator)', tag: platform },
  connections: { summary: 'In-flight upstream connections and their queues (operator)', tag: platform },
  createAccount: { summary: 'Create an account and its first admin key (operator)', tag: accounts, body: AccountBodySchema, status: 201 },
  listAccounts: { summary: 'Every account (operator)', tag: accounts },
  createKey: { summary: "Create a gateway key in the caller's account; the key is shown once", tag: accounts, body: KeyBodySchema, status: 201 },
  listKeys: { summary: "The account's gateway keys, masked", tag: accounts },
  revokeKey: { summary: 'Revoke a gateway key', tag: accounts, status: 204 },
  listPlugins: { summary: 'The loaded plugins (operator)', tag: platform },
  getSettings: { summary: "The account's settings", tag: routing },
  putRouting: { summary: "Set the account's default routing", tag: routing, body: RoutingSettingsBodySchema },
  getHealth: { summary: "Provider health for the account's keys", tag: routing },
  putHealthCheck: { summary: "Set the account's health-check policy", tag: routing, body: HealthPolicySchema },
  getModelClasses: { summary: 'The model classes the caller can name as a model', tag: routing },
  putAccountModelClasses: { summary: "Replace the account's model-class overrides ({} clears them)", tag: routing, body: ModelClassesBodySchema },
  putPlatformModelClasses: {
    summary: "Replace the operator's model-class overrides for every account ({} clears them)",
    tag: routing,
    body: ModelClassesBodySchema,
  },
  putPlatformSettings: { summary: 'Set the platform markup and BYOK fee (operator)', tag: platform, body: PlatformSettingsSchema },
  listPrices: { summary: 'The effective price table, each model with its source: shipped, file or override (operator)', tag: platform },
  putPrices: { summary: 'Set per-model price overrides (operator)', tag: platform, body: PriceOverridesBodySchema },
  deletePrice: { summary: "Remove a model's price override (operator)", tag: platform },
  reloadPrices: { summary: 'Re-read KEYWAY_PRICES_FILE (operator)', tag: platform },
} satisfies Record<string, RouteDocs>;
