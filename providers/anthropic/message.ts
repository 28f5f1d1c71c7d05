// The Messages API's turn shape, shared by the request builder and the thinking planner.

export type Block = Record<string, unknown>;

export interface AnthropicMessage {
  role: 'user' | 'assistant';
  content: Block[];
}
