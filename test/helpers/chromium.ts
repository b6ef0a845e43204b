/**
 * Debian's chromium, driven by playwright-core (which never downloads a
 * browser). One finder, one skip reason and one launch for every suite that
 * opens a page; LOOPGATE_CHROMIUM names another binary.
 */
import { execFileSync } from "node:child_process";
import { chromium, type Browser } from "playwright-core";

export function findChromium(): string | undefined {
  if (process.env.LOOPGATE_CHROMIUM) return process.env.LOOPGATE_CHROMIUM;
  for (const name of ["chromium", "chromium-browser"]) {
    try {
      return execFileSync("sh", ["-c", `command -v ${name}`], { encoding: "utf8" }).trim() || undefined;
    } catch {
      // next
    }
  }
  return undefined;
}

export const CHROMIUM = findChromium();

/** The skip reason for a suite that needs chromium (printed loudly once), or false. */
export function chromiumSkip(suite: string): string | false {
  if (CHROMIUM) return false;
  const reason = "Debian's chromium is not installed (apt-get install chromium)";
  console.warn(`\n*** SKIPPING ${suite}: ${reason} ***\n`);
  return reason;
}

/** Headless chromium as the suites run it, with any extra flags (host resolver rules, …). */
export function launchChromium(extraArgs: string[] = []): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM!,
    args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", ...extraArgs],
  });
}
