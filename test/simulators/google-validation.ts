// Request validation of the Gemini simulator. Google's JSON parser rejects unknown names (reported
// with snake_case proto paths and a google.rpc.BadRequest detail); semantic checks answer with
// "* GenerateContentRequest.<path>: <problem>" lines, as the real API does.
import type { JsonObject } from './native-helpers.ts';
import { digest, isBase64, isObject, isString } from './native-helpers.ts';

export class GoogleRejection extends Error {
  constructor(
    readonly code: number,
    readonly status: string,
    message: string,
    readonly details: unknown[] = [],
  ) {
    super(message);
  }
}

export interface GoogleModel {
  id: string;
  displayName: string;
  inputTokenLimit: number;
  outputTokenLimit: number;
  methods: string[];
  thinking: boolean;
  /** Gemini 3 models reject replayed function calls that lack the signature they were sent with. */
  thoughtSignatures: boolean;
  embeddingDimensions?: number;
}

export interface ValidatedGoogleRequest {
  contents: JsonObject[];
  systemTexts: string[];
  declarations: { name: string; schema: unknown }[];
  mode: string;
  allowedNames: string[] | undefined;
  maxOutputTokens: number | undefined;
  stopSequences: string[];
  jsonMode: boolean;
  candidateCount: number;
  /** Set when thinkingConfig asks for thinking: whether thought parts are wanted. */
  thinking: { includeThoughts: boolean } | undefined;
}

interface Violation {
  field: string;
  description: string;
}

const requestFields = ['contents', 'systemInstruction', 'tools', 'toolConfig', 'safetySettings', 'generationConfig', 'cachedContent', 'model'];
const contentFields = ['role', 'parts'];
const partFields = [
  'text',
  'inlineData',
  'fileData',
  'functionCall',
  'functionResponse',
  'executableCode',
  'codeExecutionResult',
  'thought',
  'thoughtSignature',
  'videoMetadata',
  'partMetadata',
];
const dataFields = ['text', 'inlineData', 'fileData', 'functionCall', 'functionResponse', 'executableCode', 'codeExecutionResult'];
const toolFields = ['functionDeclarations', 'googleSearch', 'googleSearchRetrieval', 'codeExecution', 'urlContext', 'fileSearch', 'computerUse', 'googleMaps'];
const declarationFields = ['name', 'description', 'parameters', 'parametersJsonSchema', 'response', 'responseJsonSchema', 'behavior'];
const schemaFields = [
  'type',
  'format',
  'title',
  'description',
  'nullable',
  'enum',
  'maxItems',
  'minItems',
  'properties',
  'required',
  'minProperties',
  'maxProperties',
  'minLength',
  'maxLength',
  'pattern',
  'example',
  'anyOf',
  'propertyOrdering',
  'default',
  'items',
  'minimum',
  'maximum',
];
const schemaTypes = ['TYPE_UNSPECIFIED', 'STRING', 'NUMBER', 'INTEGER', 'BOOLEAN', 'ARRAY', 'OBJECT', 'NULL'];
const generationFields = [
  'stopSequences',
  'responseMimeType',
  'responseSchema',
  'responseJsonSchema',
  'responseModalities',
  'candidateCount',
  'maxOutputTokens',
  'temperature',
  'topP',
  'topK',
  'seed',
  'presencePenalty',
  'frequencyPenalty',
  'responseLogprobs',
  'logprobs',
  'enableEnhancedCivicAnswers',
  'speechConfig',
  'thinkingConfig',
  'mediaResolution',
  'imageConfig',
];
export const harmCategories = [
  'HARM_CATEGORY_HARASSMENT',
  'HARM_CATEGORY_HATE_SPEECH',
  'HARM_CATEGORY_SEXUALLY_EXPLICIT',
  'HARM_CATEGORY_DANGEROUS_CONTENT',
  'HARM_CATEGORY_CIVIC_INTEGRITY',
];
const thresholds = ['HARM_BLOCK_THRESHOLD_UNSPECIFIED', 'BLOCK_LOW_AND_ABOVE', 'BLOCK_MEDIUM_AND_ABOVE', 'BLOCK_ONLY_HIGH', 'BLOCK_NONE', 'OFF'];
const callingModes = ['MODE_UNSPECIFIED', 'AUTO', 'ANY', 'NONE', 'VALIDATED'];
const mimeTypes = ['text/plain', 'application/json', 'text/x.enum'];
const enumPackage = 'type.googleapis.com/google.ai.generativelanguage.v1beta';

