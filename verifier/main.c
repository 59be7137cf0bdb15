/* Placeholder main for sluice-verifier: replaced by the real service. */
#include <stdio.h>

int main(void)
{
	fprintf(stderr, "sluice-verifier: not implemented yet\n");
	return 2;
}
