import type { RouteExtension } from '../core/runtime.ts';

/** Extra HTTP routes beyond the core's OpenAI surface. */
export const routeExtensions: RouteExtension[] = [];
