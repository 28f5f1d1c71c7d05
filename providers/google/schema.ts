// JSON Schema → the OpenAPI subset Gemini's `parameters` and `responseSchema` accept.
//
// We send `parameters` (not `parametersJsonSchema`) because every Gemini model accepts it, while the
// JSON-Schema field is newer and model-dependent. The price is this cleaner: Gemini answers 400 for
// keywords outside its Schema message (`additionalProperties`, `$ref`, `$schema`…), for string formats
// other than `enum`/`date-time`, for enums on non-string types, and for `properties: {}`.
// The kept keywords follow the `Schema` type of googleapis/js-genai.

type JsonObject = Record<string, unknown>;

/** Keywords copied as they are; everything else is translated below or dropped. */
const COPIED_KEYWORDS = [
  'description',
  'nullable',
  'minItems',
  'maxItems',
  'minLength',
  'maxLength',
  'minProperties',
  'maxProperties',
  'minimum',
  'maximum',
  'pattern',
  'propertyOrdering',
] as const;

const FORMATS_BY_TYPE: Record<string, readonly string[]> = {
  string: ['enum', 'date-time'],
  number: ['float', 'double'],
  integer: ['int32', 'int64'],
};

/** How deep `$ref`s are followed before a schema is treated as recursive. */
const MAX_DEPTH = 32;

interface CleaningContext {
  root: JsonObject;
  /** `$ref` targets being expanded on the current path: a repeat means recursion. */
  expanding: string[];
  depth: number;
}

