/** `{ [k]: fn(v) }` for every key of an object, keeping its keys in the type (e.g. a zod shape's fields). */
export function mapShape<S extends object, R>(obj: S, fn: (value: S[keyof S], key: keyof S) => R): { [K in keyof S]: R } {
  const out: Partial<Record<keyof S, R>> = {};
  for (const key of Object.keys(obj) as (keyof S)[]) out[key] = fn(obj[key], key);
  return out as { [K in keyof S]: R };
}
