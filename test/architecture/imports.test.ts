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

describe('layering', () => {
  test('core imports nothing under providers/, plugins/ or policies/', () => {
    const files = typeScriptFiles('core');
    // A scan that finds no files would pass vacuously.
    expect(files).toContain('core/pipeline.ts');
    expectNoViolations(violationsUnder('core'), 'core/ must not import providers/, plugins/ or policies/');
  });

  test('providers import nothing under plugins/ or policies/', () => {
    expect(typeScriptFiles('providers').length).toBeGreaterThan(0);
    expectNoViolations(violationsUnder('providers'), 'providers/ must not import plugins/ or policies/');
  });
});

describe('the checker itself', () => {
  const synthetic = [
    "import { KeywayError } from './errors.ts';", // 1: allowed
    "import { openAIProviderPlugin } from '../providers/openai/index.ts';", // 2
    "import type { PluginSource } from '../plugins/builtin.ts';", // 3: type-only still counts
    'export { budgetPolicy } from "../policies/budget/index.ts";', // 4
    "// import { nothing } from '../plugins/comment.ts';", // 5: a comment, ignored
    "const text = \"import x from '../plugins/string.ts'\";", // 6: a string, ignored
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
    const text = ["import { upstreamFailure } from '../../core/wire/provider-kit.ts';", "import { builtinPlugins } from '../../plugins/builtin.ts';"].join('\n');
    expect(formatViolations(checkSource('providers/acme/index.ts', text))).toBe("providers/acme/index.ts:2 imports '../../plugins/builtin.ts' (plugins/builtin.ts)");
  });

  test('leaves other layers alone', () => {
    expect(checkSource('plugins/builtin.ts', "import { x } from '../providers/openai/index.ts';")).toEqual([]);
  });
});
