/* libscrapi internals (private to scrapi/). */
#ifndef SLUICE_SCRAPI_INT_H
#define SLUICE_SCRAPI_INT_H

#include <stddef.h>
#include <stdint.h>

/* 0 if buf is exactly one well-formed, definite-length CBOR item at most 16 deep whose declared
 * counts fit in the bytes present; -1 otherwise. Run before cbor_load(), which allocates what
 * an array or map head declares before reading it. */
int scrapi_cbor_precheck(const uint8_t *buf, size_t len);

#endif
