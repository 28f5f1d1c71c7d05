// What OpenAI's `POST /v1/responses` refuses, worded as it words it: unknown parameters, the request
// shape of openai-node's ResponseCreateParams (input items, content parts, tools, include values),
// reasoning parameters on models without reasoning, `max_output_tokens` below 16, and what cannot
// work when nothing is stored (`store: false`): reasoning items without their encrypted content,
// item references, `previous_response_id` (this simulator stores nothing, as OpenAI with store off).

import { errors, type OpenAIError } from './openai-errors.ts';
import { isRecord, type JsonObject } from './openai-behaviour.ts';
import { isReasoningModel } from './openai-validation.ts';

/** ResponseCreateParamsBase's fields (openai-node, src/resources/responses/responses.ts). */
const KNOWN_PARAMETERS = new Set([
  'background',
  'context_management',
  'conversation',
  'include',
  'input',
  'instructions',
  'max_output_tokens',
  'max_tool_calls',
  'metadata',
  'model',
  'moderation',
  'parallel_tool_calls',
  'previous_response_id',
  'prompt',
  'prompt_cache_key',
  'prompt_cache_options',
  'prompt_cache_retention',
  'reasoning',
  'safety_identifier',
  'service_tier',
  'store',
  'stream',
  'stream_options',
  'temperature',
  'text',
  'tool_choice',
  'tools',
  'top_logprobs',
  'top_p',
  'truncation',
  'user',
]);

/** ResponseIncludable. */
const INCLUDABLE = [
  'file_search_call.results',
  'web_search_call.results',
  'web_search_call.action.sources',
  'message.input_image.image_url',
  'computer_call_output.output.image_url',
  'code_interpreter_call.outputs',
  'reasoning.encrypted_content',
  'message.output_text.logprobs',
];

const TOOL_TYPES = [
  'function',
  'file_search',
  'computer',
  'computer_use_preview',
  'web_search',
  'web_search_2025_08_26',
  'mcp',
  'code_interpreter',
  'image_generation',
  'local_shell',
  'shell',
  'custom',
  'web_search_preview',
  'web_search_preview_2025_03_11',
  'apply_patch',
];

const ITEM_TYPES = [
  'message',
  'function_call',
  'function_call_output',
  'reasoning',
  'item_reference',
  'web_search_call',
  'file_search_call',
  'computer_call',
  'computer_call_output',
  'code_interpreter_call',
  'image_generation_call',
  'local_shell_call',
  'local_shell_call_output',
  'mcp_list_tools',
  'mcp_approval_request',
  'mcp_approval_response',
  'mcp_call',
  'custom_tool_call',
  'custom_tool_call_output',
];

const CONTENT_TYPES = ['input_text', 'input_image', 'input_file', 'output_text', 'refusal'];

const request = (message: string, param: string | null, code: string | null, status = 400): OpenAIError => ({
  status,
  message,
  type: 'invalid_request_error',
  param,
  code,
});

export const responsesErrors = {
  unknownParameter: (name: string) => request(`Unknown parameter: '${name}'.`, name, 'unknown_parameter'),
  notPersisted: (id: string, param: string) =>
    request(
      `Item with id '${id}' not found. Items are not persisted when \`store\` is set to false. Try again with \`store\` set to true, or remove this item from your input.`,
      param,
      null,
      404,
    ),
  previousNotFound: (id: string) => request(`Previous response with id '${id}' not found.`, 'previous_response_id', 'previous_response_not_found', 404),
  encryptedUnsupported: () => request('Encrypted content is not supported with this model.', 'include', 'unsupported_parameter'),
  encryptedInvalid: (param: string) => request('The encrypted content could not be verified.', param, 'invalid_encrypted_content'),
};

/** The simulator's "encryption": a marked base64 of the model that wrote it, checked on replay. */
export const ENCRYPTED_PREFIX = 'gAAAAB';

export function sealReasoning(model: string, tokens: number): string {
  return ENCRYPTED_PREFIX + Buffer.from(JSON.stringify({ model, tokens })).toString('base64');
}

export function openReasoning(content: string): { model: string; tokens: number } | undefined {
  if (!content.startsWith(ENCRYPTED_PREFIX)) return undefined;
  try {
    const value = JSON.parse(Buffer.from(content.slice(ENCRYPTED_PREFIX.length), 'base64').toString()) as unknown;
    return isRecord(value) && typeof value.model === 'string' && typeof value.tokens === 'number' ? { model: value.model, tokens: value.tokens } : undefined;
  } catch {
    return undefined;
  }
}

function validateContent(content: unknown, param: string): OpenAIError | undefined {
  if (typeof content === 'string') return undefined;
  if (!Array.isArray(content)) return errors.invalidType(param, 'a string or an array', content);
  for (const [index, part] of content.entries()) {
    const at = `${param}[${index}]`;
    if (!isRecord(part)) return errors.invalidType(at, 'an object', part);
    if (!CONTENT_TYPES.includes(String(part.type))) return errors.invalidValue(`${at}.type`, part.type, CONTENT_TYPES);
    if ((part.type === 'input_text' || part.type === 'output_text') && typeof part.text !== 'string') return errors.missing(`${at}.text`);
    if (part.type === 'input_image' && part.image_url === undefined && part.file_id === undefined) return errors.missing(`${at}.image_url`);
  }
  return undefined;
}

