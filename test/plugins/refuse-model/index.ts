// An out-of-tree policy plugin: refuses one model. It is written to load in the compiled single
// binary too, where `../../core/...` does not exist on disk at run time. So it imports only types
// from core (erased when the file is transpiled) and builds the plugin object by hand instead of
// calling `definePlugin`.

import { Type, type Static } from '@sinclair/typebox';
import type { PluginDefinition, RequestContext } from '../../../core/spec/plugin.ts';

const PLUGIN_NAME = 'refuse-model';

export const configSchema = Type.Object({
  model: Type.String({ minLength: 1, default: 'refused-model-x', description: 'The model name this plugin refuses' }),
});

export type RefuseModelConfig = Static<typeof configSchema>;

/**
 * A refusal the core recognises without `instanceof KeywayError` (this file cannot import the
 * class): `keywayCode` names a row of the error table, the message is sent to the client.
 */
export class PolicyRefusal extends Error {
  override name = 'PolicyRefusal';

  constructor(
    readonly keywayCode: string,
    message: string,
    readonly keywayParam: string | null = null,
  ) {
    super(message);
  }
}

/** The model name without a `provider/` prefix, as the route stage resolved it. */
function requestedModel(context: RequestContext): string {
  return context.resolution?.model ?? context.request.model;
}

const plugin: PluginDefinition<typeof configSchema> = {
  name: PLUGIN_NAME,
  version: '1.0.0',
  // The literal, not PLUGIN_API_VERSION: importing the constant would import core at run time.
  apiVersion: 1,
  kind: 'policy',
  description: 'Refuses one configured model with 403 model_not_allowed',
  configSchema,
  setup(context) {
    const refused = context.config.model;
    return {
      hooks: {
        // The route stage: the model name is resolved by now, so `openai/<model>` and `provider:`
        // forms are caught as well as the bare name.
        route(requestContext) {
          const model = requestedModel(requestContext);
          if (model !== refused && requestContext.request.model !== refused) return;
          throw new PolicyRefusal('model_not_allowed', `The model '${refused}' is not allowed by the ${PLUGIN_NAME} policy.`, 'model');
        },
      },
    };
  },
};

export default plugin;
