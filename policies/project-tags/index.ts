// Project tags (the seed's `usage_controls.require_project_tag` and `allowed_projects`). The tag comes
// from `X-Project-Tag`; the core already records it on the usage row. Every request's tag is checked
// for shape (it ends up in the books and in exports), whether or not it acts for a team. The grammar
// lives in core/wire/project-tag.ts, where the usage row checks it too.

import { definePlugin, PLUGIN_API_VERSION } from '../../core/spec/plugin.ts';
import { projectTagProblem } from '../../core/wire/project-tag.ts';
import { teamOf } from '../../plugins/teams/types.ts';

export const PROJECT_TAGS_POLICY = 'project-tags';

export const projectTagsPolicy = definePlugin({
  name: PROJECT_TAGS_POLICY,
  version: '1.0.0',
  apiVersion: PLUGIN_API_VERSION,
  kind: 'policy',
  description: "X-Project-Tag shape, and a team's require_project_tag / allowed_projects: 403 project_tag_required / project_not_allowed",
  dependencies: ['teams'],
  setup({ services }) {
    return {
      hooks: {
        auth(context) {
          const tag = context.projectTag === '' ? undefined : context.projectTag;
          if (tag !== undefined) {
            const problem = projectTagProblem(tag);
            if (problem !== undefined) throw services.errors.create('invalid_field', { param: 'x-project-tag', detail: problem }, { param: 'x-project-tag' });
          }
          const controls = teamOf(services.snapshot, context)?.permissions.usage_controls;
          if (controls === undefined) return;
          if (tag === undefined) {
            if (controls.require_project_tag === true) {
              throw services.errors.create(
                'project_tag_required',
                { detail: 'This team requires a project tag: send the X-Project-Tag header.' },
                { param: 'x-project-tag' },
              );
            }
            return;
          }
          const allowed = controls.allowed_projects;
          if (Array.isArray(allowed) && !allowed.includes(tag)) {
            throw services.errors.create(
              'project_not_allowed',
              { detail: `The project '${services.errors.redact(tag)}' is not one of this team's projects.` },
              { param: 'x-project-tag', extra: { project: services.errors.redact(tag) } },
            );
          }
        },
      },
    };
  },
});

export default projectTagsPolicy;