function isObject(value: unknown): value is JsonObject {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/**
 * Converts a JSON Schema to Gemini's Schema. `$ref`s into `#/$defs` or `#/definitions` are inlined;
 * a recursive or unresolvable reference becomes a free-form object, since Gemini has no way to say it.
 */
export function toGeminiSchema(schema: unknown): JsonObject {
  const root = isObject(schema) ? schema : {};
  return cleanNode(root, { root, expanding: [], depth: 0 });
}

/**
 * The `parameters` of a function declaration, or undefined when the function takes none: Gemini
 * rejects an object schema with an empty `properties`.
 */
export function toGeminiParameters(schema: unknown): JsonObject | undefined {
  if (!isObject(schema)) return undefined;
  const cleaned = toGeminiSchema(schema);
  if (cleaned.type === 'object' && !isObject(cleaned.properties) && cleaned.anyOf === undefined) return undefined;
  return cleaned;
}

function cleanNode(node: JsonObject, context: CleaningContext): JsonObject {
  if (context.depth > MAX_DEPTH) return { type: 'object' };
  if (typeof node.$ref === 'string') return cleanReference(node, node.$ref, context);
  if (Array.isArray(node.allOf)) return cleanNode(mergeAllOf(node), context);
  const result: JsonObject = {};
  copyKeywords(node, result);
  applyType(node, result, context);
  applyComposition(node, result, context);
  applyEnum(node, result);
  applyFormat(node, result);
  applyObjectKeywords(node, result, context);
  applyArrayKeywords(node, result, context);
  return result;
}

function child(node: unknown, context: CleaningContext): JsonObject {
  return cleanNode(isObject(node) ? node : {}, { ...context, depth: context.depth + 1 });
}

function cleanReference(node: JsonObject, reference: string, context: CleaningContext): JsonObject {
  const { $ref: _reference, ...siblings } = node;
  const target = resolveReference(context.root, reference);
  if (target === undefined || context.expanding.includes(reference)) {
    const fallback: JsonObject = { type: 'object' };
    if (typeof siblings.description === 'string') fallback.description = siblings.description;
    return fallback;
  }
  const expanded = cleanNode({ ...target, ...siblings }, { ...context, expanding: [...context.expanding, reference], depth: context.depth + 1 });
  return expanded;
}

function resolveReference(root: JsonObject, reference: string): JsonObject | undefined {
  if (reference === '#') return root;
  if (!reference.startsWith('#/')) return undefined;
  let current: unknown = root;
  for (const segment of reference.slice(2).split('/')) {
    const key = decodeURIComponent(segment).replace(/~1/g, '/').replace(/~0/g, '~');
    if (!isObject(current)) return undefined;
    current = current[key];
  }
  return isObject(current) ? current : undefined;
}

/** `allOf` members are merged into one schema: Gemini has no intersection keyword. */
function mergeAllOf(node: JsonObject): JsonObject {
  const { allOf, ...rest } = node;
  const merged: JsonObject = { ...rest };
  for (const member of allOf as unknown[]) {
    if (!isObject(member)) continue;
    for (const [key, value] of Object.entries(member)) {
      if (key === 'properties' && isObject(value)) merged.properties = { ...(isObject(merged.properties) ? merged.properties : {}), ...value };
      else if (key === 'required' && Array.isArray(value)) merged.required = [...(Array.isArray(merged.required) ? merged.required : []), ...value];
      else if (!(key in merged)) merged[key] = value;
    }
  }
  return merged;
}

function copyKeywords(node: JsonObject, result: JsonObject): void {
  for (const keyword of COPIED_KEYWORDS) if (node[keyword] !== undefined) result[keyword] = node[keyword];
}

/** `type: ["string", "null"]` becomes `type: "string"` plus `nullable`; several real types become `anyOf`. */
function applyType(node: JsonObject, result: JsonObject, context: CleaningContext): void {
  const types = Array.isArray(node.type)
    ? node.type.filter((type): type is string => typeof type === 'string')
    : typeof node.type === 'string'
      ? [node.type]
      : [];
  const concrete = types.filter((type) => type !== 'null');
  if (concrete.length < types.length && concrete.length > 0) result.nullable = true;
  if (concrete.length === 1) result.type = concrete[0];
  else if (concrete.length > 1)
    result.anyOf = concrete.map((type) => child({ type, items: node.items, properties: node.properties, required: node.required }, context));
  else if (types.length === 1) result.type = 'null';
}

/** `oneOf` is read as `anyOf`; a `null` member becomes `nullable`, and a single survivor is inlined. */
function applyComposition(node: JsonObject, result: JsonObject, context: CleaningContext): void {
  const members = Array.isArray(node.anyOf) ? node.anyOf : Array.isArray(node.oneOf) ? node.oneOf : undefined;
  if (members === undefined) return;
  const isNullMember = (member: unknown) => isObject(member) && member.type === 'null' && Object.keys(member).length === 1;
  const concrete = members.filter((member) => !isNullMember(member));
  if (concrete.length < members.length) result.nullable = true;
  if (concrete.length === 1) {
    const inlined = child(concrete[0], context);
    for (const [key, value] of Object.entries(inlined)) if (result[key] === undefined) result[key] = value;
  } else if (concrete.length > 1) {
    result.anyOf = concrete.map((member) => child(member, context));
  }
}

/** Gemini enums are strings on a string type; other enums are described in words instead. */
function applyEnum(node: JsonObject, result: JsonObject): void {
  const values = node.const !== undefined ? [node.const] : Array.isArray(node.enum) ? node.enum : undefined;
  if (values === undefined) return;
  const present = values.filter((value) => value !== null);
  if (present.length < values.length) result.nullable = true;
  if (present.length === 0) return;
  if (present.every((value): value is string => typeof value === 'string')) {
    result.type = 'string';
    result.enum = present;
    return;
  }
  if (result.type === undefined) result.type = typeof present[0] === 'number' ? 'number' : typeof present[0] === 'boolean' ? 'boolean' : 'string';
  const allowed = `Allowed values: ${present.map((value) => JSON.stringify(value)).join(', ')}.`;
  result.description = typeof result.description === 'string' && result.description.length > 0 ? `${result.description} ${allowed}` : allowed;
}

function applyFormat(node: JsonObject, result: JsonObject): void {
  if (typeof node.format !== 'string' || typeof result.type !== 'string') return;
  if (FORMATS_BY_TYPE[result.type]?.includes(node.format)) result.format = node.format;
}

function applyObjectKeywords(node: JsonObject, result: JsonObject, context: CleaningContext): void {
  if (!isObject(node.properties)) return;
  const properties: JsonObject = {};
  for (const [name, property] of Object.entries(node.properties)) properties[name] = child(property, context);
  const names = Object.keys(properties);
  if (names.length === 0) return;
  result.properties = properties;
  if (result.type === undefined) result.type = 'object';
  if (Array.isArray(node.required)) {
    const required = node.required.filter((name): name is string => typeof name === 'string' && names.includes(name));
    if (required.length > 0) result.required = [...new Set(required)];
  }
}

/** Gemini wants `items` on every array; a tuple's first item schema stands for all. */
function applyArrayKeywords(node: JsonObject, result: JsonObject, context: CleaningContext): void {
  const items = Array.isArray(node.items) ? node.items[0] : Array.isArray(node.prefixItems) ? node.prefixItems[0] : node.items;
  if (isObject(items)) result.items = child(items, context);
  else if (result.type === 'array') result.items = { type: 'string' };
}
