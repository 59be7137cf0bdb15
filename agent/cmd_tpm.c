/* sluice tpm | quote | quote verify | eventlog: the TPM-facing subcommands (libquote).
 *
 *   sluice tpm info  --tcti T [--json]
 *   sluice tpm ek    --tcti T [--alg rsa|ecc] [--pub FILE] [--cert FILE]
 *   sluice tpm ak    --tcti T [--pub FILE] [--pem FILE] [--name FILE]
 *   sluice tpm sk    --tcti T [--pub FILE] [--pem FILE] [--certify DIR [--nonce HEX]] [--sign HEX]
 *   sluice tpm extend --tcti T --pcr N [--type T] (--content FILE | --text STR) --slog FILE
 *   sluice tpm makecred --ek-pub FILE --name FILE --secret FILE --out FILE
 *   sluice tpm activate --tcti T [--alg rsa|ecc] --in FILE --out FILE
 *   sluice quote     --tcti T --nonce HEX [--pcrs SEL] --out DIR
 *   sluice quote verify --in DIR --nonce HEX [--ak FILE]
 *   sluice eventlog  [FILE] [--json] [--check-types SEL] [--slog FILE]
 */
#include "agent/agent.h"
#include "quote/quote.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/x509.h>

#define DEFAULT_TCTI "device:/dev/tpmrm0"
#define DEFAULT_PCRS "sha256:0,1,2,3,4,5,6,7,15"
#define DEFAULT_EVENTLOG "/sys/kernel/security/tpm0/binary_bios_measurements"
#define FILE_MAX (64u << 10)

static const char *tcti_default(void)
{
	const char *e = getenv("SLUICE_TCTI");
	return e && *e ? e : DEFAULT_TCTI;
}

static unsigned timeout_ms; /* --timeout, 0: libquote's default */

static int open_tpm_alg(const char *tcti, uint16_t ek_alg, struct quote_ctx **ret)
{
	struct quote_cfg cfg = {.tcti = tcti, .timeout_ms = timeout_ms, .ek_alg = ek_alg};
	struct quote_diag d;
	enum quote_err e = quote_ctx_new_diag(&cfg, ret, &d);
	if (e != QUOTE_OK) {
		agent_log("failed to open the TPM %s: %s (%s)", tcti, quote_strerror(e), d.detail);
		return -1;
	}
	return 0;
}

static int open_tpm(const char *tcti, struct quote_ctx **ret)
{
	return open_tpm_alg(tcti, 0, ret);
}

static int parse_timeout(const char *s)
{
	char *e;
	double v = strtod(s, &e);
	if (*e || v <= 0 || v > 3600) {
		agent_log("--timeout must be seconds in (0, 3600]");
		return -1;
	}
	timeout_ms = (unsigned)(v * 1000);
	return 0;
}

static int write_out(const char *dir, const char *name, const void *buf, size_t len)
{
	char path[4096];
	if (dir)
		snprintf(path, sizeof path, "%s/%s", dir, name);
	else
		snprintf(path, sizeof path, "%s", name);
	if (agent_write_file(path, buf, len, 0644) != 0) {
		agent_log("failed to write %s: %s", path, strerror(errno));
		return -1;
	}
	return 0;
}

static void hexline(const uint8_t *b, size_t n, char *out)
{
	agent_hex(b, n, out);
}

/* ---- sluice tpm ---- */

static void cert_names(const uint8_t *der, size_t len, char *subj, char *iss, size_t cap)
{
	const unsigned char *p = der;
	X509 *x = d2i_X509(NULL, &p, (long)len);
	subj[0] = iss[0] = 0;
	if (!x) {
		snprintf(subj, cap, "(unparsable certificate)");
		return;
	}
	X509_NAME_oneline(X509_get_subject_name(x), subj, (int)cap);
	X509_NAME_oneline(X509_get_issuer_name(x), iss, (int)cap);
	X509_free(x);
}

static int tpm_info(struct quote_ctx *q, int json)
{
	struct quote_tpm_info info;
	enum quote_err e;
	char banks[256], subj[2][256], iss[2][256];
	int has_cert[2] = {0, 0};

	if ((e = quote_tpm_info(q, &info)) != QUOTE_OK) {
		agent_log("failed to read TPM properties: %s (%s)", quote_strerror(e), quote_ctx_cause(q));
		return 1;
	}
	quote_pcr_selection_format(&info.banks, banks, sizeof banks);
	for (int k = 0; k < 2; k++) {
		uint8_t *der = NULL;
		size_t len = 0;
		if (quote_ek_cert(q, k ? QUOTE_ALG_ECC : QUOTE_ALG_RSA, &der, &len) == QUOTE_OK) {
			cert_names(der, len, subj[k], iss[k], sizeof subj[k]);
			has_cert[k] = 1;
		}
		free(der);
	}
	if (json) {
		json_t *o = json_pack("{s:s, s:s, s:[I,I], s:{s:I,s:I,s:I}, s:s, s:{s:b,s:b}, s:b, s:b}", "manufacturer",
				      info.manufacturer, "vendor", info.vendor, "firmware", (json_int_t)info.firmware[0],
				      (json_int_t)info.firmware[1], "spec", "level", (json_int_t)info.spec_level,
				      "revision", (json_int_t)info.spec_revision, "year", (json_int_t)info.spec_year,
				      "banks", banks, "ek_persistent", "rsa", info.ek_rsa_persistent, "ecc",
				      info.ek_ecc_persistent, "ak_present", info.ak_present, "statement_key_present",
				      info.sk_present);
		for (int k = 0; k < 2 && o; k++) {
			if (!has_cert[k])
				continue;
			json_object_set_new(o, k ? "ek_cert_ecc" : "ek_cert_rsa",
					    json_pack("{s:s,s:s}", "subject", subj[k], "issuer", iss[k]));
		}
		if (!o)
			return 1;
		char *s = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
		json_decref(o);
		if (!s)
			return 1;
		printf("%s\n", s);
		free(s);
		return 0;
	}
	printf("manufacturer   %s\n", info.manufacturer);
	printf("vendor         %s\n", info.vendor);
	printf("firmware       %08x.%08x\n", info.firmware[0], info.firmware[1]);
	printf("spec           level %u revision %u.%02u year %u\n", info.spec_level, info.spec_revision / 100,
	       info.spec_revision % 100, info.spec_year);
	printf("pcr banks      %s\n", banks);
	printf("ek rsa         %s%s\n", info.ek_rsa_persistent ? "persistent 0x81010001" : "not persistent",
	       info.ek_rsa_cert ? ", certificate in NV 0x01c00002" : ", no certificate");
	printf("ek ecc         %s%s\n", info.ek_ecc_persistent ? "persistent 0x81010016" : "not persistent",
	       info.ek_ecc_cert ? ", certificate present" : ", no certificate");
	for (int k = 0; k < 2; k++)
		if (has_cert[k])
			printf("ek %s cert    subject %s\n               issuer  %s\n", k ? "ecc" : "rsa", subj[k], iss[k]);
	printf("ak             %s\n", info.ak_present ? "present" : "absent (created on first quote)");
	printf("statement key  %s\n", info.sk_present ? "present" : "absent (created on first use)");
	return 0;
}

