/* Placeholder: replaced by the subcommand's real implementation. */
#include "agent/agent.h"

int cmd_tools(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	agent_log("tools: not implemented yet");
	return 2;
}
