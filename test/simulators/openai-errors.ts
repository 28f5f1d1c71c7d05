// OpenAI's error bodies, worded as the real API words them, so gateway code that parses or forwards
// them is exercised against realistic text.

export interface OpenAIError {
  status: number;
  message: string;
  type: string;
  param: string | null;
  code: string | null;
}

export function openAIErrorBody(error: OpenAIError): { error: Omit<OpenAIError, 'status'> } {
  return { error: { message: error.message, type: error.type, param: error.param, code: error.code } };
}

function requestError(message: string, param: string | null, code: string | null, status = 400): OpenAIError {
  return { status, message, type: 'invalid_request_error', param, code };
}

/** "a string", "an integer"… as OpenAI's schema errors describe the value received. */
export function describeType(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'number') return Number.isInteger(value) ? 'an integer' : 'a decimal';
  if (typeof value === 'string') return 'a string';
  if (typeof value === 'boolean') return 'a boolean';
  return 'an object';
}

export function quotedList(values: readonly string[]): string {
  const quoted = values.map((value) => `'${value}'`);
  if (quoted.length <= 1) return quoted.join('');
  if (quoted.length === 2) return `${quoted[0]} and ${quoted[1]}`;
  return `${quoted.slice(0, -1).join(', ')}, and ${quoted.at(-1)}`;
}