const snake = (name: string): string => name.replace(/[A-Z]/g, (letter) => `_${letter.toLowerCase()}`);
const join = (path: string, field: string): string => (path === '' ? snake(field) : `${path}.${snake(field)}`);

function unknownNames(value: JsonObject, allowed: string[], path: string, violations: Violation[]): void {
  for (const key of Object.keys(value)) {
    if (allowed.includes(key)) continue;
    const where = path === '' ? '' : ` at '${path}'`;
    violations.push({ field: path, description: `Invalid JSON payload received. Unknown name "${key}"${where}: Cannot find field.` });
  }
}

function invalidValue(path: string, type: string, value: unknown, violations: Violation[]): void {
  const shown = isString(value) ? `"${value}"` : JSON.stringify(value);
  violations.push({ field: path, description: `Invalid value at '${path}' (${type}), ${shown}` });
}

function checkEnum(value: unknown, allowed: string[], path: string, type: string, violations: Violation[]): void {
  if (value !== undefined && !(isString(value) && allowed.includes(value.toUpperCase()))) invalidValue(path, type, value, violations);
}

/** Throws the parser's answer when any unknown name or bad value was found. */
export function throwViolations(violations: Violation[]): void {
  if (violations.length === 0) return;
  throw new GoogleRejection(400, 'INVALID_ARGUMENT', violations.map((violation) => violation.description).join('\n'), [
    {
      '@type': 'type.googleapis.com/google.rpc.BadRequest',
      fieldViolations: violations.map(({ field, description }) => (field === '' ? { description } : { field, description })),
    },
  ]);
}

function semantic(path: string, problem: string, request = 'GenerateContentRequest'): never {
  throw new GoogleRejection(400, 'INVALID_ARGUMENT', `* ${request}.${path}: ${problem}\n`);
}

function plain(message: string): never {
  throw new GoogleRejection(400, 'INVALID_ARGUMENT', message);
}

/** The signature the simulator attaches to a Gemini 3 function call and expects back on replay. */
export function callSignature(name: string, args: unknown): string {
  return Buffer.from(digest(`keyway-simulator:${name}:${JSON.stringify(args)}`).slice(0, 32)).toString('base64');
}

