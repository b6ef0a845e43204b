/** The everyday OpenClaw CLI against loopgate, locally (the suite: test/helpers/openclaw-cli-suite.ts). */
import { cliSuite } from "../helpers/openclaw-cli-suite.ts";

cliSuite("local");
