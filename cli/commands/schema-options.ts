/**
 * Command-line flags generated from a zod object schema: one flag per field (`numEnvs` → `--num-envs`), its value
 * parsed by the field's type, its help text the field's description and default. A config knob is then declared
 * once, in its schema, and the flags, `--help` and the settings objects cannot drift apart.
 */
import { InvalidArgumentError, Option } from 'commander';
import { z } from 'zod';
import { intArg, numberArg } from './options.js';

/** How one field's flag differs from the generated one. */
export interface FlagOverride {
  /** Flag name without dashes, when it is not the field's kebab-case name. */
  flag?: string;
  /** The value's name in the help text (default: `n`, `x`, `name`, `json` or `value`, by type). */
  arg?: string;
  /** Value parser (commander's `argParser`), when the field's type is not enough. */
  parse?: (value: string) => unknown;
}

/** A generated flag and the config field it sets. */
export interface SchemaFlag {
  key: string;
  /** Commander's attribute name for the flag's value. */
  attribute: string;
  options: Option[];
}

interface Unwrapped {
  base: z.ZodTypeAny;
  fallback: unknown;
  description?: string;
}

/** The field's innermost type, its default (if any) and the first description found on the way in. */
function unwrap(type: z.ZodTypeAny): Unwrapped {
  let t = type;
  let fallback: unknown;
  let description = type.description;
  for (;;) {
    description ??= t.description;
    if (t instanceof z.ZodDefault) {
      fallback = t._def.defaultValue();
      t = t._def.innerType;
    } else if (t instanceof z.ZodOptional || t instanceof z.ZodNullable) t = t.unwrap();
    else if (t instanceof z.ZodEffects) t = t.innerType();
    else return { base: t, fallback, description };
  }
}

const kebab = (key: string) => key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);

function jsonObjectArg(v: string): Record<string, unknown> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(v);
  } catch (err) {
    throw new InvalidArgumentError(`Expected a JSON object: ${(err as Error).message}.`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new InvalidArgumentError('Expected a JSON object.');
  return parsed as Record<string, unknown>;
}

/**
 * The flags of every described field of `schema` (fields without a description, such as nested objects with their
 * own flags, are left out). Booleans get `--x` and `--no-x`, so a flag not given leaves the value unset.
 */
export function schemaFlags(schema: z.AnyZodObject, overrides: Record<string, FlagOverride> = {}): SchemaFlag[] {
  const flags: SchemaFlag[] = [];
  for (const [key, field] of Object.entries(schema.shape as Record<string, z.ZodTypeAny>)) {
    const { base, fallback, description } = unwrap(field);
    if (description === undefined) continue;
    const name = overrides[key]?.flag ?? kebab(key);
    const shown = fallback === null ? 'none' : typeof fallback === 'string' ? fallback : JSON.stringify(fallback);
    const help = `${description}${fallback === undefined ? '' : ` (default ${shown})`}`;
    let options: Option[];
    if (base instanceof z.ZodBoolean) {
      options = [new Option(`--${name}`, help), new Option(`--no-${name}`, `the opposite of --${name}`)];
    } else {
      const arg =
        overrides[key]?.arg ??
        (base instanceof z.ZodNumber ? (base.isInt ? 'n' : 'x') : base instanceof z.ZodEnum ? 'name' : base instanceof z.ZodRecord ? 'json' : 'value');
      const option = new Option(`--${name} <${arg}>`, help);
      if (base instanceof z.ZodEnum) option.choices(base.options as string[]);
      const parse =
        overrides[key]?.parse ??
        (base instanceof z.ZodNumber ? (base.isInt ? intArg : numberArg) : base instanceof z.ZodRecord ? jsonObjectArg : undefined);
      if (parse) option.argParser(parse);
      options = [option];
    }
    flags.push({ key, attribute: options[0].attributeName(), options });
  }
  return flags;
}

/** The config fields that flags set (only the flags given). */
export function flagValues(flags: SchemaFlag[], given: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const f of flags) if (given[f.attribute] !== undefined) out[f.key] = given[f.attribute];
  return out;
}
