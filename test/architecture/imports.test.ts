// The layering rule, enforced: core knows no provider, plugin or policy by name; providers know
// core but not plugins or policies. The composition root (plugins/) is the only place that wires
// them together. Imports are read with the TypeScript parser, so comments and strings that merely
// mention a path never count, and type-only imports do.

import { describe, expect, test } from 'bun:test';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import ts from 'typescript';

const REPOSITORY_ROOT = resolve(import.meta.dir, '../..');

interface ImportSite {
  specifier: string;
  line: number;
}

interface Violation {
  file: string;
  line: number;
  specifier: string;
  target: string;
}

interface LayerRule {
  layer: string;
  forbidden: readonly string[];
}

const RULES: readonly LayerRule[] = [
  { layer: 'core', forbidden: ['providers', 'plugins', 'policies'] },
  { layer: 'providers', forbidden: ['plugins', 'policies'] },
];

function literalText(node: ts.Node | undefined): string | undefined {
  return node !== undefined && (ts.isStringLiteral(node) || ts.isNoSubstitutionTemplateLiteral(node)) ? node.text : undefined;
}

/** Every module a source text names: import/export declarations, `import()`, `import('x').T`, `require()`. */
function findImports(fileName: string, text: string): ImportSite[] {
  const source = ts.createSourceFile(fileName, text, ts.ScriptTarget.Latest, false, ts.ScriptKind.TS);
  const sites: ImportSite[] = [];
  const add = (specifierNode: ts.Node | undefined): void => {
    const specifier = literalText(specifierNode);
    if (specifier === undefined || specifierNode === undefined) return;
    sites.push({ specifier, line: source.getLineAndCharacterOfPosition(specifierNode.getStart(source)).line + 1 });
  };
  const visit = (node: ts.Node): void => {
    if (ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) add(node.moduleSpecifier);
    else if (ts.isImportEqualsDeclaration(node) && ts.isExternalModuleReference(node.moduleReference)) add(node.moduleReference.expression);
    else if (ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument)) add(node.argument.literal);
    else if (ts.isCallExpression(node)) {
      const isDynamicImport = node.expression.kind === ts.SyntaxKind.ImportKeyword;
      const isRequire = ts.isIdentifier(node.expression) && node.expression.text === 'require';
      if (isDynamicImport || isRequire) add(node.arguments[0]);
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return sites;
}

/** The repository-relative path a specifier points at; undefined for packages (`bun:test`, `elysia`). */
function resolveSpecifier(importer: string, specifier: string, root: string = REPOSITORY_ROOT): string | undefined {
  if (!specifier.startsWith('.') && !isAbsolute(specifier)) return undefined;
  const absolute = isAbsolute(specifier) ? specifier : resolve(dirname(join(root, importer)), specifier);
  return relative(root, absolute).split(sep).join('/');
}

/** The rule violations in one file's text; `file` is repository-relative with forward slashes. */
function checkSource(file: string, text: string, root: string = REPOSITORY_ROOT): Violation[] {
  const layer = file.split('/')[0];
  const rule = RULES.find((candidate) => candidate.layer === layer);
  if (rule === undefined) return [];
  const violations: Violation[] = [];
  for (const site of findImports(file, text)) {
    const target = resolveSpecifier(file, site.specifier, root);
    if (target === undefined) continue;
    const targetLayer = target.split('/')[0] ?? '';
    if (rule.forbidden.includes(targetLayer)) violations.push({ file, line: site.line, specifier: site.specifier, target });
  }
  return violations;
}

function formatViolations(violations: readonly Violation[]): string {
  return violations.map((violation) => `${violation.file}:${violation.line} imports '${violation.specifier}' (${violation.target})`).join('\n');
}

function typeScriptFiles(directory: string): string[] {
  const found: string[] = [];
  for (const entry of readdirSync(join(REPOSITORY_ROOT, directory), { withFileTypes: true })) {
    const path = `${directory}/${entry.name}`;
    if (entry.isDirectory()) found.push(...typeScriptFiles(path));
    else if (entry.isFile() && entry.name.endsWith('.ts')) found.push(path);
  }
  return found;
}

function violationsUnder(layer: string): Violation[] {
  return typeScriptFiles(layer).flatMap((file) => checkSource(file, readFileSync(join(REPOSITORY_ROOT, file), 'utf8')));
}

/** Fails with every offending file:line listed, so one run shows the whole problem. */
function expectNoViolations(violations: readonly Violation[], rule: string): void {
  if (violations.length > 0) throw new Error(`${rule}; offending imports:\n${formatViolations(violations)}`);
}

/** Folders under providers/ that are shared bases, not providers: any provider may build on them. */
const SHARED_PROVIDER_BASES: ReadonlySet<string> = new Set(['openai-compatible']);

/**
 * What a leaf (plugin, provider, policy) may import from core: the contracts, the wire-format and
 * provider kit, the error table, the price catalog and the HTTP kit. An out-of-tree plugin gets the
 * same through `services`; everything else in core is internal and may change without notice.
 */
const PUBLIC_CORE_PREFIXES: readonly string[] = [
  'core/spec/',
  'core/wire/',
  'core/errors.ts',
  'core/catalog/',
  'core/http/kit/',
  'core/logger.ts',
  'core/services.ts',
  // A plugin that starts a thread for batch work (the embedded store's usage writer) may let it give up
  // wake-up preemption the way the core's helper threads do.
  'core/process/thread-scheduling.ts',
];

/** The composition root wires internals together; it is the one leaf allowed to. */
// plugins/instance-lease.ts: the entry point's choice of the instance lease for KEYWAY_DATABASE_URL.
const COMPOSITION_ROOT: ReadonlySet<string> = new Set([
  'plugins/main.ts',
  'plugins/builtin.ts',
  'plugins/process-start.ts',
  'plugins/copy-store.ts',
  'plugins/instance-lease.ts',
]);

const LEAF_LAYERS = ['plugins', 'providers', 'policies'] as const;

function leafViolations(file: string, text: string): Violation[] {
  if (COMPOSITION_ROOT.has(file)) return [];
  const [layer, folder] = file.split('/');
  const violations: Violation[] = [];
  for (const site of findImports(file, text)) {
    const target = resolveSpecifier(file, site.specifier);
    if (target === undefined) continue;
    const [targetLayer, targetFolder] = target.split('/');
    const internalCore = targetLayer === 'core' && !PUBLIC_CORE_PREFIXES.some((prefix) => target.startsWith(prefix));
    const otherProvider = layer === 'providers' && targetLayer === 'providers' && targetFolder !== folder && !SHARED_PROVIDER_BASES.has(targetFolder ?? '');
    if (internalCore || otherProvider) violations.push({ file, line: site.line, specifier: site.specifier, target });
  }
  return violations;
}

/** Every provider name the built-in providers answer to, and the catalog names they map. */
function providerNames(): string[] {
  const folders = readdirSync(join(REPOSITORY_ROOT, 'providers'), { withFileTypes: true })
    .filter((entry) => entry.isDirectory() && !SHARED_PROVIDER_BASES.has(entry.name))
    .map((entry) => entry.name);
  return [...folders, 'gemini', 'claude', 'groq', 'mistral', 'deepseek', 'together', 'ollama', 'vllm', 'cohere_chat', 'together_ai'];
}

/**
 * Core's vocabulary is the OpenAI Chat Completions wire format, so it may name that format: where
 * the format lives (core/wire/) and as the stream part that carries its chunks (`openai-chunk`).
 */
function allowedName(file: string, name: string, literal: string): boolean {
  return name === 'openai' && (file.startsWith('core/wire/') || literal === 'openai-chunk');
}

function stringLiterals(fileName: string, text: string): Array<{ value: string; line: number }> {
  const source = ts.createSourceFile(fileName, text, ts.ScriptTarget.Latest, false, ts.ScriptKind.TS);
  const found: Array<{ value: string; line: number }> = [];
  const visit = (node: ts.Node): void => {
    // Module specifiers are paths, governed by the import rules above.
    if ((ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) && node.moduleSpecifier !== undefined) return;
    if (
      ts.isStringLiteral(node) ||
      ts.isNoSubstitutionTemplateLiteral(node) ||
      ts.isTemplateHead(node) ||
      ts.isTemplateMiddle(node) ||
      ts.isTemplateTail(node) ||
      ts.isRegularExpressionLiteral(node)
    ) {
      found.push({ value: node.text, line: source.getLineAndCharacterOfPosition(node.getStart(source)).line + 1 });
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return found;
}

function providerNameMentions(file: string, text: string, names: readonly string[]): string[] {
  const literals = file.endsWith('.json') ? text.split('\n').map((value, index) => ({ value, line: index + 1 })) : stringLiterals(file, text);
  const mentions: string[] = [];
  for (const literal of literals) {
    for (const name of names) {
      if (allowedName(file, name, literal.value)) continue;
      if (new RegExp(`(^|[^a-z])${name}([^a-z]|$)`, 'i').test(literal.value))
        mentions.push(`${file}:${literal.line} names '${name}': ${JSON.stringify(literal.value.slice(0, 80))}`);
    }
  }
  return mentions;
}

function filesUnder(directory: string, extensions: readonly string[]): string[] {
  const found: string[] = [];
  for (const entry of readdirSync(join(REPOSITORY_ROOT, directory), { withFileTypes: true })) {
    const path = `${directory}/${entry.name}`;
    if (entry.isDirectory()) found.push(...filesUnder(path, extensions));
    else if (entry.isFile() && extensions.some((extension) => entry.name.endsWith(extension))) found.push(path);
  }
  return found;
}

/** Import cycles among the given files, each as the list of files around the loop. */
function findCycles(files: readonly string[]): string[][] {
  const known = new Set(files);
  const edges = new Map<string, string[]>();
  for (const file of files) {
    const targets = findImports(file, readFileSync(join(REPOSITORY_ROOT, file), 'utf8'))
      .map((site) => resolveSpecifier(file, site.specifier))
      .filter((target): target is string => target !== undefined && known.has(target));
    edges.set(file, targets);
  }
  const cycles: string[][] = [];
  const state = new Map<string, 'visiting' | 'done'>();
  const stack: string[] = [];
  const visit = (file: string): void => {
    state.set(file, 'visiting');
    stack.push(file);
    for (const target of edges.get(file) ?? []) {
      if (state.get(target) === 'visiting') cycles.push([...stack.slice(stack.indexOf(target)), target]);
      else if (state.get(target) === undefined) visit(target);
    }
    stack.pop();
    state.set(file, 'done');
  };
  for (const file of files) if (state.get(file) === undefined) visit(file);
  return cycles;
}

describe('layering', () => {
  test('core imports nothing under providers/, plugins/ or policies/', () => {
    const files = typeScriptFiles('core');
    // A scan that finds no files would pass vacuously.
    expect(files).toContain('core/lifecycle/runner.ts');
    expectNoViolations(violationsUnder('core'), 'core/ must not import providers/, plugins/ or policies/');
  });

  test('providers import nothing under plugins/ or policies/', () => {
    expect(typeScriptFiles('providers').length).toBeGreaterThan(0);
    expectNoViolations(violationsUnder('providers'), 'providers/ must not import plugins/ or policies/');
  });
});

describe('boundaries', () => {
  test('plugins, providers and policies import only the public core (the composition root excepted)', () => {
    const files = LEAF_LAYERS.flatMap((layer) => typeScriptFiles(layer));
    expect(files).toContain('plugins/anthropic-messages/index.ts');
    const violations = files.flatMap((file) => leafViolations(file, readFileSync(join(REPOSITORY_ROOT, file), 'utf8')));
    expectNoViolations(violations, `leaves may import from core only ${PUBLIC_CORE_PREFIXES.join(', ')}, and a provider no other provider`);
  });

  test('core names no provider in its code or data', () => {
    const names = providerNames();
    expect(names).toContain('anthropic');
    const mentions = filesUnder('core', ['.ts', '.json'])
      .filter((file) => !file.endsWith('model-prices.json'))
      .flatMap((file) => providerNameMentions(file, readFileSync(join(REPOSITORY_ROOT, file), 'utf8'), names));
    if (mentions.length > 0) throw new Error(`core must not name a provider:\n${mentions.join('\n')}`);
  });

  test('no import cycles in core, plugins, providers or policies', () => {
    const files = ['core', ...LEAF_LAYERS].flatMap((layer) => typeScriptFiles(layer));
    const cycles = findCycles(files);
    if (cycles.length > 0) throw new Error(`import cycles:\n${cycles.map((cycle) => cycle.join(' -> ')).join('\n')}`);
  });
});

describe('the boundary checkers themselves', () => {
  test('a provider importing another provider or core internals is reported; the shared base and public core are not', () => {
    const text = [
      "import { usageFromOpenAI } from '../openai-compatible/usage.ts';",
      "import { parseGemini } from '../google/response.ts';",
      "import type { Router } from '../../core/routing/router.ts';",
      "import { upstreamFailure } from '../../core/wire/provider-kit.ts';",
      "import type { ChatRequest } from '../../core/spec/vocabulary.ts';",
    ].join('\n');
    expect(leafViolations('providers/acme/index.ts', text).map((violation) => violation.line)).toEqual([2, 3]);
    expect(leafViolations('plugins/main.ts', "import { createRuntime } from '../core/runtime.ts';")).toEqual([]);
  });

  test('provider names are found in literals and JSON, not in identifiers or comments', () => {
    const names = ['anthropic', 'gemini'];
    const text = ['// Anthropic in a comment', 'const anthropicLike = 1;', "const provider = 'anthropic';", 'const prefix = `gemini/${model}`;'].join('\n');
    expect(providerNameMentions('core/example.ts', text, names).map((mention) => mention.split(' ')[0])).toEqual(['core/example.ts:3', 'core/example.ts:4']);
    expect(providerNameMentions('core/table.json', '{\n  "models": { "anthropic": "x" }\n}', names)).toHaveLength(1);
    expect(providerNameMentions('core/wire/shape.ts', "const name = 'openai';", ['openai'])).toEqual([]);
  });
});

describe('the checker itself', () => {
  const synthetic = [
    "import { KeywayError } from './errors.ts';", // 1: allowed
    "import { openAIProviderPlugin } from '../providers/openai/index.ts';", // 2
    "import type { PluginSource } from '../plugins/builtin.ts';", // 3: type-only still counts
    'export { budgetPolicy } from "../policies/budget/index.ts";', // 4
    "// import { nothing } from '../plugins/comment.ts';", // 5: a comment, ignored
    'const text = "import x from \'../plugins/string.ts\'";', // 6: a string, ignored
    'export async function load() {', // 7
    "  return import('../plugins/lazy.ts');", // 8: dynamic import
    '}', // 9
    'import {', // 10
    '  something,', // 11
    "} from '../providers/multi-line.ts';", // 12: reported on the specifier's line
    "type Adapter = import('../providers/types.ts').Adapter;", // 13: import type node
    "import '../plugins/side-effect.ts';", // 14
    "import { Type } from '@sinclair/typebox';", // 15: a package
    "import { ok } from './plugins/inside-core.ts';", // 16: core/plugins/, not plugins/
  ].join('\n');

  test('finds every import form with its line', () => {
    expect(findImports('core/example.ts', synthetic).map((site) => `${site.line}:${site.specifier}`)).toEqual([
      '1:./errors.ts',
      '2:../providers/openai/index.ts',
      '3:../plugins/builtin.ts',
      '4:../policies/budget/index.ts',
      '8:../plugins/lazy.ts',
      '12:../providers/multi-line.ts',
      '13:../providers/types.ts',
      '14:../plugins/side-effect.ts',
      '15:@sinclair/typebox',
      '16:./plugins/inside-core.ts',
    ]);
  });

  test('reports a core file that imports providers, plugins or policies, as file:line', () => {
    const violations = checkSource('core/example.ts', synthetic);
    expect(violations.map((violation) => violation.line)).toEqual([2, 3, 4, 8, 12, 13, 14]);
    const message = formatViolations(violations);
    expect(message).toContain("core/example.ts:2 imports '../providers/openai/index.ts' (providers/openai/index.ts)");
    expect(message).toContain("core/example.ts:12 imports '../providers/multi-line.ts' (providers/multi-line.ts)");
    expect(() => expectNoViolations(violations, 'core rule')).toThrow(/core rule; offending imports:\ncore\/example\.ts:2 /);
  });

  test('applies the providers rule from a nested folder, allowing core', () => {
    const text = ["import { upstreamFailure } from '../../core/wire/provider-kit.ts';", "import { builtinPlugins } from '../../plugins/builtin.ts';"].join(
      '\n',
    );
    expect(formatViolations(checkSource('providers/acme/index.ts', text))).toBe(
      "providers/acme/index.ts:2 imports '../../plugins/builtin.ts' (plugins/builtin.ts)",
    );
  });

  test('leaves other layers alone', () => {
    expect(checkSource('plugins/builtin.ts', "import { x } from '../providers/openai/index.ts';")).toEqual([]);
  });
});