export function validateGenerateRequest(body: unknown, model: GoogleModel): ValidatedGoogleRequest {
  if (!isObject(body)) plain('Invalid JSON payload received. Expected an object.');
  const violations: Violation[] = [];
  unknownNames(body, requestFields, '', violations);
  if (body.contents !== undefined && !Array.isArray(body.contents))
    invalidValue('contents', 'type.googleapis.com/google.ai.generativelanguage.v1beta.Content', body.contents, violations);
  const contents = Array.isArray(body.contents) ? body.contents : [];
  contents.forEach((content, index) => checkContent(content, `contents[${index}]`, violations));
  if (body.systemInstruction !== undefined) checkContent(body.systemInstruction, 'system_instruction', violations);
  const tools = Array.isArray(body.tools) ? body.tools : [];
  tools.forEach((tool, index) => checkTool(tool, `tools[${index}]`, violations));
  if (isObject(body.toolConfig)) {
    unknownNames(body.toolConfig, ['functionCallingConfig', 'retrievalConfig'], 'tool_config', violations);
    const calling = body.toolConfig.functionCallingConfig;
    if (isObject(calling)) {
      unknownNames(calling, ['mode', 'allowedFunctionNames'], 'tool_config.function_calling_config', violations);
      checkEnum(calling.mode, callingModes, 'tool_config.function_calling_config.mode', `${enumPackage}.FunctionCallingConfig.Mode`, violations);
    }
  }
  const safety = Array.isArray(body.safetySettings) ? body.safetySettings : [];
  safety.forEach((setting, index) => {
    const path = `safety_settings[${index}]`;
    if (!isObject(setting)) return invalidValue(path, `${enumPackage}.SafetySetting`, setting, violations);
    unknownNames(setting, ['category', 'threshold', 'method'], path, violations);
    checkEnum(setting.category, harmCategories, `${path}.category`, `${enumPackage}.HarmCategory`, violations);
    checkEnum(setting.threshold, thresholds, `${path}.threshold`, `${enumPackage}.SafetySetting.HarmBlockThreshold`, violations);
  });
  const generation = isObject(body.generationConfig) ? body.generationConfig : {};
  unknownNames(generation, generationFields, 'generation_config', violations);
  if (isObject(generation.thinkingConfig))
    unknownNames(generation.thinkingConfig, ['includeThoughts', 'thinkingBudget', 'thinkingLevel'], 'generation_config.thinking_config', violations);
  if (generation.responseSchema !== undefined) checkSchema(generation.responseSchema, 'generation_config.response_schema', violations);
  throwViolations(violations);
  return {
    contents: checkConversation(contents, model),
    systemTexts: systemTexts(body.systemInstruction),
    ...checkTools(tools, body.toolConfig),
    ...checkGeneration(generation, model),
  };
}

function checkContent(content: unknown, path: string, violations: Violation[]): void {
  if (!isObject(content)) return invalidValue(path, `${enumPackage}.Content`, content, violations);
  unknownNames(content, contentFields, path, violations);
  if (!Array.isArray(content.parts)) return;
  content.parts.forEach((part, index) => {
    const partPath = `${path}.parts[${index}]`;
    if (!isObject(part)) return invalidValue(partPath, `${enumPackage}.Part`, part, violations);
    unknownNames(part, partFields, partPath, violations);
    const nested: [string, string[]][] = [
      ['inlineData', ['mimeType', 'data']],
      ['fileData', ['mimeType', 'fileUri']],
      ['functionCall', ['id', 'name', 'args']],
      ['functionResponse', ['id', 'name', 'response', 'willContinue', 'scheduling', 'parts']],
    ];
    for (const [field, allowed] of nested) if (isObject(part[field])) unknownNames(part[field] as JsonObject, allowed, join(partPath, field), violations);
    if (isObject(part.inlineData) && !(isString(part.inlineData.data) && isBase64(part.inlineData.data))) {
      const shown = String(part.inlineData.data).slice(0, 40);
      violations.push({
        field: `${partPath}.inline_data.data`,
        description: `Invalid value at '${partPath}.inline_data.data' (TYPE_BYTES), Base64 decoding failed for "${shown}"`,
      });
    }
    if (isObject(part.functionCall) && part.functionCall.args !== undefined && !isObject(part.functionCall.args)) {
      invalidValue(`${partPath}.function_call.args`, 'type.googleapis.com/google.protobuf.Struct', part.functionCall.args, violations);
    }
    if (isObject(part.functionResponse) && !isObject(part.functionResponse.response)) {
      invalidValue(`${partPath}.function_response.response`, 'type.googleapis.com/google.protobuf.Struct', part.functionResponse.response, violations);
    }
  });
}

function checkTool(tool: unknown, path: string, violations: Violation[]): void {
  if (!isObject(tool)) return invalidValue(path, `${enumPackage}.Tool`, tool, violations);
  unknownNames(tool, toolFields, path, violations);
  const declarations = Array.isArray(tool.functionDeclarations) ? tool.functionDeclarations : [];
  declarations.forEach((declaration, index) => {
    const declarationPath = `${path}.function_declarations[${index}]`;
    if (!isObject(declaration)) return invalidValue(declarationPath, `${enumPackage}.FunctionDeclaration`, declaration, violations);
    unknownNames(declaration, declarationFields, declarationPath, violations);
    if (declaration.parameters !== undefined) checkSchema(declaration.parameters, `${declarationPath}.parameters`, violations);
  });
}

