/**
 * A validator for the part of JSON Schema (2020-12) that docs/events.schema.json uses: `type`
 * (object, string), `properties`, `required`, `additionalProperties: false`, `const`, `enum`,
 * `pattern`. Any other keyword is refused, so that the schema cannot grow a rule this does not check.
 */
type Schema = Record<string, unknown>;

const known = new Set([
  '$schema',
  '$id',
  'title',
  'description',
  'type',
  'properties',
  'required',
  'additionalProperties',
  'const',
  'enum',
  'pattern',
]);

/** Every way `value` breaks `schema`, as `path: why`; none when it holds. */
export function validate(schema: Schema, value: unknown, path = '$'): string[] {
  const unknown = Object.keys(schema).filter((k) => !known.has(k));
  if (unknown.length)
    throw new Error(`${path}: keyword(s) this validator does not check: ${unknown.join(', ')}`);
  const errors: string[] = [];
  if ('const' in schema && value !== schema.const)
    errors.push(`${path}: not ${JSON.stringify(schema.const)}`);
  if (Array.isArray(schema.enum) && !schema.enum.includes(value)) errors.push(`${path}: not one of the enum`);
  if (schema.type === 'string' && typeof value !== 'string') return [...errors, `${path}: not a string`];
  if (
    typeof schema.pattern === 'string' &&
    typeof value === 'string' &&
    !new RegExp(schema.pattern, 'u').test(value)
  ) {
    errors.push(`${path}: does not match ${schema.pattern}`);
  }
  if (schema.type === 'object') {
    if (typeof value !== 'object' || value === null || Array.isArray(value))
      return [...errors, `${path}: not an object`];
    const record = value as Record<string, unknown>;
    const properties = (schema.properties ?? {}) as Record<string, Schema>;
    for (const name of (schema.required ?? []) as string[]) {
      if (!(name in record)) errors.push(`${path}.${name}: required`);
    }
    for (const [name, v] of Object.entries(record)) {
      const sub = properties[name];
      if (sub) errors.push(...validate(sub, v, `${path}.${name}`));
      else if (schema.additionalProperties === false) errors.push(`${path}.${name}: not allowed`);
    }
  }
  return errors;
}
