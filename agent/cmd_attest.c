/* Placeholder: replaced by the subcommand's real implementation. */
#include "agent/agent.h"

int cmd_enroll(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	agent_log("enroll: not implemented yet");
	return 2;
}

int cmd_attest(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	agent_log("attest: not implemented yet");
	return 2;
}
