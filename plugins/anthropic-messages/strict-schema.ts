// Whether a JSON schema meets OpenAI's strict structured outputs: every object closed
// (`additionalProperties: false`) with every property required, all the way down. Anthropic's
// structured outputs (`output_config.format`) guarantee the schema; OpenAI's json_schema only does with
// `strict: true`, which it refuses for a schema that breaks these rules. So a schema that meets them is
// sent strict (the same guarantee), and any other as before, best effort (QA18).

type Json = Record<string, unknown>;

function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Schema keywords whose values are schemas, or lists or maps of them. */
const SUBSCHEMA_LISTS = ['anyOf', 'allOf', 'oneOf', 'prefixItems'] as const;
const SUBSCHEMA_MAPS = ['properties', '$defs', 'definitions'] as const;

export function meetsStrictRules(schema: unknown, depth = 0): boolean {
  // A schema nested this deep is beyond what strict mode takes anyway (OpenAI: 10 levels).
  if (depth > 64) return false;
  if (!isObject(schema)) return false;
  const properties = isObject(schema.properties) ? schema.properties : undefined;
  if (schema.type === 'object' || properties !== undefined) {
    if (schema.additionalProperties !== false) return false;
    const required = Array.isArray(schema.required) ? schema.required : [];
    if (!Object.keys(properties ?? {}).every((name) => required.includes(name))) return false;
  }
  if (schema.items !== undefined && !meetsStrictRules(schema.items, depth + 1)) return false;
  for (const keyword of SUBSCHEMA_LISTS) {
    const list = schema[keyword];
    if (Array.isArray(list) && !list.every((entry) => meetsStrictRules(entry, depth + 1))) return false;
  }
  for (const keyword of SUBSCHEMA_MAPS) {
    const map = schema[keyword];
    if (isObject(map) && !Object.values(map).every((entry) => meetsStrictRules(entry, depth + 1))) return false;
  }
  return true;
}