static int tpm_makecred(const char *ekpub, const char *namef, const char *secretf, const char *outf)
{
	uint8_t *ek = NULL, *name = NULL, *sec = NULL, *id = NULL, *es = NULL, *file = NULL;
	size_t ekl = 0, namel = 0, secl = 0, idl = 0, esl = 0, filel = 0;
	struct quote_diag d;
	enum quote_err e;
	int rc = 1;

	if (agent_read_file(ekpub, FILE_MAX, &ek, &ekl) != 0 || agent_read_file(namef, FILE_MAX, &name, &namel) != 0 ||
	    agent_read_file(secretf, 4096, &sec, &secl) != 0) {
		agent_log("failed to read the makecred inputs: %s", strerror(errno));
		goto out;
	}
	e = quote_make_credential(ek, ekl, name, namel, sec, secl, &id, &idl, &es, &esl, &d);
	if (e != QUOTE_OK) {
		agent_log("failed to make the credential: %s (%s)", quote_strerror(e), d.detail);
		goto out;
	}
	if (quote_credential_file_encode(id, idl, es, esl, &file, &filel) != QUOTE_OK ||
	    write_out(NULL, outf, file, filel) != 0)
		goto out;
	rc = 0;
out:
	if (sec)
		OPENSSL_cleanse(sec, secl);
	free(ek);
	free(name);
	free(sec);
	free(id);
	free(es);
	free(file);
	return rc;
}

static int tpm_activate(struct quote_ctx *q, const char *in, const char *outf)
{
	uint8_t *buf = NULL, out[64];
	const uint8_t *id, *es;
	size_t len = 0, idl, esl, outl = 0;
	enum quote_err e;
	int rc = 1;

	if (agent_read_file(in, FILE_MAX, &buf, &len) != 0) {
		agent_log("failed to read %s: %s", in, strerror(errno));
		return 1;
	}
	if (quote_credential_file_parse(buf, len, &id, &idl, &es, &esl) != QUOTE_OK) {
		agent_log("failed to parse %s: not a tpm2_makecredential file", in);
		goto out;
	}
	e = quote_activate_credential(q, id, idl, es, esl, out, &outl);
	if (e != QUOTE_OK) {
		agent_log("failed to activate the credential: %s (%s)", quote_strerror(e), quote_ctx_cause(q));
		goto out;
	}
	if (agent_write_file(outf, out, outl, 0400) != 0) {
		agent_log("failed to write %s: %s", outf, strerror(errno));
		goto out;
	}
	rc = 0;
out:
	OPENSSL_cleanse(out, sizeof out);
	free(buf);
	return rc;
}

static int tpm_sk(struct quote_ctx *q, const char *pub, const char *pem, const char *certify, const char *nonce_hex,
		  const char *sign_hex)
{
	struct quote_key sk, ak;
	struct quote_attestation att;
	struct quote_diag d;
	uint8_t nonce[QUOTE_NONCE_MAX], digest[32], sig[64];
	long nl = 0;
	int created = 0;
	char hex[2 * QUOTE_NAME_MAX + 1];
	enum quote_err e;

	if (nonce_hex && (nl = agent_unhex(nonce_hex, nonce, sizeof nonce)) <= 0) {
		agent_log("tpm sk: --nonce must be 1..64 bytes of hex");
		return 2;
	}
	if (sign_hex && agent_unhex(sign_hex, digest, sizeof digest) != 32) {
		agent_log("tpm sk: --sign must be a SHA-256 digest (64 hex digits)");
		return 2;
	}
	if ((e = quote_sk_ensure(q, &sk, &created)) != QUOTE_OK || (e = quote_ak_ensure(q, &ak, NULL)) != QUOTE_OK) {
		agent_log("failed to load or create the statement key / AK: %s (%s)", quote_strerror(e), quote_ctx_cause(q));
		return 1;
	}
	if (pub && write_out(NULL, pub, sk.pub, sk.pub_len) != 0)
		return 1;
	if (pem) {
		char *s = NULL;
		if (quote_public_to_pem(sk.pub, sk.pub_len, &s) != QUOTE_OK || write_out(NULL, pem, s, strlen(s)) != 0) {
			free(s);
			return 1;
		}
		free(s);
	}
	agent_hex(sk.name, sk.name_len, hex);
	if (sk.handle)
		printf("statement key 0x%08x %s name %s\n", sk.handle, created ? "created" : "loaded", hex);
	else
		printf("statement key transient (the TPM refused to persist it) name %s\n", hex);
	if (certify) {
		if (mkdir(certify, 0755) != 0 && errno != EEXIST) {
			agent_log("failed to create %s: %s", certify, strerror(errno));
			return 1;
		}
		if ((e = quote_sk_certify(q, nl ? nonce : NULL, (size_t)nl, &att)) != QUOTE_OK) {
			agent_log("failed to certify the statement key: %s (%s)", quote_strerror(e), quote_ctx_cause(q));
			return 1;
		}
		if (write_out(certify, "certify.msg", att.attest, att.attest_len) != 0 ||
		    write_out(certify, "certify.sig", att.sig, att.sig_len) != 0 ||
		    write_out(certify, "sk.pub", sk.pub, sk.pub_len) != 0 || write_out(certify, "ak.pub", ak.pub, ak.pub_len) != 0)
			return 1;
		e = quote_certify_verify(ak.pub, ak.pub_len, att.attest, att.attest_len, att.sig, att.sig_len, sk.pub,
					 sk.pub_len, nl ? nonce : NULL, (size_t)nl, NULL, &d);
		if (e != QUOTE_OK) {
			agent_log("the TPM's certification does not verify: %s (%s)", quote_strerror(e), d.detail);
			return 1;
		}
		printf("certify ok\n");
	}
	if (sign_hex) {
		char shex[129];
		if ((e = quote_sk_sign(q, digest, sig)) != QUOTE_OK) {
			agent_log("failed to sign: %s (%s)", quote_strerror(e), quote_ctx_cause(q));
			return 1;
		}
		agent_hex(sig, 64, shex);
		printf("signature %s\n", shex);
	}
	return 0;
}

