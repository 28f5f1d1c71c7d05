// Equivalent models across providers. The tiers are the core's (model-classes.json); each
// provider's manifest names its model of each tier. The table can be overridden by the operator for
// everyone and by an account for itself.

import { invalidField } from '../errors.ts';
import type { ProviderAdapter } from '../spec/provider.ts';
import tiersFile from './model-classes.json' with { type: 'json' };

export interface ModelClass {
  name: string;
  description?: string;
  /** provider → the model that provider serves for this class. */
  models: Record<string, string>;
  members: string[];
}

export type ModelClassOverrides = Record<string, Partial<Omit<ModelClass, 'name'>> | null>;

export class ModelClassTable {
  private readonly byName: ReadonlyMap<string, ModelClass>;
  /** model name (bare or `provider/model`) → class. */
  private readonly byMember: ReadonlyMap<string, ModelClass>;

  constructor(classes: ModelClass[]) {
    this.byName = new Map(classes.map((entry) => [entry.name, entry]));
    const byMember = new Map<string, ModelClass>();
    for (const entry of classes) {
      for (const member of entry.members) if (!byMember.has(member)) byMember.set(member, entry);
      for (const model of Object.values(entry.models)) if (!byMember.has(model)) byMember.set(model, entry);
    }
    this.byMember = byMember;
  }

  /** The class a requested model belongs to: by member name, or by class name (`flagship`). */
  classOf(model: string): ModelClass | undefined {
    return this.byMember.get(model) ?? this.byName.get(model);
  }

  /** The class of that name, members aside. */
  named(name: string): ModelClass | undefined {
    return this.byName.get(name);
  }

  list(): ModelClass[] {
    return [...this.byName.values()];
  }

  /** A new table with overrides applied: a null entry removes a class, a partial one merges. */
  withOverrides(overrides: ModelClassOverrides | undefined): ModelClassTable {
    if (overrides === undefined || Object.keys(overrides).length === 0) return this;
    const merged = new Map(this.byName);
    for (const [name, override] of Object.entries(overrides)) {
      if (override === null) {
        merged.delete(name);
        continue;
      }
      const base = merged.get(name);
      merged.set(name, {
        name,
        description: override.description ?? base?.description,
        models: { ...base?.models, ...override.models },
        members: override.members ?? base?.members ?? [],
      });
    }
    return new ModelClassTable([...merged.values()]);
  }
}

const shipped = new WeakMap<object, ModelClassTable>();

/** The shipped tiers, filled with each loaded provider's model of the tier; built once per provider set. */
export function shippedModelClasses(providers: ReadonlyMap<string, Pick<ProviderAdapter, 'modelClasses'>>): ModelClassTable {
  let table = shipped.get(providers);
  if (table === undefined) {
    const tiers = (tiersFile as unknown as { classes: Record<string, { description?: string }> }).classes;
    const classes: ModelClass[] = Object.entries(tiers).map(([name, tier]) => ({ name, description: tier.description, models: {}, members: [] }));
    for (const [provider, adapter] of providers) {
      for (const entry of classes) {
        const own = adapter.modelClasses?.[entry.name];
        if (own === undefined) continue;
        entry.models[provider] = own.model;
        entry.members.push(...(own.members ?? []));
      }
    }
    table = new ModelClassTable(classes);
    shipped.set(providers, table);
  }
  return table;
}

/** The most classes one override body may hold: the shipped table has three; each class is a Map entry on every routing table built. */
export const MAX_OVERRIDE_CLASSES = 100;
/** The most providers a class's `models` may name, and models its `members` may list. */
export const MAX_CLASS_MODELS = 100;
const MAX_MODEL_NAME = 200;
const MAX_DESCRIPTION = 1000;

const CLASS_FIELDS: readonly string[] = ['models', 'members', 'description'];

/**
 * Checks an override body: `{ classes: { name: { models?, members?, description? } | null } }`, each
 * list bounded (400 past a bound). A model name must be one: an empty or blank one (or one with spaces
 * around it) names no model a provider serves, and a class using it was answered 503 "No key … add a key".
 */
export function validateOverrides(body: unknown): ModelClassOverrides {
  const extra = body !== null && typeof body === 'object' && !Array.isArray(body) ? Object.keys(body).find((name) => name !== 'classes') : undefined;
  if (extra !== undefined) throw invalidField(extra, 'unknown field; known fields: classes');
  const classes = (body as { classes?: unknown } | null)?.classes;
  if (classes === null || typeof classes !== 'object' || Array.isArray(classes)) throw invalidField('classes', 'expected an object of class name → class');
  const entries = Object.entries(classes as Record<string, unknown>);
  if (entries.length > MAX_OVERRIDE_CLASSES) throw invalidField('classes', `must hold at most ${MAX_OVERRIDE_CLASSES} classes`);
  for (const [name, entry] of entries) {
    if (!/^[\w.-]{1,64}$/.test(name)) throw invalidField(`classes.${name}`, 'class names use letters, digits, _ . -');
    if (entry === null) continue;
    if (typeof entry !== 'object' || Array.isArray(entry)) throw invalidField(`classes.${name}`, 'expected an object or null');
    const unknown = Object.keys(entry).find((field) => !CLASS_FIELDS.includes(field));
    if (unknown !== undefined) throw invalidField(`classes.${name}.${unknown}`, `unknown field; known fields: ${CLASS_FIELDS.join(', ')}`);
    const { models, members, description } = entry as Record<string, unknown>;
    if (models !== undefined) checkModels(models, `classes.${name}.models`);
    if (members !== undefined) checkMembers(members, `classes.${name}.members`);
    if (description !== undefined && typeof description !== 'string') throw invalidField(`classes.${name}.description`, 'expected a string');
    if (typeof description === 'string' && description.length > MAX_DESCRIPTION)
      throw invalidField(`classes.${name}.description`, `must be at most ${MAX_DESCRIPTION} characters long`);
  }
  return classes as ModelClassOverrides;
}

function checkModels(models: unknown, param: string): void {
  if (models === null || typeof models !== 'object' || Array.isArray(models)) throw invalidField(param, 'expected an object of provider → model name');
  const entries = Object.entries(models);
  if (entries.length > MAX_CLASS_MODELS) throw invalidField(param, `must name at most ${MAX_CLASS_MODELS} providers`);
  for (const [provider, model] of entries) checkModelName(model, `${param}.${provider}`);
}

function checkMembers(members: unknown, param: string): void {
  if (!Array.isArray(members)) throw invalidField(param, 'expected an array of model names');
  if (members.length > MAX_CLASS_MODELS) throw invalidField(param, `must hold at most ${MAX_CLASS_MODELS} items`);
  members.forEach((member, index) => checkModelName(member, `${param}[${index}]`));
}

function checkModelName(model: unknown, param: string): void {
  if (typeof model !== 'string') throw invalidField(param, 'expected a model name');
  if (model.trim() === '' || model.trim() !== model) throw invalidField(param, 'must be a model name: not empty or blank, without spaces around it');
  if (model.length > MAX_MODEL_NAME) throw invalidField(param, `must be at most ${MAX_MODEL_NAME} characters long`);
}
