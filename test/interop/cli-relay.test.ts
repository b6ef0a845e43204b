/** The everyday OpenClaw CLI against loopgate, through the Node relay (the suite: test/helpers/openclaw-cli-suite.ts). */
import { cliSuite } from "../helpers/openclaw-cli-suite.ts";

cliSuite("relay");
