/**
 * json: copying the JSON values SCIM resources are made of.
 *
 *   stored or parsed resource -> cloneJson -> a copy that shares nothing with it
 *
 * Resources only ever come from JSON (a request body or a stored record), so a copy needs objects,
 * arrays and primitives only. structuredClone does the same through V8's serializer at several times
 * the cost, which the read path paid once per attribute of every resource it rendered.
 */

/**
 * cloneJson deep-copies a JSON value. Own enumerable keys are copied in order, `__proto__` included as
 * a plain key (as JSON.parse and structuredClone keep it); a value JSON cannot hold (a Date, a Map) is
 * left to structuredClone, so the result never aliases the input.
 */
export function cloneJson<T>(value: T): T {
  if (value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) {
    const out: unknown[] = new Array(value.length);
    for (let i = 0; i < value.length; i++) out[i] = cloneJson(value[i] as unknown);
    return out as T;
  }
  const proto = Object.getPrototypeOf(value) as unknown;
  if (proto !== Object.prototype && proto !== null) return structuredClone(value);
  const src = value as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(src)) {
    if (k === '__proto__') Object.defineProperty(out, k, { value: cloneJson(src[k]), enumerable: true, writable: true, configurable: true });
    else out[k] = cloneJson(src[k]);
  }
  return out as T;
}