static int tpm_extend(struct quote_ctx *q, unsigned pcr, uint32_t type, const char *contentf, const char *text,
		      const char *slogf)
{
	uint8_t *cbuf = NULL, *lbuf = NULL, *enc = NULL;
	size_t clen = 0, llen = 0, elen = 0;
	struct quote_slog *log = NULL;
	struct quote_diag d;
	enum quote_err e;
	int rc = 1;

	if (contentf) {
		if (agent_read_file(contentf, QUOTE_EVENT_DATA_MAX, &cbuf, &clen) != 0) {
			agent_log("failed to read %s: %s", contentf, strerror(errno));
			goto out;
		}
	}
	if (agent_read_file(slogf, QUOTE_EVENTLOG_MAX, &lbuf, &llen) == 0) {
		if ((e = quote_slog_parse(lbuf, llen, &log, &d)) != QUOTE_OK) {
			agent_log("failed to parse %s: %s (%s)", slogf, quote_strerror(e), d.detail);
			goto out;
		}
	} else if (errno == ENOENT) {
		if (quote_slog_new(&log) != QUOTE_OK)
			goto out;
	} else {
		agent_log("failed to read %s: %s", slogf, strerror(errno));
		goto out;
	}
	e = quote_pcr_extend(q, pcr, type, contentf ? cbuf : (const uint8_t *)text, contentf ? clen : strlen(text), log);
	if (e != QUOTE_OK) {
		agent_log("failed to extend PCR %u: %s (%s)", pcr, quote_strerror(e), quote_ctx_cause(q));
		goto out;
	}
	if (quote_slog_encode(log, &enc, &elen) != QUOTE_OK || agent_write_file(slogf, enc, elen, 0644) != 0) {
		agent_log("PCR %u extended but %s could not be written: %s", pcr, slogf, strerror(errno));
		goto out;
	}
	printf("extended PCR %u, record %zu\n", pcr, quote_slog_count(log) - 1);
	rc = 0;
out:
	quote_slog_free(log);
	free(cbuf);
	free(lbuf);
	free(enc);
	return rc;
}

static void tpm_usage(FILE *f)
{
	fprintf(f, "usage: sluice tpm info [--tcti T] [--json]\n"
		   "       sluice tpm ek [--tcti T] [--alg rsa|ecc] [--pub FILE] [--cert FILE]\n"
		   "       sluice tpm ak [--tcti T] [--pub FILE] [--pem FILE] [--name FILE] | --evict\n"
		   "       sluice tpm sk [--tcti T] [--pub FILE] [--pem FILE] [--certify DIR [--nonce HEX]]\n"
		   "                 [--sign HEX]\n"
		   "       sluice tpm extend [--tcti T] --pcr N [--type T] (--content FILE | --text STR)\n"
		   "                 --slog FILE\n"
		   "       sluice tpm makecred --ek-pub FILE --name FILE --secret FILE --out FILE\n"
		   "       sluice tpm activate [--tcti T] [--alg rsa|ecc] --in FILE --out FILE\n\n"
		   "  info  manufacturer, firmware, PCR banks, EK / AK / statement-key presence and\n"
		   "        the EK certificates' subject and issuer\n"
		   "  ek    write the EK public (TPM2B_PUBLIC) and its certificate (DER)\n"
		   "  ak    create the attestation key if absent (persistent 0x81010002) and write its\n"
		   "        public (TPM2B_PUBLIC), PEM and name (binary). The AK is a primary of the\n"
		   "        endorsement hierarchy: after --evict (removes it from its handle) the next\n"
		   "        use re-creates the same key, so enrolments stay valid; sk --evict likewise\n"
		   "  sk    create the statement key if absent (persistent 0x81010003: unrestricted ECC\n"
		   "        P-256, signs COSE ES256) and write its public; --certify DIR: TPM2_Certify it\n"
		   "        with the AK (qualifying data --nonce) into DIR/certify.msg, certify.sig,\n"
		   "        sk.pub, ak.pub and check it with sluice's verifier code; --sign HEX: sign\n"
		   "        that SHA-256 digest and print the signature as raw r||s hex\n"
		   "  extend  extend PCR N in every active bank with H(uint32_be(type) || content) and\n"
		   "        append the record to the sluice event log FILE (created if missing);\n"
		   "        type 1 rootfs, 2 released, 3 note (default)\n"
		   "  makecred  software TPM2_MakeCredential (no TPM): wrap SECRET (1..64 bytes) to the\n"
		   "        EK public (TPM2B_PUBLIC) and the AK name; writes tpm2_makecredential's\n"
		   "        file format (tpm2_activatecredential -i reads it)\n"
		   "  activate  TPM2_ActivateCredential with this TPM's AK and EK (--alg picks the EK,\n"
		   "        default RSA if persistent); writes the recovered secret (mode 0400)\n"
		   "  --tcti T     TPM to use (default $SLUICE_TCTI or %s), e.g. swtpm:host=127.0.0.1,port=2321\n"
		   "  --timeout S  per-command TPM timeout in seconds (default 30)\n"
		   "exit status: 0 ok, 1 failure, 2 usage\n",
		DEFAULT_TCTI);
}

