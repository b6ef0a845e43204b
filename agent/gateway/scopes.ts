/**
 * Roles and scopes. An operator connection asks for scopes in `connect`;
 * each method names the scope it needs; `operator.admin` implies all.
 */
export const Scopes = {
  READ: "operator.read",
  WRITE: "operator.write",
  ADMIN: "operator.admin",
  APPROVALS: "operator.approvals",
  PAIRING: "operator.pairing",
} as const;

export const ALL_OPERATOR_SCOPES: readonly string[] = Object.values(Scopes);

/** Scopes granted when a client asks for none (the CLI's default). */
export const DEFAULT_SCOPES: readonly string[] = [Scopes.ADMIN];

export function hasScope(granted: readonly string[], needed: string): boolean {
  if (granted.includes(Scopes.ADMIN)) return true;
  if (granted.includes(needed)) return true;
  // write implies read
  return needed === Scopes.READ && granted.includes(Scopes.WRITE);
}

/** Grants what the client asked for, intersected with what its credential allows. */
export function grantScopes(requested: readonly string[] | undefined, allowed: readonly string[]): string[] {
  const want = requested && requested.length > 0 ? requested : DEFAULT_SCOPES;
  return want.filter((s) => hasScope(allowed, s));
}
