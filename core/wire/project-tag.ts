// The grammar of an `X-Project-Tag`: shared by the project-tags policy, which refuses a tag that breaks
// it, and the usage row, which never books one (a header's non-ASCII bytes arrive read as Latin-1, so
// `é` would be kept as `Ã©` in exports and by_project, whichever refusal came first).

export const MAX_PROJECT_TAG_LENGTH = 64;

/** Printable ASCII, no leading or trailing space: as source, so a team's allowed_projects is held to it too. */
export const PROJECT_TAG_PATTERN = '^[\\x21-\\x7e](?:[\\x20-\\x7e]*[\\x21-\\x7e])?$';

const TAG_SHAPE = new RegExp(PROJECT_TAG_PATTERN);

/** Why a tag cannot be used, or undefined when it can. */
export function projectTagProblem(tag: string): string | undefined {
  if (tag.length > MAX_PROJECT_TAG_LENGTH) return `the tag is ${tag.length} characters long; the limit is ${MAX_PROJECT_TAG_LENGTH}`;
  if (!TAG_SHAPE.test(tag)) return 'use printable ASCII characters only, without leading or trailing spaces';
  return undefined;
}