int cmd_tpm(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"tcti", required_argument, NULL, 't'}, {"json", no_argument, NULL, 'j'},
		{"alg", required_argument, NULL, 'a'},  {"pub", required_argument, NULL, 'p'},
		{"cert", required_argument, NULL, 'c'}, {"pem", required_argument, NULL, 'P'},
		{"name", required_argument, NULL, 'n'}, {"help", no_argument, NULL, 'h'},
		{"ek-pub", required_argument, NULL, 'E'}, {"secret", required_argument, NULL, 'S'},
		{"in", required_argument, NULL, 'i'},   {"out", required_argument, NULL, 'o'},
		{"timeout", required_argument, NULL, 'T'}, {"certify", required_argument, NULL, 'C'},
		{"nonce", required_argument, NULL, 'N'}, {"sign", required_argument, NULL, 'G'},
		{"pcr", required_argument, NULL, 'R'},  {"type", required_argument, NULL, 'Y'},
		{"content", required_argument, NULL, 'F'}, {"text", required_argument, NULL, 'X'},
		{"slog", required_argument, NULL, 'L'}, {"evict", no_argument, NULL, 'V'},
		{NULL, 0, NULL, 0},
	};
	int evict = 0;
	const char *content = NULL, *text = NULL, *slogf = NULL;
	long pcr = -1, type = QUOTE_SLOG_NOTE;
	const char *certify = NULL, *nonce_hex = NULL, *sign_hex = NULL;
	const char *tcti = tcti_default(), *pub = NULL, *cert = NULL, *pem = NULL, *name = NULL, *sub;
	const char *ekpub = NULL, *secret = NULL, *in = NULL, *outf = NULL;
	uint16_t alg = 0;
	int json = 0, c, rc = 1;
	struct quote_ctx *q = NULL;

	if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		tpm_usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	sub = argv[1];
	optind = 1;
	while ((c = getopt_long(argc - 1, argv + 1, "h", longopts, NULL)) != -1) {
		switch (c) {
		case 't': tcti = optarg; break;
		case 'j': json = 1; break;
		case 'a':
			if (strcmp(optarg, "rsa") == 0)
				alg = QUOTE_ALG_RSA;
			else if (strcmp(optarg, "ecc") == 0)
				alg = QUOTE_ALG_ECC;
			else {
				agent_log("tpm: --alg must be rsa or ecc");
				return 2;
			}
			break;
		case 'p': pub = optarg; break;
		case 'c': cert = optarg; break;
		case 'P': pem = optarg; break;
		case 'n': name = optarg; break;
		case 'E': ekpub = optarg; break;
		case 'S': secret = optarg; break;
		case 'i': in = optarg; break;
		case 'o': outf = optarg; break;
		case 'C': certify = optarg; break;
		case 'N': nonce_hex = optarg; break;
		case 'G': sign_hex = optarg; break;
		case 'F': content = optarg; break;
		case 'X': text = optarg; break;
		case 'L': slogf = optarg; break;
		case 'V': evict = 1; break;
		case 'R':
		case 'Y': {
			char *end;
			long v = strtol(optarg, &end, 0);
			if (*end || v < 0 || (c == 'R' && v >= QUOTE_PCR_COUNT) || v > 0x7fffffffL) {
				agent_log("tpm: bad --%s '%s'", c == 'R' ? "pcr" : "type", optarg);
				return 2;
			}
			if (c == 'R')
				pcr = v;
			else
				type = v;
			break;
		}
		case 'T':
			if (parse_timeout(optarg) != 0)
				return 2;
			break;
		case 'h': tpm_usage(stdout); return 0;
		default: tpm_usage(stderr); return 2;
		}
	}
	if (optind != argc - 1 || (strcmp(sub, "info") && strcmp(sub, "ek") && strcmp(sub, "ak") && strcmp(sub, "sk") && strcmp(sub, "extend") &&
				   strcmp(sub, "makecred") && strcmp(sub, "activate"))) {
		tpm_usage(stderr);
		return 2;
	}
	if (strcmp(sub, "makecred") == 0) {
		if (!ekpub || !name || !secret || !outf) {
			tpm_usage(stderr);
			return 2;
		}
		return tpm_makecred(ekpub, name, secret, outf);
	}
	if (strcmp(sub, "extend") == 0 && (pcr < 0 || !slogf || !content == !text)) {
		tpm_usage(stderr);
		return 2;
	}
	if (strcmp(sub, "activate") == 0 && (!in || !outf)) {
		tpm_usage(stderr);
		return 2;
	}
	if (open_tpm_alg(tcti, strcmp(sub, "activate") == 0 ? alg : 0, &q) != 0)
		return 1;
	if (strcmp(sub, "activate") == 0) {
		rc = tpm_activate(q, in, outf);
		goto out;
	}
	if (evict && strcmp(sub, "ak") && strcmp(sub, "sk")) {
		tpm_usage(stderr);
		rc = 2;
		goto out;
	}
	if (strcmp(sub, "sk") == 0 && evict) {
		enum quote_err e = quote_key_evict(q, QUOTE_HANDLE_SK);
		if (e != QUOTE_OK)
			agent_log("failed to evict the statement key: %s (%s)", quote_strerror(e), quote_ctx_cause(q));
		else
			printf("statement key 0x%08x evicted\n", QUOTE_HANDLE_SK);
		rc = e == QUOTE_OK ? 0 : 1;
		goto out;
	}
	if (strcmp(sub, "sk") == 0) {
		rc = tpm_sk(q, pub, pem, certify, nonce_hex, sign_hex);
		goto out;
	}
	if (strcmp(sub, "extend") == 0) {
		rc = tpm_extend(q, (unsigned)pcr, (uint32_t)type, content, text, slogf);
		goto out;
	}
	if (strcmp(sub, "info") == 0) {
		rc = tpm_info(q, json);
	} else if (strcmp(sub, "ek") == 0) {
		struct quote_key ek;
		enum quote_err e = quote_ek_public(q, alg, &ek);
		char hex[2 * QUOTE_NAME_MAX + 1];
		if (e != QUOTE_OK) {
			agent_log("failed to read the EK: %s (%s)", quote_strerror(e), quote_ctx_cause(q));
			goto out;
		}
		if (pub && write_out(NULL, pub, ek.pub, ek.pub_len) != 0)
			goto out;
		if (cert) {
			uint8_t *der = NULL;
			size_t len = 0;
			e = quote_ek_cert(q, alg, &der, &len);
			if (e != QUOTE_OK) {
				agent_log("failed to read the EK certificate: %s (%s)", quote_strerror(e), quote_ctx_cause(q));
				goto out;
			}
			e = write_out(NULL, cert, der, len) == 0 ? QUOTE_OK : QUOTE_ERR_IO;
			free(der);
			if (e != QUOTE_OK)
				goto out;
		}
		hexline(ek.name, ek.name_len, hex);
		printf("ek name %s\n", hex);
		rc = 0;
	} else if (evict) {
		/* sub is "ak" here (sk handled above) */
		enum quote_err e = quote_key_evict(q, QUOTE_HANDLE_AK);
		if (e != QUOTE_OK) {
			agent_log("failed to evict the AK: %s (%s)", quote_strerror(e), quote_ctx_cause(q));
			goto out;
		}
		printf("ak 0x%08x evicted\n", QUOTE_HANDLE_AK);
		rc = 0;
	} else {
		struct quote_key ak;
		int created = 0;
		char hex[2 * QUOTE_NAME_MAX + 1];
		enum quote_err e = quote_ak_ensure(q, &ak, &created);
		if (e != QUOTE_OK) {
			agent_log("failed to load or create the AK: %s (%s)", quote_strerror(e), quote_ctx_cause(q));
			goto out;
		}
		if (pub && write_out(NULL, pub, ak.pub, ak.pub_len) != 0)
			goto out;
		if (name && write_out(NULL, name, ak.name, ak.name_len) != 0)
			goto out;
		if (pem) {
			char *s = NULL;
			if (quote_public_to_pem(ak.pub, ak.pub_len, &s) != QUOTE_OK || write_out(NULL, pem, s, strlen(s)) != 0) {
				free(s);
				goto out;
			}
			free(s);
		}
		hexline(ak.name, ak.name_len, hex);
		if (ak.handle)
			printf("ak 0x%08x %s name %s\n", ak.handle, created ? "created" : "loaded", hex);
		else
			printf("ak transient (the TPM refused to persist it: %s) name %s\n", quote_ctx_cause(q), hex);
		rc = 0;
	}
