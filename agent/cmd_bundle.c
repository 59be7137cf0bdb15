/* Placeholder: replaced by the subcommand's real implementation. */
#include "agent/agent.h"

int cmd_statement(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	agent_log("statement: not implemented yet");
	return 2;
}

int cmd_receipt(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	agent_log("receipt: not implemented yet");
	return 2;
}

int cmd_audit(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	agent_log("audit: not implemented yet");
	return 2;
}
