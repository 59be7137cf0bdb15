/* TCG PC Client firmware event log (binary_bios_measurements): bounded parse of the
 * crypto-agile format (SHA-1 TCG_PCClientPCREvent header carrying the "Spec ID Event03",
 * then TCG_PCR_EVENT2 records) or a legacy SHA-1-only log; replay onto PCR values; the
 * event-type checks; and the combined TCG + sluice replay check for the verifier. */
#include "quote/quote-int.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#define EV_NO_ACTION 0x00000003u
#define EV_SEPARATOR 0x00000004u

struct quote_eventlog {
	struct quote_tcg_event *ev;
	size_t n, cap;
	struct quote_pcr_selection banks; /* declared in the Spec ID event (mask 0) */
	int legacy;                       /* SHA-1-only log */
};

/* Event types: name, PCRs (0-7) the PC Client spec allows them on (events on PCRs >= 8
 * are OS-defined and not restricted), and whether the digest is the hash of the event
 * data (1), of the data or its VariableData part (2: EFI variables), or not checkable (0). */
static const struct evtype {
	uint32_t type;
	const char *name;
	uint8_t pcrs;
	uint8_t data_hash;
} evtypes[] = {
	{0x00000000, "EV_PREBOOT_CERT", 0x00, 0},
	{0x00000001, "EV_POST_CODE", 0xff, 0},
	{0x00000002, "EV_UNUSED", 0x00, 0},
	{0x00000003, "EV_NO_ACTION", 0xff, 0},
	{0x00000004, "EV_SEPARATOR", 0xff, 1},
	{0x00000005, "EV_ACTION", 0xff, 1},
	{0x00000006, "EV_EVENT_TAG", 0xff, 0},
	{0x00000007, "EV_S_CRTM_CONTENTS", 0x01, 0},
	{0x00000008, "EV_S_CRTM_VERSION", 0x01, 0},
	{0x00000009, "EV_CPU_MICROCODE", 0x02, 0},
	{0x0000000a, "EV_PLATFORM_CONFIG_FLAGS", 0x02, 0},
	{0x0000000b, "EV_TABLE_OF_DEVICES", 0x02, 0},
	{0x0000000c, "EV_COMPACT_HASH", 0xff, 0},
	{0x0000000d, "EV_IPL", 0x30, 0},
	{0x0000000e, "EV_IPL_PARTITION_DATA", 0x20, 0},
	{0x0000000f, "EV_NONHOST_CODE", 0x03, 0},
	{0x00000010, "EV_NONHOST_CONFIG", 0x03, 0},
	{0x00000011, "EV_NONHOST_INFO", 0x03, 0},
	{0x00000012, "EV_OMIT_BOOT_DEVICE_EVENTS", 0x10, 1},
	{0x00000013, "EV_POST_CODE2", 0xff, 0},
	{0x80000001, "EV_EFI_VARIABLE_DRIVER_CONFIG", 0xaa, 2},
	{0x80000002, "EV_EFI_VARIABLE_BOOT", 0x02, 2},
	{0x80000003, "EV_EFI_BOOT_SERVICES_APPLICATION", 0x14, 0},
	{0x80000004, "EV_EFI_BOOT_SERVICES_DRIVER", 0x05, 0},
	{0x80000005, "EV_EFI_RUNTIME_SERVICES_DRIVER", 0x05, 0},
	{0x80000006, "EV_EFI_GPT_EVENT", 0x20, 1},
	{0x80000007, "EV_EFI_ACTION", 0xff, 1},
	{0x80000008, "EV_EFI_PLATFORM_FIRMWARE_BLOB", 0x05, 0},
	{0x80000009, "EV_EFI_HANDOFF_TABLES", 0x02, 0},
	{0x8000000a, "EV_EFI_PLATFORM_FIRMWARE_BLOB2", 0x05, 0},
	{0x8000000b, "EV_EFI_HANDOFF_TABLES2", 0x02, 0},
	{0x8000000c, "EV_EFI_VARIABLE_BOOT2", 0x02, 2},
	{0x8000000d, "EV_EFI_GPT_EVENT2", 0x20, 0},
	{0x80000010, "EV_EFI_HCRTM_EVENT", 0x01, 0},
	{0x800000e0, "EV_EFI_VARIABLE_AUTHORITY", 0x80, 2},
	{0x800000e1, "EV_EFI_SPDM_FIRMWARE_BLOB", 0x05, 0},
	{0x800000e2, "EV_EFI_SPDM_FIRMWARE_CONFIG", 0x0a, 0},
};