out:
	quote_ctx_free(q);
	return rc;
}

/* ---- sluice quote ---- */

static void quote_usage(FILE *f)
{
	fprintf(f,
		"usage: sluice quote [--tcti T] [--timeout S] --nonce HEX [--pcrs SEL] --out DIR\n"
		"       sluice quote verify --in DIR --nonce HEX [--ak FILE] [--eventlog FILE] [--slog FILE]\n"
		"                           [--repeat N]\n\n"
		"  quote   TPM2_Quote with the AK (created at 0x81010002 if absent) over SEL (default\n"
		"          %s), qualifying data = the nonce; the PCR values are read in\n"
		"          the same step. Writes into DIR: quote.msg (TPMS_ATTEST), quote.sig\n"
		"          (TPMT_SIGNATURE), quote.pcrs (PCR values, tpm2_checkquote -f format),\n"
		"          ak.pub (TPM2B_PUBLIC), ak.pub.pem, ak.name. Check them independently with\n"
		"          tpm2_checkquote -u DIR/ak.pub.pem -m DIR/quote.msg -s DIR/quote.sig\n"
		"                          -f DIR/quote.pcrs -g sha256 -q NONCE\n"
		"  verify  check DIR's quote with sluice's own code: AK attributes, signature, magic,\n"
		"          nonce, PCR selection and digest. --ak overrides DIR/ak.pub (TPM2B_PUBLIC).\n"
		"          --eventlog / --slog: the firmware log and/or the sluice event log must\n"
		"          replay (from reset values) to every quoted PCR value.\n"
		"  --tcti T      TPM to use (default $SLUICE_TCTI or %s)\n"
		"  --timeout S   per-command TPM timeout in seconds (default 30)\n"
		"  --repeat N    take N quotes in this process and print their latency (median,\n"
		"                min, p90 in ms); the files written are those of the last quote.\n"
		"                With verify: run the verification N times and print its mean\n"
		"exit status: 0 ok, 1 failure / quote rejected, 2 usage\n",
		DEFAULT_PCRS, DEFAULT_TCTI);
}

/* The event logs replayed onto the (verified) quoted PCR values. */
static int replay_against(const struct quote_pcr_values *v, const char *tcgf, const char *slogf)
{
	uint8_t *tb = NULL, *sb = NULL;
	size_t tl = 0, sl = 0;
	struct quote_eventlog *tcg = NULL;
	struct quote_slog *slog = NULL;
	struct quote_diag d;
	enum quote_err e;
	int rc = 1;

	if (tcgf) {
		if (agent_read_file(tcgf, QUOTE_EVENTLOG_MAX, &tb, &tl) != 0) {
			agent_log("failed to read %s: %s", tcgf, strerror(errno));
			goto out;
		}
		if ((e = quote_eventlog_parse(tb, tl, &tcg, &d)) != QUOTE_OK) {
			agent_log("failed to parse %s: %s (%s)", tcgf, quote_strerror(e), d.detail);
			goto out;
		}
	}
	if (slogf) {
		if (agent_read_file(slogf, QUOTE_EVENTLOG_MAX, &sb, &sl) != 0) {
			agent_log("failed to read %s: %s", slogf, strerror(errno));
			goto out;
		}
		if ((e = quote_slog_parse(sb, sl, &slog, &d)) != QUOTE_OK) {
			agent_log("failed to parse %s: %s (%s)", slogf, quote_strerror(e), d.detail);
			goto out;
		}
	}
	if ((e = quote_replay_check(tcg, slog, v, &d)) != QUOTE_OK) {
		agent_log("quote rejected: %s (%s)", quote_strerror(e), d.detail);
		goto out;
	}
	printf("event logs replay to the quoted PCRs\n");
	rc = 0;
out:
	quote_eventlog_free(tcg);
	quote_slog_free(slog);
	free(tb);
	free(sb);
	return rc;
}

static int quote_verify_cmd(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"in", required_argument, NULL, 'i'},  {"nonce", required_argument, NULL, 'n'},
		{"ak", required_argument, NULL, 'a'},  {"help", no_argument, NULL, 'h'},
		{"repeat", required_argument, NULL, 'r'}, {"slog", required_argument, NULL, 's'},
		{"eventlog", required_argument, NULL, 'e'}, {NULL, 0, NULL, 0},
	};
	const char *in = NULL, *nonce_hex = NULL, *akf = NULL, *slogf = NULL, *tcgf = NULL;
	long repeat = 1;
	uint8_t nonce[QUOTE_NONCE_MAX];
	long nl;
	int c, rc = 1;
	uint8_t *ak = NULL, *msg = NULL, *sig = NULL, *pcrs = NULL;
	size_t akl = 0, msgl = 0, sigl = 0, pcrsl = 0;
	char path[4096];
	struct quote_attest_info info;
	struct quote_pcr_values *v = NULL;
	struct quote_diag d;
	enum quote_err e;

	optind = 1;
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case 'i': in = optarg; break;
		case 'n': nonce_hex = optarg; break;
		case 'a': akf = optarg; break;
		case 's': slogf = optarg; break;
		case 'e': tcgf = optarg; break;
		case 'r': {
			char *end;
			repeat = strtol(optarg, &end, 10);
			if (*end || repeat < 1 || repeat > 100000) {
				agent_log("quote verify: --repeat must be 1..100000");
				return 2;
			}
			break;
		}
		case 'h': quote_usage(stdout); return 0;
		default: quote_usage(stderr); return 2;
		}
	}
	if (!in || !nonce_hex || optind != argc) {
		quote_usage(stderr);
		return 2;
	}
	if ((nl = agent_unhex(nonce_hex, nonce, sizeof nonce)) <= 0) {
		agent_log("quote verify: --nonce must be 1..64 bytes of hex");
		return 2;
	}
	snprintf(path, sizeof path, "%s/ak.pub", in);
	if (agent_read_file(akf ? akf : path, FILE_MAX, &ak, &akl) != 0) {
		agent_log("failed to read %s: %s", akf ? akf : path, strerror(errno));
		goto out;
	}
	snprintf(path, sizeof path, "%s/quote.msg", in);
	if (agent_read_file(path, FILE_MAX, &msg, &msgl) != 0) {
		agent_log("failed to read %s: %s", path, strerror(errno));
		goto out;
	}
	snprintf(path, sizeof path, "%s/quote.sig", in);
	if (agent_read_file(path, FILE_MAX, &sig, &sigl) != 0) {
		agent_log("failed to read %s: %s", path, strerror(errno));
		goto out;
	}
	snprintf(path, sizeof path, "%s/quote.pcrs", in);
	if (agent_read_file(path, FILE_MAX, &pcrs, &pcrsl) != 0) {
		agent_log("failed to read %s: %s", path, strerror(errno));
		goto out;
	}
	/* the PCR file carries no selection: take it from the (not yet trusted) quote; the
	 * verification below then checks the signature over that same selection */
	if ((e = quote_attest_parse(msg, msgl, &info, &d)) != QUOTE_OK) {
		agent_log("quote rejected: %s (%s)", quote_strerror(e), d.detail);
		goto out;
	}
	if (!(v = malloc(sizeof *v)))
		goto out;
	if ((e = quote_pcrs_file_parse(pcrs, pcrsl, &info.pcr_sel, v)) != QUOTE_OK) {
		agent_log("quote rejected: quote.pcrs does not match the quoted selection: %s", quote_strerror(e));
		goto out;
	}
	{
		double t0 = agent_now();
		for (long i = 0; i < repeat; i++)
			e = quote_verify(ak, akl, msg, msgl, sig, sigl, nonce, (size_t)nl, v, &info, &d);
		if (repeat > 1)
			printf("verifications %ld mean_ms %.3f\n", repeat, (agent_now() - t0) * 1e3 / (double)repeat);
	}
	if (e != QUOTE_OK) {
		agent_log("quote rejected: %s (%s)", quote_strerror(e), d.detail);
		goto out;
	}
	{
		char sel[256];
		quote_pcr_selection_format(&info.pcr_sel, sel, sizeof sel);
		printf("quote ok: %s, reset %u restart %u clock %llu\n", sel, info.reset_count, info.restart_count,
		       (unsigned long long)info.clock);
	}
	if (slogf || tcgf) {
		if (replay_against(v, tcgf, slogf) != 0)
			goto out;
	}
	rc = 0;
