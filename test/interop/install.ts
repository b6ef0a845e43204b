/**
 * Installs the real openclaw package into its cache once, before the interop
 * files start in parallel (each would otherwise race to install it). Never
 * fails: when the install cannot be done the suites skip loudly with the reason.
 */
import { rmSync } from "node:fs";
import { openclawUnavailable, openclawDir, installFailureMarker, OPENCLAW_VERSION } from "../helpers/openclaw.ts";

rmSync(installFailureMarker(), { force: true });
const started = Date.now();
const why = openclawUnavailable();
if (why) console.warn(`interop: ${why}`);
else
  console.log(
    `interop: openclaw@${OPENCLAW_VERSION} ready in its cache (${openclawDir()}) after ${((Date.now() - started) / 1000).toFixed(1)} s`,
  );