static const struct evtype *evtype(uint32_t type)
{
	for (size_t i = 0; i < sizeof evtypes / sizeof evtypes[0]; i++)
		if (evtypes[i].type == type)
			return &evtypes[i];
	return NULL;
}

const char *quote_event_type_name(uint32_t type)
{
	const struct evtype *t = evtype(type);
	return t ? t->name : "EV_UNKNOWN";
}

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint16_t le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

void quote_eventlog_free(struct quote_eventlog *log)
{
	if (!log)
		return;
	free(log->ev);
	free(log);
}

size_t quote_eventlog_count(const struct quote_eventlog *log)
{
	return log ? log->n : 0;
}

const struct quote_tcg_event *quote_eventlog_get(const struct quote_eventlog *log, size_t i)
{
	return log && i < log->n ? &log->ev[i] : NULL;
}

void quote_eventlog_banks(const struct quote_eventlog *log, struct quote_pcr_selection *ret)
{
	if (!ret)
		return;
	if (!log) {
		memset(ret, 0, sizeof *ret);
		return;
	}
	*ret = log->banks;
}

static int push(struct quote_eventlog *log, const struct quote_tcg_event *e)
{
	if (log->n == log->cap) {
		size_t ncap = log->cap ? log->cap * 2 : 64;
		struct quote_tcg_event *n = realloc(log->ev, ncap * sizeof *n);
		if (!n)
			return -1;
		log->ev = n;
		log->cap = ncap;
	}
	log->ev[log->n++] = *e;
	return 0;
}

/* One SHA-1 format event at off: fills e, advances *off. */
static int parse_v1(const uint8_t *buf, size_t len, size_t *off, struct quote_tcg_event *e)
{
	size_t o = *off;
	uint32_t dsz;
	if (len - o < 32)
		return -1;
	memset(e, 0, sizeof *e);
	e->offset = o;
	e->pcr = le32(buf + o);
	e->type = le32(buf + o + 4);
	e->n_digests = 1;
	e->digests[0].alg = QUOTE_ALG_SHA1;
	e->digests[0].len = 20;
	memcpy(e->digests[0].bytes, buf + o + 8, 20);
	dsz = le32(buf + o + 28);
	o += 32;
	if (dsz > QUOTE_EVENT_DATA_MAX || dsz > len - o)
		return -1;
	e->data = buf + o;
	e->data_len = dsz;
	*off = o + dsz;
	return 0;
}

enum quote_err quote_eventlog_parse(const uint8_t *buf, size_t len, struct quote_eventlog **ret,
				    struct quote_diag *diag)
{
	struct quote_eventlog *log = NULL;
	struct quote_tcg_event e;
	size_t off = 0;
	uint16_t sizes[QUOTE_MAX_BANKS];
	enum quote_err err = QUOTE_ERR_EVENTLOG;

