/* libquote private: opening a TCTI (own poll()-based swtpm/device TCTIs, else tctildr). */
#ifndef SLUICE_QUOTE_TCTI_INT_H
#define SLUICE_QUOTE_TCTI_INT_H

#include "quote/quote.h"

#include <tss2/tss2_tcti.h>

/* *ret_own tells tcti_close which kind it is. why gets one line on failure. */
enum quote_err quote_tcti_open(const char *conf, unsigned timeout_ms, TSS2_TCTI_CONTEXT **ret, int *ret_own, char *why,
			 size_t whylen);
void quote_tcti_close(TSS2_TCTI_CONTEXT **tcti, int is_own);

#endif
