// The content-blocking policy: when a team's `usage_controls.block_sensitive_content` is on, every
// message text, tool-call argument and text the dialect forwards as sent (FORWARDED_TEXTS) is scanned
// before the first upstream call (`call` stage) for secrets, payment cards, national ids and IBANs
// (scan.ts). A match is refused with 400 `sensitive_content_blocked`, naming the detector and where it
// was, never the content. A request whose team has the control off returns before the request is touched.

import { KeywayError } from '../../core/errors.ts';
import type { RequestContext } from '../../core/spec/lifecycle.ts';
import type { PluginDefinition } from '../../core/spec/plugin.ts';
import type { SnapshotService } from '../../core/spec/services.ts';
import { teamOf, type TeamPolicyOptions, type TeamView } from '../../plugins/teams/types.ts';
import { DETECTOR_LABELS } from './detectors.ts';
import { type Finding, scanRequest } from './scan.ts';

export const CONTENT_BLOCKING_PLUGIN = 'content-blocking';

/** Where the finding is, as the client sent it: on /v1/messages a `system` prompt is message 0 of the translation. */
function locate(finding: Finding, context: RequestContext): { where: string; param: string } {
  if (finding.forwarded !== undefined) return finding.forwarded;
  const part = finding.customInput === true ? 'input' : 'arguments';
  const toolCalls = finding.toolCallIndex === undefined ? '' : `, tool call ${finding.toolCallIndex} ${part}`;
  const field = finding.customInput === true ? 'custom.input' : 'function.arguments';
  const calls = finding.messageName === true ? "'s name" : toolCalls;
  const callsParam =
    finding.messageName === true ? '.name' : finding.toolCallIndex === undefined ? '.content' : `.tool_calls[${finding.toolCallIndex}].${field}`;
  if (finding.field !== undefined) return { where: `the ${finding.field}`, param: `${finding.field}.content` };
  if (finding.inputIndex !== undefined) {
    const input = Array.isArray(context.request.input) ? `input ${finding.inputIndex}` : 'the input';
    return { where: input, param: Array.isArray(context.request.input) ? `input[${finding.inputIndex}]` : 'input' };
  }
  let index = finding.messageIndex;
  if (context.endpoint === 'responses') return locateInResponses(index, calls, context);
  if (context.endpoint === 'messages' && context.request.messages[0]?.role === 'system') {
    if (index === 0) return { where: 'the system prompt', param: 'system' };
    index -= 1;
  }
  return { where: `message ${index}${calls}`, param: `messages[${index}]${callsParam}` };
}

/**
 * On /v1/responses the conversation was translated from `instructions` (message 0, when given) and the
 * `input` items: the refusal names those, not the translation's `messages[i]`. The body is read again
 * only here, on a refusal, while the core still holds its text.
 */
function locateInResponses(index: number, calls: string, context: RequestContext): { where: string; param: string } {
  let instructions = false;
  try {
    const body = JSON.parse(context.bodyText ?? '{}') as { instructions?: unknown };
    instructions = typeof body.instructions === 'string' && body.instructions !== '';
  } catch {
    // Not JSON: the request was parsed already, so this does not happen; name the input.
  }
  if (instructions && index === 0) return { where: 'the instructions', param: 'instructions' };
  return { where: `input message ${instructions ? index - 1 : index}${calls}`, param: 'input' };
}

export function refusalFor(finding: Finding, context: RequestContext): KeywayError {
  const { where, param } = locate(finding, context);
  const detail = `Blocked by the team's sensitive-content control: ${where} contains ${DETECTOR_LABELS[finding.detector]} (detector '${finding.detector}'). Remove it and retry.`;
  return new KeywayError('sensitive_content_blocked', { detail }, { param, extra: { detector: finding.detector } });
}

/** Kept under this name for callers of the factory. */
export type PolicyOptions = TeamPolicyOptions;

export function contentBlockingPolicy(options: PolicyOptions = {}): PluginDefinition {
  const lookup = options.lookup ?? teamOf;
  return {
    name: options.name ?? CONTENT_BLOCKING_PLUGIN,
    version: '1.0.0',
    apiVersion: 1,
    kind: 'policy',
    description: 'Refuses requests carrying secrets, card numbers, national ids or IBANs for teams with block_sensitive_content',
    dependencies: ['teams'],
    setup({ services }) {
      return {
        hooks: {
          call(context) {
            if (lookup(services.snapshot, context)?.permissions.usage_controls?.block_sensitive_content !== true) return;
            const finding = scanRequest(context.request);
            if (finding !== undefined) throw refusalFor(finding, context);
          },
        },
      };
    },
  };
}

export const contentBlockingPlugin = contentBlockingPolicy();
export default contentBlockingPlugin;