	quote_diag_reset(diag);
	if (!ret || (!buf && len))
		return QUOTE_ERR_ARG;
	if (len > QUOTE_EVENTLOG_MAX) {
		quote_diag_set(diag, "event log of %zu bytes (max %u)", len, QUOTE_EVENTLOG_MAX);
		return QUOTE_ERR_TOO_LARGE;
	}
	if (!(log = calloc(1, sizeof *log)))
		return QUOTE_ERR_NOMEM;
	if (len == 0) {
		*ret = log;
		return QUOTE_OK;
	}
	if (parse_v1(buf, len, &off, &e) != 0) {
		quote_diag_set(diag, "event 0 truncated at offset 0");
		if (diag)
			diag->event = 0;
		goto fail;
	}
	if (e.type == EV_NO_ACTION && e.pcr == 0 && e.data_len >= 29 && memcmp(e.data, "Spec ID Event03\0", 16) == 0) {
		/* TCG_EfiSpecIDEvent: sig[16] platformClass u32 minor major errata uintnSize
		 * numberOfAlgorithms u32 {alg u16, size u16}[] vendorInfoSize u8 vendorInfo[] */
		const uint8_t *d = e.data;
		uint32_t nalg = le32(d + 24);
		size_t need;
		if (nalg == 0 || nalg > 16) {
			quote_diag_set(diag, "Spec ID event declares %u algorithms", nalg);
			goto fail;
		}
		need = 28 + 4 * (size_t)nalg + 1;
		if (e.data_len < need || e.data_len != need + d[need - 1]) {
			quote_diag_set(diag, "Spec ID event size inconsistent");
			goto fail;
		}
		for (uint32_t i = 0; i < nalg; i++) {
			uint16_t alg = le16(d + 28 + 4 * i), sz = le16(d + 30 + 4 * i);
			if (log->banks.n >= QUOTE_MAX_BANKS) {
				quote_diag_set(diag, "too many algorithms in the Spec ID event");
				goto fail;
			}
			if (quote_alg_digest_len(alg) && quote_alg_digest_len(alg) != sz) {
				quote_diag_set(diag, "Spec ID event: %s digest size %u", quote_alg_name(alg), sz);
				goto fail;
			}
			if (sz == 0 || sz > QUOTE_MAX_DIGEST) {
				quote_diag_set(diag, "Spec ID event: algorithm 0x%04x digest size %u", alg, sz);
				goto fail;
			}
			for (size_t k = 0; k < log->banks.n; k++)
				if (log->banks.bank[k].alg == alg) {
					quote_diag_set(diag, "Spec ID event lists 0x%04x twice", alg);
					goto fail;
				}
			log->banks.bank[log->banks.n].alg = alg;
			sizes[log->banks.n] = sz;
			log->banks.n++;
		}
	} else {
		log->legacy = 1;
		log->banks.n = 1;
		log->banks.bank[0].alg = QUOTE_ALG_SHA1;
		if (e.pcr >= QUOTE_PCR_COUNT) {
			quote_diag_set(diag, "event 0 at offset 0: PCR %u", e.pcr);
			if (diag)
				diag->event = 0;
			goto fail;
		}
	}
	e.index = 0;
	if (push(log, &e) != 0) {
		err = QUOTE_ERR_NOMEM;
		goto fail;
	}
	while (off < len) {
		size_t idx = log->n, o = off;
		if (log->legacy) {
			if (parse_v1(buf, len, &off, &e) != 0)
				goto trunc;
		} else {
			uint32_t cnt, dsz;
			memset(&e, 0, sizeof e);
			e.offset = o;
			if (len - o < 12)
				goto trunc;
			e.pcr = le32(buf + o);
			e.type = le32(buf + o + 4);
			cnt = le32(buf + o + 8);
			o += 12;
			if (cnt == 0 || cnt > log->banks.n) {
				quote_diag_set(diag, "event %zu at offset %zu has %u digests (log declares %zu banks)", idx,
					 e.offset, cnt, log->banks.n);
				if (diag)
					diag->event = (long)idx;
				goto fail;
			}
			for (uint32_t i = 0; i < cnt; i++) {
				uint16_t alg;
				size_t k, sz;
				if (len - o < 2)
					goto trunc;
				alg = le16(buf + o);
				o += 2;
				for (k = 0; k < log->banks.n && log->banks.bank[k].alg != alg; k++)
					;
				if (k == log->banks.n) {
					quote_diag_set(diag, "event %zu: digest algorithm 0x%04x not declared", idx, alg);
					if (diag)
						diag->event = (long)idx;
					goto fail;
				}
				for (uint32_t j = 0; j < i; j++)
					if (e.digests[j].alg == alg) {
						quote_diag_set(diag, "event %zu: two digests of 0x%04x", idx, alg);
						if (diag)
							diag->event = (long)idx;
						goto fail;
					}
				sz = sizes[k];
				if (len - o < sz)
					goto trunc;
				e.digests[i].alg = alg;
				e.digests[i].len = sz;
				memcpy(e.digests[i].bytes, buf + o, sz);
				o += sz;
			}
			e.n_digests = cnt;
			if (len - o < 4)
				goto trunc;
			dsz = le32(buf + o);
			o += 4;
			if (dsz > QUOTE_EVENT_DATA_MAX || dsz > len - o)
				goto trunc;
			e.data = buf + o;
			e.data_len = dsz;
			off = o + dsz;
		}
		if (e.pcr >= QUOTE_PCR_COUNT) {
			quote_diag_set(diag, "event %zu at offset %zu: PCR %u", idx, e.offset, e.pcr);
			if (diag)
				diag->event = (long)idx;
			goto fail;
		}
		e.index = idx;
		if (push(log, &e) != 0) {
			err = QUOTE_ERR_NOMEM;
			goto fail;
		}
	}
	*ret = log;
	return QUOTE_OK;
trunc:
	quote_diag_set(diag, "event %zu truncated or oversized at offset %zu", log->n, off);
	if (diag)
		diag->event = (long)log->n;
fail:
	quote_eventlog_free(log);
	return err;
}