/** Gemini's `parameters` take an OpenAPI subset; JSON-Schema-only keywords are unknown names. */
function checkSchema(schema: unknown, path: string, violations: Violation[]): void {
  if (!isObject(schema)) return invalidValue(path, `${enumPackage}.Schema`, schema, violations);
  unknownNames(schema, schemaFields, path, violations);
  if (Array.isArray(schema.type)) {
    violations.push({
      field: path,
      description: `Invalid JSON payload received. Unknown name "type" at '${path}': Proto field is not repeating, cannot start list.`,
    });
  } else checkEnum(schema.type, schemaTypes, `${path}.type`, `${enumPackage}.Type`, violations);
  if (isObject(schema.properties))
    Object.values(schema.properties).forEach((child, index) => checkSchema(child, `${path}.properties[${index}].value`, violations));
  if (schema.items !== undefined) checkSchema(schema.items, `${path}.items`, violations);
  if (Array.isArray(schema.anyOf)) schema.anyOf.forEach((child, index) => checkSchema(child, `${path}.any_of[${index}]`, violations));
}

function systemTexts(instruction: unknown): string[] {
  if (instruction === undefined) return [];
  if (!isObject(instruction) || !Array.isArray(instruction.parts) || instruction.parts.length === 0)
    semantic('system_instruction.parts', 'contents.parts must not be empty.');
  return instruction.parts.map((part, index) => {
    if (!isObject(part) || !isString(part.text)) semantic(`system_instruction.parts[${index}].text`, 'only text parts are supported in system_instruction');
    return part.text;
  });
}

function partsOf(content: JsonObject): JsonObject[] {
  return (content.parts as JsonObject[]) ?? [];
}

function checkConversation(contents: unknown[], model: GoogleModel): JsonObject[] {
  if (contents.length === 0) semantic('contents', 'contents is not specified');
  const checked = contents as JsonObject[];
  checked.forEach((content, index) => {
    const path = `contents[${index}]`;
    if (content.role !== undefined && content.role !== 'user' && content.role !== 'model') plain('Please use a valid role: user, model.');
    if (!Array.isArray(content.parts) || content.parts.length === 0) semantic(`${path}.parts`, 'contents.parts must not be empty.');
    partsOf(content).forEach((part, partIndex) => {
      const filled = dataFields.filter((field) => part[field] !== undefined);
      if (filled.length !== 1) semantic(`${path}.parts[${partIndex}].data`, "required oneof field 'data' must have one initialized field");
      if (isObject(part.functionCall) && !isString(part.functionCall.name)) semantic(`${path}.parts[${partIndex}].function_call.name`, 'Name cannot be empty.');
      if (isObject(part.functionResponse) && !isString(part.functionResponse.name))
        semantic(`${path}.parts[${partIndex}].function_response.name`, 'Name cannot be empty.');
    });
    const calls = partsOf(content).filter((part) => isObject(part.functionCall));
    const responses = partsOf(content).filter((part) => isObject(part.functionResponse));
    const previous = checked[index - 1];
    if (calls.length > 0) {
      const afterUser = previous !== undefined && previous.role !== 'model';
      if (content.role !== 'model' || !afterUser)
        plain('Please ensure that function call turn comes immediately after a user turn or after a function response turn.');
    }
    if (responses.length === 0) return;
    const previousCalls = previous?.role === 'model' ? partsOf(previous).filter((part) => isObject(part.functionCall)) : [];
    if (content.role === 'model' || previousCalls.length === 0)
      plain('Please ensure that function response turn comes immediately after a function call turn.');
    if (previousCalls.length !== responses.length)
      plain('Please ensure that the number of function response parts is equal to the number of function call parts of the function call turn.');
    const names = previousCalls.map((part) => (part.functionCall as JsonObject).name);
    responses.forEach((part) => {
      const name = (part.functionResponse as JsonObject).name;
      if (!names.includes(name)) semantic(`${path}.parts`, `function response name '${String(name)}' does not match any function call of the previous turn`);
    });
  });
  if (model.thoughtSignatures) checkThoughtSignatures(checked);
  return checked;
}

