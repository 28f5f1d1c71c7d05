// An out-of-tree policy plugin: every inference request must say which project it is for, in the
// `X-Project-Tag` header, or it is refused with 403 project_tag_required. Like refuse-model it is
// written to load in the compiled single binary: it imports only types from core (erased when the
// file is transpiled) and builds the plugin object by hand instead of calling `definePlugin`.

import type { PluginDefinition, RequestContext } from '../../../core/spec/plugin.ts';

const PLUGIN_NAME = 'require-header';

/** The header the core also reads into `context.projectTag` for usage rows. */
export const PROJECT_TAG_HEADER = 'x-project-tag';

/**
 * A refusal the core recognises without `instanceof KeywayError` (this file cannot import the
 * class): `keywayCode` names a row of the error table, the message is sent to the client.
 */
export class ProjectTagRequired extends Error {
  override name = 'ProjectTagRequired';
  readonly keywayCode = 'project_tag_required';
  readonly keywayParam = PROJECT_TAG_HEADER;
}

function projectTagOf(context: RequestContext): string {
  return context.headers.get(PROJECT_TAG_HEADER)?.trim() ?? '';
}

export const requireHeaderPlugin: PluginDefinition = {
  name: PLUGIN_NAME,
  version: '1.0.0',
  // The literal, not PLUGIN_API_VERSION: importing the constant would import core at run time.
  apiVersion: 1,
  kind: 'policy',
  description: 'Refuses inference requests without an X-Project-Tag header (403 project_tag_required)',
  hooks: {
    // The auth stage: the first after authentication, so an untagged request costs no routing.
    auth(context) {
      if (projectTagOf(context) !== '') return;
      throw new ProjectTagRequired(`Send an X-Project-Tag header naming the project this request is for; the ${PLUGIN_NAME} policy refuses untagged requests.`);
    },
  },
};

export default requireHeaderPlugin;
