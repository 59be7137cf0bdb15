/* Placeholder: replaced by the subcommand's real implementation. */
#include "agent/agent.h"

int cmd_boot(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	agent_log("boot: not implemented yet");
	return 2;
}
