/* Placeholder: replaced by the subcommand's real implementation. */
#include "agent/agent.h"

int cmd_measure(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	agent_log("measure: not implemented yet");
	return 2;
}
