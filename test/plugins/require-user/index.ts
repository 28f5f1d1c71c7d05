// An out-of-tree policy that reads the body: every inference request must name its end user, in
// OpenAI's `user` field (the Responses API's too; the Anthropic Messages dialect fills it from
// `metadata.user_id`), or it is refused with 400 invalid_field naming `user`. Token counting is left
// alone: Anthropic's count_tokens takes no metadata, so a client could never satisfy it there. Like
// refuse-model it imports only types from core, so the compiled binary can load it.

import type { PluginDefinition, RequestContext } from '../../../core/spec/plugin.ts';

const PLUGIN_NAME = 'require-user';

export class EndUserRequired extends Error {
  override name = 'EndUserRequired';
  readonly keywayCode = 'invalid_field';
  readonly keywayParam = 'user';
}

function endUserOf(context: RequestContext): string {
  const user = context.request.user;
  return typeof user === 'string' ? user.trim() : '';
}

export const requireUserPlugin: PluginDefinition = {
  name: PLUGIN_NAME,
  version: '1.0.0',
  // The literal, not PLUGIN_API_VERSION: importing the constant would import core at run time.
  apiVersion: 1,
  kind: 'policy',
  description: "Refuses inference requests that do not name their end user in 'user' (400 invalid_field)",
  environment: [],
  hooks: {
    auth(context) {
      if (context.endpoint === 'count_tokens' || endUserOf(context) !== '') return;
      throw new EndUserRequired(
        `Name the end user in the 'user' field (metadata.user_id on /v1/messages); the ${PLUGIN_NAME} policy refuses anonymous requests.`,
      );
    },
  },
};

export default requireUserPlugin;