/**
 * The signatures Google documents for function calls it did not produce (a history from another model,
 * or edited by the client): "context_engineering_is_the_way_to_go" or "skip_thought_signature_validator"
 * passes validation (https://ai.google.dev/gemini-api/docs/thought-signatures, FAQs).
 */
const PLACEHOLDER_SIGNATURES = new Set(['context_engineering_is_the_way_to_go', 'skip_thought_signature_validator']);

/** Gemini 3 validates the current turn: model turns after the last user text must replay signatures. */
function checkThoughtSignatures(contents: JsonObject[]): void {
  let start = 0;
  contents.forEach((content, index) => {
    if (content.role !== 'model' && partsOf(content).some((part) => isString(part.text))) start = index;
  });
  contents.slice(start).forEach((content, offset) => {
    const first = partsOf(content).find((part) => isObject(part.functionCall));
    if (content.role !== 'model' || !first) return;
    const call = first.functionCall as JsonObject;
    if (first.thoughtSignature === undefined) {
      plain(
        `Function call is missing a thought_signature in functionCall parts. This is required for tools to work correctly, and missing thought_signature may lead to degraded model performance. Additional data, function call \`default_api:${String(call.name)}\` , position ${start + offset + 1}. Please refer to https://ai.google.dev/gemini-api/docs/thought-signatures for more details.`,
      );
    }
    if (PLACEHOLDER_SIGNATURES.has(String(first.thoughtSignature))) return;
    if (first.thoughtSignature !== callSignature(String(call.name), call.args ?? {})) plain('Corrupted thought signature.');
  });
}

function checkTools(tools: unknown[], toolConfig: unknown): Pick<ValidatedGoogleRequest, 'declarations' | 'mode' | 'allowedNames'> {
  const declarations: { name: string; schema: unknown }[] = [];
  tools.forEach((tool, toolIndex) => {
    const list = isObject(tool) && Array.isArray(tool.functionDeclarations) ? tool.functionDeclarations : [];
    list.forEach((declaration: JsonObject, index) => {
      const path = `tools[${toolIndex}].function_declarations[${index}]`;
      if (!isString(declaration.name) || !/^[a-zA-Z_][a-zA-Z0-9_.:-]{0,63}$/.test(declaration.name)) {
        semantic(
          `${path}.name`,
          'Invalid function name. Must start with a letter or an underscore. Must be alphameric (a-z, A-Z, 0-9), underscores (_), dots (.), colons (:), or dashes (-), with a maximum length of 64.',
        );
      }
      if (declaration.parameters !== undefined && declaration.parametersJsonSchema !== undefined)
        semantic(path, 'parameters and parameters_json_schema cannot both be set');
      if (declaration.parameters !== undefined) checkObjectProperties(declaration.parameters, `${path}.parameters`);
      declarations.push({ name: declaration.name, schema: declaration.parameters ?? declaration.parametersJsonSchema });
    });
  });
  const calling = isObject(toolConfig) && isObject(toolConfig.functionCallingConfig) ? toolConfig.functionCallingConfig : {};
  const mode = isString(calling.mode) ? calling.mode.toUpperCase() : 'AUTO';
  let allowedNames: string[] | undefined;
  if (calling.allowedFunctionNames !== undefined) {
    const path = 'tool_config.function_calling_config.allowed_function_names';
    if (mode !== 'ANY' && mode !== 'VALIDATED') semantic(path, 'allowed_function_names can only be set when mode is ANY or VALIDATED');
    if (!Array.isArray(calling.allowedFunctionNames)) semantic(path, 'must be a list of function names');
    allowedNames = calling.allowedFunctionNames.filter(isString);
    for (const name of allowedNames)
      if (!declarations.some((declaration) => declaration.name === name)) semantic(path, `function '${name}' is not declared in tools`);
  }
  return { declarations, mode, allowedNames };
}

