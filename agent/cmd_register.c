/* Placeholder: replaced by the subcommand's real implementation. */
#include "agent/agent.h"

int cmd_register(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	agent_log("register: not implemented yet");
	return 2;
}

int cmd_ts(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	agent_log("ts: not implemented yet");
	return 2;
}
