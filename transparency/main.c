/* Placeholder main for sluice-ts: replaced by the real service. */
#include <stdio.h>

int main(void)
{
	fprintf(stderr, "sluice-ts: not implemented yet\n");
	return 2;
}