export const errors = {
  unparsableJson: () =>
    requestError(
      "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON. If you have trouble figuring out how to fix this, please contact us through our help center at help.openai.com.)",
      null,
      null,
    ),
  unrecognizedArgument: (name: string) => requestError(`Unrecognized request argument supplied: ${name}`, null, null),
  missingModel: () => requestError('you must provide a model parameter', null, null),
  missing: (param: string) => requestError(`Missing required parameter: '${param}'.`, param, 'missing_required_parameter'),
  invalidType: (param: string, expected: string, value: unknown) =>
    requestError(`Invalid type for '${param}': expected ${expected}, but got ${describeType(value)} instead.`, param, 'invalid_type'),
  invalidValue: (param: string, value: unknown, supported: readonly string[]) =>
    requestError(`Invalid value: '${String(value)}'. Supported values are: ${quotedList(supported)}.`, param, 'invalid_value'),
  emptyArray: (param: string) =>
    requestError(`Invalid '${param}': empty array. Expected an array with minimum length 1, but got an empty array instead.`, param, 'empty_array'),
  arrayTooLong: (param: string, maximum: number, length: number) =>
    requestError(
      `Invalid '${param}': array too long. Expected an array with maximum length ${maximum}, but got an array with length ${length} instead.`,
      param,
      'array_above_max_length',
    ),
  belowMinimum: (param: string, minimum: number, value: number, integer: boolean) =>
    requestError(
      `Invalid '${param}': ${integer ? 'integer' : 'decimal'} below minimum value. Expected a value >= ${minimum}, but got ${value} instead.`,
      param,
      integer ? 'integer_below_min_value' : 'decimal_below_min_value',
    ),
  aboveMaximum: (param: string, maximum: number, value: number, integer: boolean) =>
    requestError(
      `Invalid '${param}': ${integer ? 'integer' : 'decimal'} above maximum value. Expected a value <= ${maximum}, but got ${value} instead.`,
      param,
      integer ? 'integer_above_max_value' : 'decimal_above_max_value',
    ),
  patternMismatch: (param: string, pattern: string) =>
    requestError(`Invalid '${param}': string does not match pattern. Expected a string that matches the pattern '${pattern}'.`, param, 'invalid_value'),
  stringTooLong: (param: string, maximum: number, length: number) =>
    requestError(
      `Invalid '${param}': string too long. Expected a string with maximum length ${maximum}, but got a string with length ${length} instead.`,
      param,
      'string_above_max_length',
    ),
  onlyWithTools: (param: string) => requestError(`Invalid value for '${param}': '${param}' is only allowed when 'tools' are specified.`, param, null),
  streamOptionsWithoutStream: () => requestError("The 'stream_options' parameter is only allowed when 'stream' is enabled.", 'stream_options', null),
  toolWithoutToolCalls: (index: number) =>
    requestError(
      "Invalid parameter: messages with role 'tool' must be a response to a preceeding message with 'tool_calls'.",
      `messages.[${index}].role`,
      null,
    ),
  unknownToolCallId: (index: number, id: string) =>
    requestError(`Invalid parameter: 'tool_call_id' of '${id}' not found in 'tool_calls' of previous message.`, `messages.[${index}].tool_call_id`, null),
  unansweredToolCalls: (index: number, ids: string[]) =>
    requestError(
      `An assistant message with 'tool_calls' must be followed by tool messages responding to each 'tool_call_id'. The following tool_call_ids did not have response messages: ${ids.join(', ')}`,
      `messages.[${index}].role`,
      null,
    ),
  jsonWordMissing: () =>
    requestError("'messages' must contain the word 'json' in some form, to use 'response_format' of type 'json_object'.", 'messages', null),
  unsupportedParameter: (param: string, hint: string) =>
    requestError(`Unsupported parameter: '${param}' is not supported with this model.${hint}`, param, 'unsupported_parameter'),
  unsupportedValue: (param: string, value: unknown) =>
    requestError(
      `Unsupported value: '${param}' does not support ${String(value)} with this model. Only the default (1) value is supported.`,
      param,
      'unsupported_value',
    ),
  invalidEmbeddingInput: () =>
    requestError("'$.input' is invalid. Please check the API reference: https://platform.openai.com/docs/api-reference.", null, null),
  notChatModel: () =>
    requestError(
      'This is not a chat model and thus not supported in the v1/chat/completions endpoint. Did you mean to use v1/completions?',
      'model',
      null,
      404,
    ),
  notEmbeddingModel: (model: string) => requestError(`The model \`${model}\` does not support embeddings.`, 'model', null),
  modelNotFound: (model: string) => requestError(`The model \`${model}\` does not exist or you do not have access to it.`, null, 'model_not_found', 404),
  retrieveModelNotFound: (model: string) => requestError(`The model '${model}' does not exist`, 'model', 'model_not_found', 404),
  contextLength: (maximum: number, requested: number, param: string) =>
    requestError(
      `This model's maximum context length is ${maximum} tokens. However, your messages resulted in ${requested} tokens. Please reduce the length of the messages.`,
      param,
      'context_length_exceeded',
    ),
  embeddingContextLength: (requested: number) =>
    requestError(
      `This model's maximum context length is 8192 tokens, however you requested ${requested} tokens (${requested} in your prompt; 0 for the completion). Please reduce your prompt; or completion length.`,
      null,
      null,
    ),
  invalidUrl: (method: string, path: string) => requestError(`Invalid URL (${method} ${path})`, null, null, 404),
  missingKey: () =>
    requestError(
      "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY), or as the password field (with blank username) if you're accessing the API from your browser and are prompted for a username and password. You can obtain an API key from https://platform.openai.com/account/api-keys.",
      null,
      'invalid_api_key',
      401,
    ),
  incorrectKey: (key: string) =>
    requestError(
      `Incorrect API key provided: ${maskKey(key)}. You can find your API key at https://platform.openai.com/account/api-keys.`,
      null,
      'invalid_api_key',
      401,
    ),
  /** `incorrectKey` quoting the key in a form of the caller's choosing (common.ts keyEcho). */
  echoedKey: (shown: string) =>
    requestError(
      `Incorrect API key provided: ${shown}. You can find your API key at https://platform.openai.com/account/api-keys.`,
      null,
      'invalid_api_key',
      401,
    ),
  rateLimit: (model: string, retryAfterSeconds: number): OpenAIError => ({
    status: 429,
    message: `Rate limit reached for ${model} in organization org-keywaysimulator on requests per min (RPM): Limit 10000, Used 10000, Requested 1. Please try again in ${retryAfterSeconds}s. Visit https://platform.openai.com/account/rate-limits to learn more.`,
    type: 'requests',
    param: null,
    code: 'rate_limit_exceeded',
  }),
  quota: (): OpenAIError => ({
    status: 429,
    message:
      'You exceeded your current quota, please check your plan and billing details. For more information on this error, read the docs: https://platform.openai.com/docs/guides/error-codes/api-errors.',
    type: 'insufficient_quota',
    param: null,
    code: 'insufficient_quota',
  }),
  server: (): OpenAIError => ({
    status: 500,
    message: 'The server had an error while processing your request. Sorry about that!',
    type: 'server_error',
    param: null,
    code: null,
  }),
  overloaded: (): OpenAIError => ({
    status: 503,
    message: 'The engine is currently overloaded, please try again later.',
    type: 'server_error',
    param: null,
    code: null,
  }),
};

/** OpenAI shows the first 3 and last 4 characters of a rejected key, starred in between. */
export function maskKey(key: string): string {
  if (key.length <= 7) return '*'.repeat(key.length);
  return `${key.slice(0, 3)}${'*'.repeat(key.length - 7)}${key.slice(-4)}`;
}