function validateItem(item: unknown, param: string, store: boolean): OpenAIError | undefined {
  if (!isRecord(item)) return errors.invalidType(param, 'an object', item);
  const type = item.type ?? 'message';
  if (!ITEM_TYPES.includes(String(type))) return errors.invalidValue(`${param}.type`, type, ITEM_TYPES);
  switch (type) {
    case 'message':
      if (!['user', 'assistant', 'system', 'developer'].includes(String(item.role)))
        return errors.invalidValue(`${param}.role`, item.role, ['user', 'assistant', 'system', 'developer']);
      return validateContent(item.content, `${param}.content`);
    case 'function_call':
      if (typeof item.call_id !== 'string') return errors.missing(`${param}.call_id`);
      if (typeof item.name !== 'string') return errors.missing(`${param}.name`);
      return typeof item.arguments === 'string' ? undefined : errors.invalidType(`${param}.arguments`, 'a string', item.arguments);
    case 'function_call_output':
    case 'custom_tool_call_output':
      if (typeof item.call_id !== 'string') return errors.missing(`${param}.call_id`);
      return item.output === undefined ? errors.missing(`${param}.output`) : undefined;
    case 'reasoning': {
      if (typeof item.id !== 'string') return errors.missing(`${param}.id`);
      if (!Array.isArray(item.summary)) return errors.missing(`${param}.summary`);
      if (typeof item.encrypted_content === 'string')
        return openReasoning(item.encrypted_content) === undefined ? responsesErrors.encryptedInvalid(`${param}.encrypted_content`) : undefined;
      return store ? undefined : responsesErrors.notPersisted(item.id, param);
    }
    case 'item_reference':
      return store ? undefined : responsesErrors.notPersisted(String(item.id), param);
    case 'web_search_call':
      if (typeof item.id !== 'string') return errors.missing(`${param}.id`);
      return typeof item.status === 'string' ? undefined : errors.missing(`${param}.status`);
    default:
      return undefined;
  }
}

function validateTools(tools: unknown): OpenAIError | undefined {
  if (tools === undefined) return undefined;
  if (!Array.isArray(tools)) return errors.invalidType('tools', 'an array', tools);
  for (const [index, tool] of tools.entries()) {
    const param = `tools[${index}]`;
    if (!isRecord(tool)) return errors.invalidType(param, 'an object', tool);
    if (!TOOL_TYPES.includes(String(tool.type))) return errors.invalidValue(`${param}.type`, tool.type, TOOL_TYPES);
    // A Chat Completions tool ({type, function: {...}}) has no top-level name: OpenAI says so.
    if ((tool.type === 'function' || tool.type === 'custom') && typeof tool.name !== 'string') return errors.missing(`${param}.name`);
    if (tool.type === 'file_search' && !Array.isArray(tool.vector_store_ids)) return errors.missing(`${param}.vector_store_ids`);
    if (tool.type === 'mcp' && typeof tool.server_label !== 'string') return errors.missing(`${param}.server_label`);
    if (tool.type === 'code_interpreter' && tool.container === undefined) return errors.missing(`${param}.container`);
  }
  return undefined;
}

function validateNumbers(body: JsonObject): OpenAIError | undefined {
  const maxOutput = body.max_output_tokens;
  if (maxOutput !== undefined && maxOutput !== null) {
    if (typeof maxOutput !== 'number' || !Number.isInteger(maxOutput)) return errors.invalidType('max_output_tokens', 'an integer', maxOutput);
    if (maxOutput < 16) return errors.belowMinimum('max_output_tokens', 16, maxOutput, true);
  }
  const temperature = body.temperature;
  if (typeof temperature === 'number' && (temperature < 0 || temperature > 2))
    return temperature < 0 ? errors.belowMinimum('temperature', 0, temperature, false) : errors.aboveMaximum('temperature', 2, temperature, false);
  return undefined;
}

function validateReasoning(body: JsonObject, model: string): OpenAIError | undefined {
  const include = body.include;
  if (include !== undefined && include !== null) {
    if (!Array.isArray(include)) return errors.invalidType('include', 'an array', include);
    for (const [index, value] of include.entries()) if (!INCLUDABLE.includes(String(value))) return errors.invalidValue(`include[${index}]`, value, INCLUDABLE);
    if (include.includes('reasoning.encrypted_content') && !isReasoningModel(model)) return responsesErrors.encryptedUnsupported();
  }
  if (isRecord(body.reasoning) && body.reasoning.effort !== undefined && body.reasoning.effort !== null && !isReasoningModel(model))
    return errors.unsupportedParameter('reasoning.effort', '');
  return undefined;
}

/** The first reason OpenAI would refuse this body, or undefined. */
export function validateResponsesRequest(body: unknown, models: readonly string[]): OpenAIError | undefined {
  if (!isRecord(body)) return errors.invalidType('body', 'an object', body);
  for (const name of Object.keys(body)) if (!KNOWN_PARAMETERS.has(name)) return responsesErrors.unknownParameter(name);
  if (typeof body.model !== 'string') return errors.missing('model');
  if (!models.includes(body.model)) return errors.modelNotFound(body.model);
  if (typeof body.previous_response_id === 'string') return responsesErrors.previousNotFound(body.previous_response_id);
  if (body.stream_options !== undefined && body.stream_options !== null && body.stream !== true) return errors.streamOptionsWithoutStream();
  const store = body.store !== false;
  const input = body.input;
  if (input === undefined) return errors.missing('input');
  if (typeof input !== 'string') {
    if (!Array.isArray(input)) return errors.invalidType('input', 'a string or an array', input);
    for (const [index, item] of input.entries()) {
      const invalid = validateItem(item, `input[${index}]`, store);
      if (invalid !== undefined) return invalid;
    }
  }
  if (body.instructions !== undefined && body.instructions !== null && typeof body.instructions !== 'string')
    return errors.invalidType('instructions', 'a string', body.instructions);
  return validateTools(body.tools) ?? validateNumbers(body) ?? validateReasoning(body, body.model);
}