out:
	free(ak);
	free(msg);
	free(sig);
	free(pcrs);
	free(v);
	return rc;
}

int cmd_quote(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"tcti", required_argument, NULL, 't'}, {"nonce", required_argument, NULL, 'n'},
		{"pcrs", required_argument, NULL, 'p'}, {"out", required_argument, NULL, 'o'},
		{"timeout", required_argument, NULL, 'T'}, {"help", no_argument, NULL, 'h'},
		{"repeat", required_argument, NULL, 'r'}, {NULL, 0, NULL, 0},
	};
	const char *tcti = tcti_default(), *nonce_hex = NULL, *pcrs = DEFAULT_PCRS, *out = NULL;
	long repeat = 1;
	uint8_t nonce[QUOTE_NONCE_MAX];
	long nl;
	int c, rc = 1;
	struct quote_pcr_selection sel;
	struct quote_ctx *q = NULL;
	struct quote_result *r = NULL;
	struct quote_key ak;
	enum quote_err e;
	uint8_t *pf = NULL;
	size_t pfl = 0;
	char *pem = NULL;

	if (argc >= 2 && strcmp(argv[1], "verify") == 0)
		return quote_verify_cmd(argc - 1, argv + 1);
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case 't': tcti = optarg; break;
		case 'n': nonce_hex = optarg; break;
		case 'p': pcrs = optarg; break;
		case 'o': out = optarg; break;
		case 'T':
			if (parse_timeout(optarg) != 0)
				return 2;
			break;
		case 'r': {
			char *end;
			repeat = strtol(optarg, &end, 10);
			if (*end || repeat < 1 || repeat > 100000) {
				agent_log("quote: --repeat must be 1..100000");
				return 2;
			}
			break;
		}
		case 'h': quote_usage(stdout); return 0;
		default: quote_usage(stderr); return 2;
		}
	}
	if (!nonce_hex || !out || optind != argc) {
		quote_usage(stderr);
		return 2;
	}
	if ((nl = agent_unhex(nonce_hex, nonce, sizeof nonce)) <= 0) {
		agent_log("quote: --nonce must be 1..64 bytes of hex");
		return 2;
	}
	if (quote_pcr_selection_parse(pcrs, &sel) != QUOTE_OK) {
		agent_log("quote: bad --pcrs '%s' (e.g. %s)", pcrs, DEFAULT_PCRS);
		return 2;
	}
	if (mkdir(out, 0755) != 0 && errno != EEXIST) {
		agent_log("failed to create %s: %s", out, strerror(errno));
		return 1;
	}
	if (open_tpm(tcti, &q) != 0)
		return 1;
	if (!(r = malloc(sizeof *r)))
		goto done;
	if ((e = quote_ak_ensure(q, &ak, NULL)) != QUOTE_OK) {
		agent_log("failed to load or create the AK: %s (%s)", quote_strerror(e), quote_ctx_cause(q));
		goto done;
	}
	if (repeat > 1) {
		/* benchmarking: repeat the quote in this process, report latency percentiles */
		double *ms = calloc((size_t)repeat, sizeof *ms);
		unsigned long retries = 0;
		if (!ms)
			goto done;
		for (long i = 0; i < repeat; i++) {
			double t0 = agent_now();
			if ((e = quote_quote(q, &sel, nonce, (size_t)nl, r)) != QUOTE_OK) {
				agent_log("failed to quote: %s (%s)", quote_strerror(e), quote_ctx_cause(q));
				free(ms);
				goto done;
			}
			ms[i] = (agent_now() - t0) * 1e3;
			retries += r->attempts - 1;
		}
		for (long i = 1; i < repeat; i++) /* insertion sort: small n */
			for (long j = i; j > 0 && ms[j - 1] > ms[j]; j--) {
				double t = ms[j];
				ms[j] = ms[j - 1];
				ms[j - 1] = t;
			}
		printf("quotes %ld median_ms %.3f min_ms %.3f p90_ms %.3f retries %lu\n", repeat, ms[repeat / 2], ms[0],
		       ms[(repeat * 9) / 10 < repeat ? (repeat * 9) / 10 : repeat - 1], retries);
		free(ms);
	} else if ((e = quote_quote(q, &sel, nonce, (size_t)nl, r)) != QUOTE_OK) {
		agent_log("failed to quote: %s (%s)", quote_strerror(e), quote_ctx_cause(q));
		goto done;
	}
	if (quote_pcrs_file_encode(&r->pcrs, &pf, &pfl) != QUOTE_OK ||
	    quote_public_to_pem(ak.pub, ak.pub_len, &pem) != QUOTE_OK) {
		agent_log("failed to encode the quote outputs");
		goto done;
	}
	if (write_out(out, "quote.msg", r->q.attest, r->q.attest_len) != 0 ||
	    write_out(out, "quote.sig", r->q.sig, r->q.sig_len) != 0 || write_out(out, "quote.pcrs", pf, pfl) != 0 ||
	    write_out(out, "ak.pub", ak.pub, ak.pub_len) != 0 || write_out(out, "ak.pub.pem", pem, strlen(pem)) != 0 ||
	    write_out(out, "ak.name", ak.name, ak.name_len) != 0)
		goto done;
	rc = 0;
