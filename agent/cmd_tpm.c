/* Placeholder: replaced by the subcommand's real implementation. */
#include "agent/agent.h"

int cmd_tpm(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	agent_log("tpm: not implemented yet");
	return 2;
}

int cmd_quote(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	agent_log("quote: not implemented yet");
	return 2;
}

int cmd_eventlog(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	agent_log("eventlog: not implemented yet");
	return 2;
}