/* Locality of a StartupLocality EV_NO_ACTION event, or -1. */
static int startup_locality(const struct quote_tcg_event *e)
{
	if (e->type != EV_NO_ACTION || e->pcr != 0 || e->data_len != 17 || memcmp(e->data, "StartupLocality\0", 16) != 0)
		return -1;
	return e->data[16];
}

static const struct quote_digest *ev_digest(const struct quote_tcg_event *e, uint16_t alg)
{
	for (size_t i = 0; i < e->n_digests; i++)
		if (e->digests[i].alg == alg)
			return &e->digests[i];
	return NULL;
}

static int declared(const struct quote_eventlog *log, uint16_t alg)
{
	return quote_sel_bank(&log->banks, alg) >= 0;
}

/* Replay; last_ev[b][pcr] (may be NULL) gets the index of the last event per PCR. */
static enum quote_err replay(const struct quote_eventlog *log, struct quote_pcr_values *v,
			     long (*last_ev)[QUOTE_PCR_COUNT], struct quote_diag *diag)
{
	for (size_t i = 0; i < log->n; i++) {
		const struct quote_tcg_event *e = &log->ev[i];
		int loc;
		if (i == 0 && !log->legacy)
			continue; /* the Spec ID header */
		if ((loc = startup_locality(e)) >= 0) {
			for (size_t b = 0; b < v->sel.n; b++) {
				size_t dl = quote_alg_digest_len(v->sel.bank[b].alg);
				if (!(v->sel.bank[b].mask & 1u))
					continue;
				memset(v->value[b][0], 0, dl);
				v->value[b][0][dl - 1] = (uint8_t)loc;
			}
			continue;
		}
		if (e->type == EV_NO_ACTION)
			continue;
		for (size_t b = 0; b < v->sel.n; b++) {
			uint16_t alg = v->sel.bank[b].alg;
			const struct quote_digest *d;
			if (!(v->sel.bank[b].mask & (1u << e->pcr)) || !declared(log, alg))
				continue;
			if (!(d = ev_digest(e, alg))) {
				quote_diag_set(diag, "event %zu (PCR %u) has no %s digest", i, e->pcr, quote_alg_name(alg));
				if (diag) {
					diag->event = (long)i;
					diag->pcr = (int)e->pcr;
					diag->alg = alg;
				}
				return QUOTE_ERR_EVENTLOG;
			}
			quote_pcr_value_extend(v, alg, e->pcr, d->bytes, d->len);
			if (last_ev)
				last_ev[b][e->pcr] = (long)i;
		}
	}
	return QUOTE_OK;
}

enum quote_err quote_eventlog_replay(const struct quote_eventlog *log, struct quote_pcr_values *v,
				     struct quote_diag *diag)
{
	quote_diag_reset(diag);
	if (!log || !v)
		return QUOTE_ERR_ARG;
	return replay(log, v, NULL, diag);
}