done:
	free(pf);
	free(pem);
	free(r);
	quote_ctx_free(q);
	return rc;
}

/* ---- sluice eventlog ---- */

static void eventlog_usage(FILE *f)
{
	fprintf(f,
		"usage: sluice eventlog [FILE] [--json] [--check-types SEL] [--slog FILE] [--expect FILE]\n\n"
		"Parse a TCG PC Client event log (default %s),\n"
		"print every event and the PCR values the log replays to (banks the log declares).\n"
		"  --slog FILE         also replay a sluice event log (CBOR) after the firmware log\n"
		"  --check-types SEL   check event types and data-hashed digests on the PCRs of SEL\n"
		"                      (e.g. sha256:0-7); exit 1 on the first offending event\n"
		"  --expect FILE       compare the replay with PCR values, lines \"sha256:N HEX\"\n"
		"                      (e.g. from /sys/class/tpm/tpm0/pcr-sha256/N); exit 1 naming\n"
		"                      the first PCR that differs and the last event extending it\n"
		"  --json              machine-readable output\n"
		"exit status: 0 ok, 1 malformed log / check failed, 2 usage\n",
		DEFAULT_EVENTLOG);
}

static const char *printable_data(const struct quote_tcg_event *ev, char *buf, size_t cap)
{
	/* short ASCII strings (EV_ACTION, EV_EFI_ACTION, EV_S_CRTM_VERSION ...) are shown as text */
	size_t n = 0;
	int ascii = ev->data_len > 0 && ev->data_len < 80;
	for (size_t i = 0; ascii && i < ev->data_len; i++) {
		uint8_t ch = ev->data[i];
		if (ch == 0 && i + 1 == ev->data_len)
			break;
		if (ch == 0 && i % 2 == 1)
			continue; /* UCS-2 */
		if (ch < 0x20 || ch > 0x7e)
			ascii = 0;
	}
	if (ascii) {
		for (size_t i = 0; i < ev->data_len && n + 1 < cap; i++)
			if (ev->data[i] >= 0x20 && ev->data[i] <= 0x7e)
				buf[n++] = (char)ev->data[i];
		buf[n] = 0;
		return buf;
	}
	snprintf(buf, cap, "%zu bytes", ev->data_len);
	return buf;
}

/* --expect: lines "bank:N HEX" -> quote_replay_check against them. */
static int eventlog_expect(const struct quote_eventlog *log, const struct quote_slog *slog, const char *path,
			   json_t *jo)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	struct quote_pcr_values *v = calloc(1, sizeof *v);
	struct quote_diag d;
	enum quote_err e;
	char *line, *save = NULL;
	int rc = 1, n = 0;

	if (!v)
		return 1;
	if (agent_read_file(path, FILE_MAX, &buf, &len) != 0) {
		agent_log("failed to read %s: %s", path, strerror(errno));
		goto out;
	}
	for (line = strtok_r((char *)buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char bank[16], hex[2 * QUOTE_MAX_DIGEST + 2];
		unsigned pcr;
		uint8_t dig[QUOTE_MAX_DIGEST];
		long dl;
		uint16_t alg;
		if (line[0] == '#' || line[0] == 0)
			continue;
		if (sscanf(line, "%15[^:]:%u %129s", bank, &pcr, hex) != 3 || !(alg = quote_alg_from_name(bank)) ||
		    pcr >= QUOTE_PCR_COUNT) {
			agent_log("%s: bad line '%.60s' (want \"sha256:N HEX\")", path, line);
			goto out;
		}
		for (char *p = hex; *p; p++)
			if (*p >= 'A' && *p <= 'F')
				*p = (char)(*p - 'A' + 'a');
		if (strncmp(hex, "0x", 2) == 0)
			memmove(hex, hex + 2, strlen(hex + 2) + 1);
		dl = agent_unhex(hex, dig, sizeof dig);
		if (dl <= 0 || quote_pcr_value_set(v, alg, pcr, dig, (size_t)dl) != QUOTE_OK) {
			agent_log("%s: bad value for %s:%u", path, bank, pcr);
			goto out;
		}
		n++;
	}
	e = quote_replay_check(log, slog, v, &d);
	if (e != QUOTE_OK) {
		char want[2 * QUOTE_MAX_DIGEST + 1] = "", got[2 * QUOTE_MAX_DIGEST + 1] = "";
		agent_hex(d.want, d.digest_len, want);
		agent_hex(d.got, d.digest_len, got);
		agent_log("event log does not match %s: %s (%s; want %s, replayed %s)", path, quote_strerror(e), d.detail,
			  want, got);
		if (jo)
			json_object_set_new(jo, "expect", json_pack("{s:s,s:i,s:I}", "result", d.detail, "pcr", d.pcr,
								     "event", (json_int_t)d.event));
		goto out;
	}
	if (jo)
		json_object_set_new(jo, "expect", json_pack("{s:s,s:i}", "result", "ok", "pcrs", n));
	else
		printf("replay matches %d PCR values of %s\n", n, path);
	rc = 0;
out:
	free(buf);
	free(v);
	return rc;
}

