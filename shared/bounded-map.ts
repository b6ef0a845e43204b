/**
 * A Map used as a bounded cache: insertion order is age, and past `max`
 * entries the oldest goes. One home for every cache that must not grow
 * without bound (TLS contexts, imported keys, verified tokens, identity
 * lookups, rate-limit peers).
 */
export function setBounded<K, V>(map: Map<K, V>, key: K, value: V, max: number): void {
  map.set(key, value);
  if (map.size > max) {
    const oldest = map.keys().next();
    if (!oldest.done) map.delete(oldest.value);
  }
}
