/* Fuzz TPM2B_PUBLIC parsing, the credential file parser, conversion to an OpenSSL key, role checks and MakeCredential
 * (which parses the EK public and builds keys from it). */
#include "quote/quote.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct quote_public_info info;
	struct quote_diag d;
	uint8_t *der = NULL, *id = NULL, *sec = NULL;
	char *pem = NULL;
	size_t len = 0, il = 0, sl = 0;
	static const uint8_t name[34] = {0x00, 0x0b, 1, 2, 3};
	static const uint8_t cred[32] = {7};

	if (quote_public_parse(data, size, &info, &d) == QUOTE_OK) {
		quote_check_ak(&info, &d);
		quote_check_sk(&info, &d);
	}
	if (quote_public_to_der(data, size, &der, &len) == QUOTE_OK)
		free(der);
	if (quote_public_to_pem(data, size, &pem) == QUOTE_OK)
		free(pem);
	{
		const uint8_t *a, *b;
		size_t al, bl;
		quote_credential_file_parse(data, size, &a, &al, &b, &bl);
	}
	if (quote_make_credential(data, size, name, sizeof name, cred, sizeof cred, &id, &il, &sec, &sl, &d) == QUOTE_OK) {
		free(id);
		free(sec);
	}
	return 0;
}
