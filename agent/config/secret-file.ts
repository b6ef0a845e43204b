/**
 * Secrets from files for the CLI (`--token-file`, `--password-file`): a flag
 * value is visible to every local user in `ps` and /proc, a file (mode 0600)
 * or an environment variable is not. `-` reads standard input. The file holds
 * the secret alone; surrounding whitespace and the final newline are dropped.
 */
import { readFileSync, statSync } from "node:fs";
import { LoopgateError, ErrorCodes } from "../../shared/errors.ts";

export const MAX_SECRET_FILE_BYTES = 16 * 1024;

export interface SecretFromFile {
  value: string;
  /** Set when others may read the file (group/other permission bits). */
  looseMode: boolean;
}

export function readSecretFile(path: string, flag: string): SecretFromFile {
  if (path === "") throw new LoopgateError(ErrorCodes.USAGE, `${flag} needs a file path (or - for standard input)`);
  let text: string;
  let looseMode = false;
  try {
    if (path === "-") text = readFileSync(0, "utf8");
    else {
      const st = statSync(path);
      if (!st.isFile())
        throw new LoopgateError(ErrorCodes.USAGE, `${flag}: ${path} is not a regular file`, {
          hint: "point it at a file that holds only the secret",
        });
      if (st.size > MAX_SECRET_FILE_BYTES)
        throw new LoopgateError(
          ErrorCodes.USAGE,
          `${flag}: ${path} is over ${MAX_SECRET_FILE_BYTES} bytes; it should hold only the secret`,
        );
      looseMode = (st.mode & 0o077) !== 0;
      text = readFileSync(path, "utf8");
    }
  } catch (e) {
    if (e instanceof LoopgateError) throw e;
    const code = (e as NodeJS.ErrnoException).code;
    throw new LoopgateError(ErrorCodes.CONFIG_UNREADABLE, `${flag}: cannot read ${path}${code ? ` (${code})` : ""}`, {
      hint: "check the path and that this user may read it",
    });
  }
  const value = text.trim();
  if (value === "")
    throw new LoopgateError(ErrorCodes.USAGE, `${flag}: ${path === "-" ? "standard input" : path} is empty`, {
      hint: "write the secret into the file (and chmod 600 it)",
    });
  if (value.length > 8192 || /[\r\n]/.test(value))
    throw new LoopgateError(
      ErrorCodes.USAGE,
      `${flag}: ${path === "-" ? "standard input" : path} must hold one secret on one line`,
    );
  return { value, looseMode };
}

/**
 * Resolves a secret given as a flag or a file flag (never both). Warns on
 * stderr, without the secret, when the file is readable by others.
 */
export function secretFromFlags(opts: {
  value: string | undefined;
  file: string | undefined;
  flag: string;
  fileFlag: string;
  warn?: (msg: string) => void;
}): { value: string; source: string } | undefined {
  if (opts.value !== undefined && opts.file !== undefined) {
    throw new LoopgateError(ErrorCodes.USAGE, `${opts.flag} and ${opts.fileFlag} are alternatives: pass one`, {
      hint: `prefer ${opts.fileFlag} (or the environment variable): ${opts.flag} is visible to other users in ps`,
    });
  }
  if (opts.file !== undefined) {
    const r = readSecretFile(opts.file, opts.fileFlag);
    if (r.looseMode)
      (opts.warn ?? ((m) => process.stderr.write(`loopgate: warning: ${m}\n`)))(
        `${opts.file} is readable by other users; chmod 600 it`,
      );
    return { value: r.value, source: opts.fileFlag };
  }
  if (opts.value !== undefined && opts.value !== "") return { value: opts.value, source: opts.flag };
  return undefined;
}

/** The gateway credential flags, as the gateway and the client both take them (each a value or a file, never both). */
export function credentialFlags(flags: {
  token?: string | undefined;
  tokenFile?: string | undefined;
  password?: string | undefined;
  passwordFile?: string | undefined;
}): { token: { value: string; source: string } | undefined; password: { value: string; source: string } | undefined } {
  return {
    token: secretFromFlags({ value: flags.token, file: flags.tokenFile, flag: "--token", fileFlag: "--token-file" }),
    password: secretFromFlags({
      value: flags.password,
      file: flags.passwordFile,
      flag: "--password",
      fileFlag: "--password-file",
    }),
  };
}
