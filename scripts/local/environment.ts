/**
 * Runs `work` with `vars` in the process environment, the way Lambda hands a function its settings, and
 * then puts the environment back exactly as it was: what `vars` set and whatever the local runner set
 * meanwhile (the stack's settings, its endpoint and test credentials) are gone again, so that a caller
 * with a life of its own (the CLI) is not left configured as a function.
 */
export async function withEnvironment<T>(vars: Record<string, string>, work: () => Promise<T>): Promise<T> {
  const before = { ...process.env };
  Object.assign(process.env, vars);
  try {
    return await work();
  } finally {
    for (const name of Object.keys(process.env)) {
      if (!(name in before)) delete process.env[name];
    }
    Object.assign(process.env, before);
  }
}
