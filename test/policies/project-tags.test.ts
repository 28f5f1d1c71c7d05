import { describe, expect, test } from 'bun:test';
import { projectTagProblem } from '../../core/wire/project-tag.ts';
import { projectTagsPolicy } from '../../policies/project-tags/index.ts';
import { context, hooksOf, refusalOf, teamsSection } from './helpers.ts';

const SEED_CONTROLS = { log_all_requests: true, require_project_tag: true, allowed_projects: ['project-a', 'project-b'], block_sensitive_content: true };

describe('project-tags', () => {
  test("the seed's team: a listed tag passes, none is 403 project_tag_required, another is 403 project_not_allowed", async () => {
    const hooks = await hooksOf(projectTagsPolicy, teamsSection({ usage_controls: SEED_CONTROLS }));
    expect(await refusalOf(() => hooks.auth?.(context({ headers: { 'x-project-tag': 'project-a' } })))).toBeUndefined();
    expect(await refusalOf(() => hooks.auth?.(context()))).toBe('project_tag_required');
    expect(await refusalOf(() => hooks.auth?.(context({ headers: { 'x-project-tag': '' } })))).toBe('project_tag_required');
    expect(await refusalOf(() => hooks.auth?.(context({ headers: { 'x-project-tag': 'project-c' } })))).toBe('project_not_allowed');
  });

  test('allowed_projects without require_project_tag: untagged requests pass, unlisted tags do not', async () => {
    const hooks = await hooksOf(projectTagsPolicy, teamsSection({ usage_controls: { allowed_projects: ['alpha'] } }));
    expect(await refusalOf(() => hooks.auth?.(context()))).toBeUndefined();
    expect(await refusalOf(() => hooks.auth?.(context({ headers: { 'x-project-tag': 'beta' } })))).toBe('project_not_allowed');
  });

  test('no team, or a team without usage controls: any well-formed tag, or none', async () => {
    const hooks = await hooksOf(projectTagsPolicy, teamsSection({}));
    expect(await refusalOf(() => hooks.auth?.(context()))).toBeUndefined();
    expect(await refusalOf(() => hooks.auth?.(context({ principal: { teamId: undefined }, headers: { 'x-project-tag': 'anything' } })))).toBeUndefined();
  });

  test('a tag longer than 64 characters or with unprintable characters is a 400, for every request', async () => {
    const hooks = await hooksOf(projectTagsPolicy, teamsSection(undefined));
    expect(await refusalOf(() => hooks.auth?.(context({ headers: { 'x-project-tag': 'x'.repeat(65) } })))).toBe('invalid_field');
    expect(await refusalOf(() => hooks.auth?.(context({ headers: { 'x-project-tag': 'x'.repeat(64) } })))).toBeUndefined();
    expect(projectTagProblem('a\tb')).toBeDefined();
    expect(projectTagProblem('caf\u00e9')).toBeDefined();
    expect(projectTagProblem(' lead')).toBeDefined();
    expect(projectTagProblem('release 2.1 (beta)')).toBeUndefined();
  });
});