int cmd_eventlog(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"json", no_argument, NULL, 'j'},
		{"check-types", required_argument, NULL, 'c'},
		{"slog", required_argument, NULL, 's'},
		{"expect", required_argument, NULL, 'e'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *file = DEFAULT_EVENTLOG, *check = NULL, *slogf = NULL, *expect = NULL;
	int json = 0, c, rc = 1;
	uint8_t *buf = NULL, *sbuf = NULL;
	size_t len = 0, slen = 0;
	struct quote_eventlog *log = NULL;
	struct quote_slog *slog = NULL;
	struct quote_pcr_selection banks, sel;
	struct quote_pcr_values *v = NULL;
	struct quote_diag d;
	enum quote_err e;
	json_t *jo = NULL, *jev = NULL;

	optind = 1;
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case 'j': json = 1; break;
		case 'c': check = optarg; break;
		case 's': slogf = optarg; break;
		case 'e': expect = optarg; break;
		case 'h': eventlog_usage(stdout); return 0;
		default: eventlog_usage(stderr); return 2;
		}
	}
	if (optind < argc)
		file = argv[optind++];
	if (optind != argc) {
		eventlog_usage(stderr);
		return 2;
	}
	if (check && quote_pcr_selection_parse(check, &sel) != QUOTE_OK) {
		agent_log("eventlog: bad --check-types selection '%s'", check);
		return 2;
	}
	if (agent_read_file(file, QUOTE_EVENTLOG_MAX, &buf, &len) != 0) {
		agent_log("failed to read %s: %s", file, strerror(errno));
		return 1;
	}
	if ((e = quote_eventlog_parse(buf, len, &log, &d)) != QUOTE_OK) {
		agent_log("failed to parse %s: %s (%s)", file, quote_strerror(e), d.detail);
		goto out;
	}
	if (slogf) {
		if (agent_read_file(slogf, QUOTE_EVENTLOG_MAX, &sbuf, &slen) != 0) {
			agent_log("failed to read %s: %s", slogf, strerror(errno));
			goto out;
		}
		if ((e = quote_slog_parse(sbuf, slen, &slog, &d)) != QUOTE_OK) {
			agent_log("failed to parse %s: %s (%s)", slogf, quote_strerror(e), d.detail);
			goto out;
		}
	}
	quote_eventlog_banks(log, &banks);
	for (size_t b = 0; b < banks.n; b++)
		banks.bank[b].mask = 0;
	/* replay every PCR that has events, in the banks we can hash */
	{
		struct quote_pcr_selection rs;
		memset(&rs, 0, sizeof rs);
		for (size_t b = 0; b < banks.n; b++) {
			if (!quote_alg_digest_len(banks.bank[b].alg) || rs.n >= QUOTE_MAX_BANKS)
				continue;
			rs.bank[rs.n].alg = banks.bank[b].alg;
			for (size_t i = 0; i < quote_eventlog_count(log); i++) {
				const struct quote_tcg_event *ev = quote_eventlog_get(log, i);
				if (ev->type != 3)
					rs.bank[rs.n].mask |= 1u << ev->pcr;
			}
			for (size_t i = 0; i < quote_slog_count(slog); i++)
				rs.bank[rs.n].mask |= 1u << quote_slog_get(slog, i)->pcr;
			rs.n++;
		}
		if (!(v = malloc(sizeof *v)))
			goto out;
		quote_pcr_values_init(v, &rs);
		if ((e = quote_eventlog_replay(log, v, &d)) != QUOTE_OK) {
			agent_log("failed to replay %s: %s (%s)", file, quote_strerror(e), d.detail);
			goto out;
		}
		if (slog && (e = quote_slog_replay(slog, v, &d)) != QUOTE_OK) {
			agent_log("failed to replay %s: %s (%s)", slogf, quote_strerror(e), d.detail);
			goto out;
		}
	}
	if (json) {
		jo = json_object();
		jev = json_array();
		json_object_set_new(jo, "events", jev);
	}
	for (size_t i = 0; i < quote_eventlog_count(log); i++) {
		const struct quote_tcg_event *ev = quote_eventlog_get(log, i);
		char dbuf[96];
		if (json) {
			json_t *o = json_pack("{s:I, s:I, s:I, s:I, s:s, s:I}", "index", (json_int_t)i, "offset",
					      (json_int_t)ev->offset, "pcr", (json_int_t)ev->pcr, "type", (json_int_t)ev->type,
					      "type_name", quote_event_type_name(ev->type), "data_len", (json_int_t)ev->data_len);
			json_t *dg = json_object();
			for (size_t k = 0; k < ev->n_digests; k++) {
				char hex[2 * QUOTE_MAX_DIGEST + 1];
				agent_hex(ev->digests[k].bytes, ev->digests[k].len, hex);
				const char *n = quote_alg_name(ev->digests[k].alg);
				json_object_set_new(dg, n ? n : "unknown", json_string(hex));
			}
			json_object_set_new(o, "digests", dg);
			json_array_append_new(jev, o);
			continue;
		}
		printf("%4zu  PCR %2u  %-34s %s\n", i, ev->pcr, quote_event_type_name(ev->type),
		       printable_data(ev, dbuf, sizeof dbuf));
		for (size_t k = 0; k < ev->n_digests; k++) {
			char hex[2 * QUOTE_MAX_DIGEST + 1];
			const char *n = quote_alg_name(ev->digests[k].alg);
			agent_hex(ev->digests[k].bytes, ev->digests[k].len, hex);
			printf("        %-7s %s\n", n ? n : "?", hex);
		}
	}
	for (size_t i = 0; i < quote_slog_count(slog); i++) {
		const struct quote_slog_rec *r = quote_slog_get(slog, i);
		if (json)
			continue;
		printf("%4zu  PCR %2u  sluice type %u, %zu bytes\n", quote_eventlog_count(log) + i, r->pcr, r->type,
		       r->content_len);
	}
	{
		json_t *jp = json ? json_object() : NULL;
		if (!json)
			printf("replayed PCRs:\n");
		for (size_t b = 0; b < v->sel.n; b++) {
			const char *n = quote_alg_name(v->sel.bank[b].alg);
			json_t *jb = json ? json_object() : NULL;
			for (unsigned i = 0; i < QUOTE_PCR_COUNT; i++) {
				char hex[2 * QUOTE_MAX_DIGEST + 1], key[8];
				if (!(v->sel.bank[b].mask & (1u << i)))
					continue;
				agent_hex(v->value[b][i], quote_alg_digest_len(v->sel.bank[b].alg), hex);
				if (json) {
					snprintf(key, sizeof key, "%u", i);
					json_object_set_new(jb, key, json_string(hex));
				} else {
					printf("  %s:%-2u %s\n", n, i, hex);
				}
			}
			if (json)
				json_object_set_new(jp, n, jb);
		}
		if (json)
			json_object_set_new(jo, "pcrs", jp);
	}
	rc = 0;
	if (check) {
		uint32_t mask = 0;
		for (size_t b = 0; b < sel.n; b++)
			mask |= sel.bank[b].mask;
		e = quote_eventlog_check_types(log, mask, &d);
		if (json)
			json_object_set_new(jo, "check_types", json_string(e == QUOTE_OK ? "ok" : d.detail));
		if (e != QUOTE_OK) {
			agent_log("event log rejected: %s (%s)", quote_strerror(e), d.detail);
			rc = 1;
		} else if (!json) {
			printf("event types ok on %s\n", check);
		}
	}
	if (expect && rc == 0)
		rc = eventlog_expect(log, slog, expect, json ? jo : NULL);
	if (json) {
		char *s = json_dumps(jo, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
		if (s)
			printf("%s\n", s);
		free(s);
	}
out:
	json_decref(jo);
	quote_eventlog_free(log);
	quote_slog_free(slog);
	free(buf);
	free(sbuf);
	free(v);
	return rc;
}