/* Digest checks for data-hashed types: 1 ok, 0 mismatch. */
static int data_hash_ok(const struct quote_tcg_event *e, const struct quote_digest *d, int mode)
{
	uint8_t h[QUOTE_MAX_DIGEST];
	size_t n = 0;
	if (quote_hash_buf(d->alg, e->data, e->data_len, NULL, 0, h, &n) == 0 && n == d->len &&
	    CRYPTO_memcmp(h, d->bytes, n) == 0)
		return 1;
	if (mode == 2 && e->data_len >= 32) {
		/* UEFI_VARIABLE_DATA: GUID[16] nameLen u64 dataLen u64 name[2*nameLen] data[dataLen];
		 * some firmware (edk2 for Boot####) measures only the VariableData. */
		uint64_t nl = (uint64_t)le32(e->data + 16) | (uint64_t)le32(e->data + 20) << 32;
		uint64_t dl = (uint64_t)le32(e->data + 24) | (uint64_t)le32(e->data + 28) << 32;
		if (nl <= e->data_len && dl <= e->data_len && 32 + 2 * nl + dl == e->data_len &&
		    quote_hash_buf(d->alg, e->data + 32 + 2 * nl, (size_t)dl, NULL, 0, h, &n) == 0 && n == d->len &&
		    CRYPTO_memcmp(h, d->bytes, n) == 0)
			return 1;
	}
	return 0;
}

enum quote_err quote_eventlog_check_types(const struct quote_eventlog *log, uint32_t pcr_mask,
					  struct quote_diag *diag)
{
	size_t i;

	quote_diag_reset(diag);
	if (!log)
		return QUOTE_ERR_ARG;
	for (i = 0; i < log->n; i++) {
		const struct quote_tcg_event *e = &log->ev[i];
		const struct evtype *t = evtype(e->type);
		if (i == 0 && !log->legacy)
			continue;
		if (!(pcr_mask & (1u << e->pcr)))
			continue;
		if (e->type == EV_NO_ACTION) {
			/* not extended; a StartupLocality is only meaningful on PCR 0 */
			continue;
		}
		if (e->pcr < 8 && (!t || !(t->pcrs & (1u << e->pcr)))) {
			quote_diag_set(diag, "event %zu: type %s (0x%08x) is not allowed on PCR %u", i,
				 quote_event_type_name(e->type), e->type, e->pcr);
			goto bad;
		}
		if (e->type == EV_SEPARATOR && e->pcr < 8 &&
		    (e->data_len != 4 || (le32(e->data) != 0 && le32(e->data) != 0xffffffffu))) {
			quote_diag_set(diag, "event %zu: EV_SEPARATOR on PCR %u with unexpected data", i, e->pcr);
			goto bad;
		}
		if (t && t->data_hash) {
			for (size_t k = 0; k < e->n_digests; k++) {
				if (!quote_alg_digest_len(e->digests[k].alg))
					continue;
				if (!data_hash_ok(e, &e->digests[k], t->data_hash)) {
					quote_diag_set(diag, "event %zu: %s on PCR %u: %s digest is not the hash of its data", i,
						 t->name, e->pcr, quote_alg_name(e->digests[k].alg));
					if (diag)
						diag->alg = e->digests[k].alg;
					goto bad;
				}
			}
		}
	}
	/* PCRs 0-7 that carry events must carry an EV_SEPARATOR (relabelling the separator
	 * would otherwise hide where the pre-OS phase ended) */
	{
		uint32_t used = 0, sep = 0;
		for (i = log->legacy ? 0 : 1; i < log->n; i++) {
			const struct quote_tcg_event *e = &log->ev[i];
			if (e->pcr >= 8 || e->type == EV_NO_ACTION)
				continue;
			used |= 1u << e->pcr;
			if (e->type == EV_SEPARATOR)
				sep |= 1u << e->pcr;
		}
		used &= pcr_mask & ~sep;
		if (used) {
			unsigned p = (unsigned)__builtin_ctz(used);
			quote_diag_set(diag, "PCR %u has events but no EV_SEPARATOR", p);
			if (diag)
				diag->pcr = (int)p;
			return QUOTE_ERR_EVENT_TYPE;
		}
	}
	return QUOTE_OK;
bad:
	if (diag) {
		diag->event = (long)i;
		diag->pcr = (int)log->ev[i].pcr;
	}
	return QUOTE_ERR_EVENT_TYPE;
}

