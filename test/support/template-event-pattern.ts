/**
 * Just enough of EventBridge's event-pattern matching to check Cordon's rules against real events:
 * exact values, `prefix`, `numeric`, `exists` and `anything-but`, nested fields, and arrays in the
 * event (a field matches when any element does). Any other matcher throws, so a rule that grows a new
 * kind of filter fails its test instead of being half-checked.
 */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

export type EventPattern = { [field: string]: EventPattern | Json[] };

const numericOps: Record<string, (a: number, b: number) => boolean> = {
  '=': (a, b) => a === b,
  '<': (a, b) => a < b,
  '<=': (a, b) => a <= b,
  '>': (a, b) => a > b,
  '>=': (a, b) => a >= b,
};

function isObject(value: unknown): value is Record<string, Json> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** One element of a leaf's array against one value of the event (never an array). */
function matchesValue(matcher: Json, value: Json | undefined): boolean {
  if (!isObject(matcher)) return value !== undefined && matcher === value;
  const [kind, ...others] = Object.keys(matcher);
  if (kind === undefined || others.length > 0)
    throw new Error(`Unsupported matcher ${JSON.stringify(matcher)}`);
  const arg = matcher[kind];
  switch (kind) {
    case 'exists':
      return arg === (value !== undefined);
    case 'prefix':
      return typeof value === 'string' && typeof arg === 'string' && value.startsWith(arg);
    case 'numeric': {
      if (typeof value !== 'number' || !Array.isArray(arg)) return false;
      for (let i = 0; i < arg.length; i += 2) {
        const op = numericOps[String(arg[i])];
        const bound = arg[i + 1];
        if (!op || typeof bound !== 'number')
          throw new Error(`Unsupported numeric matcher ${JSON.stringify(arg)}`);
        if (!op(value, bound)) return false;
      }
      return true;
    }
    case 'anything-but': {
      if (value === undefined) return false;
      const excluded = Array.isArray(arg) ? arg : [arg];
      return !excluded.some((x) => (isObject(x) ? matchesValue(x, value) : x === value));
    }
    default:
      throw new Error(`Unsupported matcher ${JSON.stringify(matcher)}`);
  }
}

/** Every value at a path, following arrays on the way as EventBridge does (it flattens them). */
function valuesAt(event: Json | undefined, path: string[]): Json[] {
  if (event === undefined) return [];
  if (Array.isArray(event)) return event.flatMap((element) => valuesAt(element, path));
  const [head, ...rest] = path;
  if (head === undefined) return [event];
  return isObject(event) ? valuesAt(event[head], rest) : [];
}

/** Whether EventBridge would deliver `event` to a rule with `pattern`. */
export function matchesPattern(pattern: EventPattern, event: Json, path: string[] = []): boolean {
  return Object.entries(pattern).every(([field, sub]) => {
    if (!Array.isArray(sub)) return matchesPattern(sub, event, [...path, field]);
    // A field absent from the event only satisfies `exists: false`.
    const values = valuesAt(event, [...path, field]);
    if (values.length === 0) return sub.some((m) => matchesValue(m, undefined));
    return sub.some((m) => values.some((v) => matchesValue(m, v)));
  });
}
