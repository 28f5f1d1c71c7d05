import type { RouteExtension } from '../core/runtime.ts';
import { anthropicMessagesRoutes } from './anthropic-messages/route.ts';

/** Extra HTTP routes beyond the core's OpenAI surface. */
export const routeExtensions: RouteExtension[] = [anthropicMessagesRoutes];