enum quote_err quote_replay_check(const struct quote_eventlog *tcg, const struct quote_slog *slog,
				  const struct quote_pcr_values *quoted, struct quote_diag *diag)
{
	struct quote_pcr_values *v = NULL;
	long last[QUOTE_MAX_BANKS][QUOTE_PCR_COUNT];
	enum quote_err err;
	size_t ntcg = tcg ? tcg->n : 0;

	quote_diag_reset(diag);
	if (!quoted)
		return QUOTE_ERR_ARG;
	if (!(v = malloc(sizeof *v)))
		return QUOTE_ERR_NOMEM;
	for (size_t b = 0; b < QUOTE_MAX_BANKS; b++)
		for (size_t i = 0; i < QUOTE_PCR_COUNT; i++)
			last[b][i] = -1;
	quote_pcr_values_init(v, &quoted->sel);
	if (tcg && (err = replay(tcg, v, last, diag)) != QUOTE_OK)
		goto out;
	if (slog && tcg) {
		/* A PCR that sluice's own log extends belongs to sluice alone. Otherwise earlier
		 * sluice records (a ROOTFS measurement, the RELEASED seal) could be presented as
		 * firmware events while the sluice log shows only a fresh measurement, and a
		 * sealed phase would pass for a new one. */
		uint32_t own = 0;
		for (size_t i = 0; i < quote_slog_count(slog); i++)
			own |= 1u << quote_slog_get(slog, i)->pcr;
		for (size_t b = 0; b < v->sel.n; b++)
			for (unsigned p = 0; p < QUOTE_PCR_COUNT; p++) {
				if (!(own & (1u << p)) || last[b][p] < 0)
					continue;
				quote_diag_set(diag, "PCR %u is extended by the sluice log, but firmware event %ld extends it too",
					       p, last[b][p]);
				if (diag) {
					diag->pcr = (int)p;
					diag->alg = v->sel.bank[b].alg;
					diag->event = last[b][p];
				}
				err = QUOTE_ERR_EVENT_TYPE;
				goto out;
			}
	}
	if (slog) {
		for (size_t i = 0; i < quote_slog_count(slog); i++) {
			const struct quote_slog_rec *r = quote_slog_get(slog, i);
			for (size_t b = 0; b < v->sel.n; b++)
				if (v->sel.bank[b].mask & (1u << r->pcr))
					last[b][r->pcr] = (long)(ntcg + i);
		}
		if ((err = quote_slog_replay(slog, v, diag)) != QUOTE_OK) {
			if (diag && diag->event >= 0)
				diag->event += (long)ntcg;
			goto out;
		}
	}
	for (size_t b = 0; b < quoted->sel.n; b++) {
		uint16_t alg = quoted->sel.bank[b].alg;
		size_t dl = quote_alg_digest_len(alg);
		for (unsigned i = 0; i < QUOTE_PCR_COUNT; i++) {
			if (!(quoted->sel.bank[b].mask & (1u << i)))
				continue;
			if (CRYPTO_memcmp(v->value[b][i], quoted->value[b][i], dl) != 0) {
				quote_diag_set(diag, "PCR %u (%s) does not match the replayed event logs (last event %ld)", i,
					 quote_alg_name(alg), last[b][i]);
				if (diag) {
					diag->pcr = (int)i;
					diag->alg = alg;
					diag->event = last[b][i];
				}
				quote_diag_values(diag, quoted->value[b][i], v->value[b][i], dl);
				err = QUOTE_ERR_REPLAY;
				goto out;
			}
		}
	}
	err = QUOTE_OK;
out:
	free(v);
	return err;
}
