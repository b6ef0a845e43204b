/** agents.list and agent.identity.get: loopgate's one agent, "main". */
import { AGENT_ID, MAIN_KEY } from "../../sessions/keys.ts";
import { MethodError, type MethodRegistry } from "../methods.ts";
import { GatewayErrorCodes } from "../protocol.ts";
import { Scopes } from "../scopes.ts";
import { obj, str } from "./agent.ts";
import { agentIdentity, agentSummary, type AgentInfo } from "./agent-view.ts";

export function registerAgentsMethods(registry: MethodRegistry, info: AgentInfo): void {
  registry.register({
    name: "agents.list",
    scope: Scopes.READ,
    handler: () => ({
      defaultId: AGENT_ID,
      ownership: "sole",
      selectionRequired: false,
      mainKey: MAIN_KEY,
      scope: "per-sender",
      agents: [agentSummary(info)],
    }),
  });

  registry.register({
    name: "agent.identity.get",
    scope: Scopes.READ,
    handler: (params) => {
      const id = str(obj(params), "agentId", { max: 64 }) ?? AGENT_ID;
      if (id.toLowerCase() !== AGENT_ID) {
        throw new MethodError({
          code: GatewayErrorCodes.INVALID_REQUEST,
          message: `unknown agent ${JSON.stringify(id)}: this gateway runs one agent, "${AGENT_ID}"`,
          details: { code: "UNKNOWN_AGENT_ID", agentId: id },
        });
      }
      return agentIdentity(info);
    },
  });
}
