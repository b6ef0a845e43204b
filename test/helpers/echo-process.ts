/**
 * The echo upstream in a process of its own (`node echo-process.ts`): prints
 * "port N" once it listens, echoes until killed. Load tests use it so a
 * flooded host's upstream does not share the measuring test's event loop.
 */
import { startEchoUpstream } from "./relay.ts";

const echo = await startEchoUpstream();
console.log(`port ${echo.port}`);