function checkObjectProperties(schema: unknown, path: string): void {
  if (!isObject(schema)) return;
  const isObjectType = isString(schema.type) && schema.type.toUpperCase() === 'OBJECT';
  if (isObjectType && isObject(schema.properties) && Object.keys(schema.properties).length === 0)
    semantic(`${path}.properties`, 'should be non-empty for OBJECT type');
  if (isObject(schema.properties)) for (const [name, child] of Object.entries(schema.properties)) checkObjectProperties(child, `${path}.properties[${name}]`);
  if (schema.items !== undefined) checkObjectProperties(schema.items, `${path}.items`);
}

function checkGeneration(
  generation: JsonObject,
  model: GoogleModel,
): Pick<ValidatedGoogleRequest, 'maxOutputTokens' | 'stopSequences' | 'jsonMode' | 'candidateCount' | 'thinking'> {
  const path = 'generation_config';
  const range = (name: string, minimum: number, maximum: number) => {
    const value = generation[name];
    if (value !== undefined && (typeof value !== 'number' || value < minimum || value > maximum))
      semantic(`${path}.${snake(name)}`, `${snake(name)} must be in the range [${minimum}, ${maximum}]`);
  };
  range('temperature', 0, 2);
  range('topP', 0, 1);
  range('candidateCount', 1, 8);
  range('maxOutputTokens', 1, Number.MAX_SAFE_INTEGER);
  if (generation.topK !== undefined && !(Number.isInteger(generation.topK) && (generation.topK as number) > 0))
    semantic(`${path}.top_k`, 'top_k must be a positive integer');
  if (generation.maxOutputTokens !== undefined && !Number.isInteger(generation.maxOutputTokens))
    semantic(`${path}.max_output_tokens`, 'max_output_tokens must be an integer');
  const stops = generation.stopSequences ?? [];
  if (!Array.isArray(stops) || !stops.every(isString)) semantic(`${path}.stop_sequences`, 'stop_sequences must be a list of strings');
  if (stops.length > 5) semantic(`${path}.stop_sequences`, 'stop_sequences must contain at most 5 entries');
  const mimeType = generation.responseMimeType;
  if (mimeType !== undefined && !(isString(mimeType) && mimeTypes.includes(mimeType))) {
    semantic(`${path}.response_mime_type`, `allowed mimetypes are ${mimeTypes.map((type) => `\`${type}\``).join(', ')}.`);
  }
  if (
    (generation.responseSchema !== undefined || generation.responseJsonSchema !== undefined) &&
    mimeType !== 'application/json' &&
    mimeType !== 'text/x.enum'
  ) {
    semantic(`${path}.response_mime_type`, 'When a response schema is set, response_mime_type must be application/json or text/x.enum.');
  }
  const thinkingConfig = isObject(generation.thinkingConfig) ? generation.thinkingConfig : undefined;
  let thinking: ValidatedGoogleRequest['thinking'];
  if (thinkingConfig) {
    const budget = thinkingConfig.thinkingBudget;
    if (budget !== undefined && !(Number.isInteger(budget) && (budget as number) >= -1))
      semantic(`${path}.thinking_config.thinking_budget`, 'thinking_budget must be an integer >= -1');
    if (!model.thinking && (budget ?? 0) !== 0) semantic(`${path}.thinking_config`, 'Thinking is not supported for this model.');
    if (budget !== 0 && model.thinking) thinking = { includeThoughts: thinkingConfig.includeThoughts === true };
  }
  return {
    maxOutputTokens: generation.maxOutputTokens as number | undefined,
    stopSequences: stops as string[],
    jsonMode: mimeType === 'application/json',
    candidateCount: (generation.candidateCount as number | undefined) ?? 1,
    thinking,
  };
}
