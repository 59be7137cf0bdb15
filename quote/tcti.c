/* TCTIs with real timeouts for the two transports sluice uses, and tctildr for the rest.
 *
 * tpm2-tss 3.2's swtpm and device TCTIs block in read() whatever timeout ESAPI passes, so
 * a hung swtpm or TPM would hang the boot. These two small TCTIs poll() with the timeout
 * ESAPI gives to receive (Esys_SetTimeout) and answer TSS2_TCTI_RC_TRY_AGAIN when it
 * expires:
 *   swtpm:[host=H,][port=P] | swtpm:path=SOCK   raw TPM commands over TCP or a unix
 *        socket, one connection per command (as tpm2-tss does: swtpm serves one client at
 *        a time, so others can share it between our commands). Locality 0.
 *   device:[PATH]   a TPM character device, default /dev/tpmrm0.
 * Any other string ("mssim:...", "cmd:...", "libtpms", ...) goes to Tss2_TctiLdr. */
#include "quote/quote-int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <tss2/tss2_tcti.h>
#include <tss2/tss2_tctildr.h>

#include "quote/tcti-int.h"

#define OWN_MAGIC 0x736c7569636574ULL /* "sluicet" */
#define RESP_MAX 4096

struct own_tcti {
	TSS2_TCTI_CONTEXT_COMMON_V2 common;
	int kind; /* 1 swtpm inet, 2 swtpm unix, 3 device */
	struct sockaddr_storage addr;
	socklen_t addrlen;
	char path[108];
	int fd;        /* device: open for the context's life; socket: per command */
	int state;     /* 0 idle, 1 command sent, 2 response buffered (after a size query) */
	uint8_t resp[RESP_MAX];
	size_t resp_len;
	unsigned timeout_ms_connect;
};

static struct own_tcti *own(TSS2_TCTI_CONTEXT *c)
{
	struct own_tcti *t = (struct own_tcti *)c;
	return t && t->common.v1.magic == OWN_MAGIC ? t : NULL;
}

static double mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* Wait for fd to become ready for events; timeout_ms < 0 blocks. 1 ready, 0 timeout, -1 error. */
static int wait_fd(int fd, short events, int timeout_ms)
{
	struct pollfd p = {.fd = fd, .events = events};
	for (;;) {
		int r = poll(&p, 1, timeout_ms);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -1;
		if (r == 0)
			return 0;
		return (p.revents & (POLLERR | POLLNVAL)) ? -1 : 1;
	}
}

static int write_all(int fd, const uint8_t *buf, size_t len, int timeout_ms)
{
	double dl = mono_ms() + timeout_ms;
	while (len) {
		ssize_t n;
		int left = (int)(dl - mono_ms());
		if (left <= 0 || wait_fd(fd, POLLOUT, left) != 1)
			return -1;
		n = write(fd, buf, len);
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n <= 0)
			return -1;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

static void close_fd(struct own_tcti *t)
{
	if (t->fd >= 0)
		close(t->fd);
	t->fd = -1;
}

static TSS2_RC own_transmit(TSS2_TCTI_CONTEXT *c, size_t size, const uint8_t *cmd)
{
	struct own_tcti *t = own(c);
	if (!t)
		return TSS2_TCTI_RC_BAD_CONTEXT;
	if (!cmd || size < 10 || size > RESP_MAX)
		return TSS2_TCTI_RC_BAD_VALUE;
	if (t->state != 0)
		return TSS2_TCTI_RC_BAD_SEQUENCE;
	if (t->kind != 3) {
		int fd = socket(t->addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
		if (fd < 0)
			return TSS2_TCTI_RC_IO_ERROR;
		if (connect(fd, (struct sockaddr *)&t->addr, t->addrlen) != 0) {
			int soerr = 0;
			socklen_t sl = sizeof soerr;
			if (errno != EINPROGRESS || wait_fd(fd, POLLOUT, (int)t->timeout_ms_connect) != 1 ||
			    getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0 || soerr != 0) {
				close(fd);
				return TSS2_TCTI_RC_NO_CONNECTION;
			}
		}
		t->fd = fd;
	}
	if (write_all(t->fd, cmd, size, (int)t->timeout_ms_connect) != 0) {
		if (t->kind != 3)
			close_fd(t);
		return TSS2_TCTI_RC_IO_ERROR;
	}
	t->state = 1;
	return TSS2_RC_SUCCESS;
}

/* Read exactly len bytes before the deadline; returns bytes read (short on timeout/error). */
static size_t read_until(int fd, uint8_t *buf, size_t len, double deadline, int block)
{
	size_t got = 0;
	while (got < len) {
		int left = block ? -1 : (int)(deadline - mono_ms());
		ssize_t n;
		if (!block && left <= 0)
			break;
		if (wait_fd(fd, POLLIN, left) != 1)
			break;
		n = read(fd, buf + got, len - got);
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	return got;
}

/* Read one whole response into t->resp. TRY_AGAIN if nothing arrived within timeout. */
static TSS2_RC fetch(struct own_tcti *t, int32_t timeout)
{
	uint8_t *buf = t->resp;
	size_t got, total;
	int block = timeout == TSS2_TCTI_TIMEOUT_BLOCK;
	double dl;
	TSS2_RC rc = TSS2_RC_SUCCESS;

	/* Nothing there yet within the timeout: try again later, the command stays pending. */
	if (wait_fd(t->fd, POLLIN, block ? -1 : (timeout > 0 ? timeout : 0)) == 0)
		return TSS2_TCTI_RC_TRY_AGAIN;
	if (t->kind == 3) {
		/* the kernel returns a whole response in one read */
		ssize_t n;
		do
			n = read(t->fd, buf, RESP_MAX);
		while (n < 0 && errno == EINTR);
		if (n < 10) {
			rc = TSS2_TCTI_RC_IO_ERROR;
			goto out;
		}
		got = (size_t)n;
		total = (size_t)buf[2] << 24 | (size_t)buf[3] << 16 | (size_t)buf[4] << 8 | buf[5];
		if (total != got) {
			rc = TSS2_TCTI_RC_MALFORMED_RESPONSE;
			goto out;
		}
	} else {
		/* a response that started must complete within a second */
		dl = mono_ms() + 1000;
		got = read_until(t->fd, buf, 10, dl, 0);
		if (got != 10) {
			rc = TSS2_TCTI_RC_IO_ERROR;
			goto out;
		}
		total = (size_t)buf[2] << 24 | (size_t)buf[3] << 16 | (size_t)buf[4] << 8 | buf[5];
		if (total < 10 || total > RESP_MAX) {
			rc = TSS2_TCTI_RC_MALFORMED_RESPONSE;
			goto out;
		}
		if (read_until(t->fd, buf + 10, total - 10, dl, 0) != total - 10) {
			rc = TSS2_TCTI_RC_IO_ERROR;
			goto out;
		}
	}
	t->resp_len = total;
	t->state = 2;
out:
	if (t->kind != 3)
		close_fd(t);
	if (rc != TSS2_RC_SUCCESS)
		t->state = 0;
	return rc;
}

static TSS2_RC own_receive(TSS2_TCTI_CONTEXT *c, size_t *size, uint8_t *resp, int32_t timeout)
{
	struct own_tcti *t = own(c);
	TSS2_RC rc;

	if (!t)
		return TSS2_TCTI_RC_BAD_CONTEXT;
	if (!size)
		return TSS2_TCTI_RC_BAD_REFERENCE;
	if (t->state == 0)
		return TSS2_TCTI_RC_BAD_SEQUENCE;
	if (t->state == 1 && (rc = fetch(t, timeout)) != TSS2_RC_SUCCESS)
		return rc;
	if (!resp) {
		*size = t->resp_len; /* size query: keep the response for the next call */
		return TSS2_RC_SUCCESS;
	}
	if (*size < t->resp_len) {
		*size = t->resp_len;
		return TSS2_TCTI_RC_INSUFFICIENT_BUFFER;
	}
	memcpy(resp, t->resp, t->resp_len);
	*size = t->resp_len;
	t->state = 0;
	return TSS2_RC_SUCCESS;
}

static void own_finalize(TSS2_TCTI_CONTEXT *c)
{
	struct own_tcti *t = own(c);
	if (!t)
		return;
	close_fd(t);
	t->common.v1.magic = 0;
}

static TSS2_RC own_cancel(TSS2_TCTI_CONTEXT *c)
{
	(void)c;
	return TSS2_TCTI_RC_NOT_IMPLEMENTED;
}

static TSS2_RC own_poll_handles(TSS2_TCTI_CONTEXT *c, TSS2_TCTI_POLL_HANDLE *h, size_t *n)
{
	(void)c;
	(void)h;
	(void)n;
	return TSS2_TCTI_RC_NOT_IMPLEMENTED;
}

static TSS2_RC own_locality(TSS2_TCTI_CONTEXT *c, uint8_t loc)
{
	(void)c;
	return loc == 0 ? TSS2_RC_SUCCESS : TSS2_TCTI_RC_NOT_IMPLEMENTED;
}

static TSS2_RC own_sticky(TSS2_TCTI_CONTEXT *c, TPM2_HANDLE *h, uint8_t s)
{
	(void)c;
	(void)h;
	(void)s;
	return TSS2_TCTI_RC_NOT_IMPLEMENTED;
}

/* Parse "key=value,key=value" of the swtpm TCTI. */
static int parse_swtpm(const char *conf, struct own_tcti *t)
{
	char host[64] = "127.0.0.1", path[sizeof t->path] = "";
	unsigned port = 2321;
	const char *p = conf;

	while (*p) {
		const char *end = strchr(p, ',');
		size_t n = end ? (size_t)(end - p) : strlen(p);
		if (n > 5 && strncmp(p, "host=", 5) == 0 && n - 5 < sizeof host) {
			memcpy(host, p + 5, n - 5);
			host[n - 5] = 0;
		} else if (n > 5 && strncmp(p, "port=", 5) == 0) {
			char num[8];
			char *e;
			unsigned long v;
			if (n - 5 >= sizeof num)
				return -1;
			memcpy(num, p + 5, n - 5);
			num[n - 5] = 0;
			v = strtoul(num, &e, 10);
			if (*e || v == 0 || v > 65535)
				return -1;
			port = (unsigned)v;
		} else if (n > 5 && strncmp(p, "path=", 5) == 0 && n - 5 < sizeof path) {
			memcpy(path, p + 5, n - 5);
			path[n - 5] = 0;
		} else {
			return -1;
		}
		p += n;
		if (*p == ',')
			p++;
	}
	memset(&t->addr, 0, sizeof t->addr);
	if (path[0]) {
		struct sockaddr_un *un = (struct sockaddr_un *)&t->addr;
		un->sun_family = AF_UNIX;
		memcpy(un->sun_path, path, strlen(path) + 1);
		t->addrlen = sizeof *un;
		t->kind = 2;
		return 0;
	}
	if (strcmp(host, "localhost") == 0)
		strcpy(host, "127.0.0.1");
	{
		struct sockaddr_in *in4 = (struct sockaddr_in *)&t->addr;
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&t->addr;
		if (inet_pton(AF_INET, host, &in4->sin_addr) == 1) {
			in4->sin_family = AF_INET;
			in4->sin_port = htons((uint16_t)port);
			t->addrlen = sizeof *in4;
		} else if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
			in6->sin6_family = AF_INET6;
			in6->sin6_port = htons((uint16_t)port);
			t->addrlen = sizeof *in6;
		} else {
			return -1; /* numeric addresses only: no DNS in a TPM path */
		}
	}
	t->kind = 1;
	return 0;
}

enum quote_err quote_tcti_open(const char *conf, unsigned timeout_ms, TSS2_TCTI_CONTEXT **ret, int *ret_own,
			 char *why, size_t whylen)
{
	struct own_tcti *t;
	TSS2_RC rc;

	if (strncmp(conf, "swtpm", 5) == 0 && (conf[5] == 0 || conf[5] == ':')) {
		if (!(t = calloc(1, sizeof *t)))
			return QUOTE_ERR_NOMEM;
		t->fd = -1;
		if (parse_swtpm(conf[5] ? conf + 6 : "", t) != 0) {
			snprintf(why, whylen, "bad swtpm TCTI configuration \"%.80s\"", conf);
			free(t);
			return QUOTE_ERR_ARG;
		}
	} else if (strncmp(conf, "device", 6) == 0 && (conf[6] == 0 || conf[6] == ':')) {
		const char *path = conf[6] && conf[7] ? conf + 7 : "/dev/tpmrm0";
		if (!(t = calloc(1, sizeof *t)))
			return QUOTE_ERR_NOMEM;
		t->kind = 3;
		t->fd = open(path, O_RDWR | O_CLOEXEC | O_NONBLOCK);
		if (t->fd < 0) {
			snprintf(why, whylen, "cannot open %.80s: %s", path, strerror(errno));
			free(t);
			return QUOTE_ERR_TCTI;
		}
	} else {
		rc = Tss2_TctiLdr_Initialize(conf, ret);
		if (rc != TSS2_RC_SUCCESS) {
			snprintf(why, whylen, "cannot open TCTI \"%.80s\" (rc 0x%x)", conf, rc);
			return QUOTE_ERR_TCTI;
		}
		*ret_own = 0;
		return QUOTE_OK;
	}
	t->timeout_ms_connect = timeout_ms;
	t->common.v1.magic = OWN_MAGIC;
	t->common.v1.version = 2;
	t->common.v1.transmit = own_transmit;
	t->common.v1.receive = own_receive;
	t->common.v1.finalize = own_finalize;
	t->common.v1.cancel = own_cancel;
	t->common.v1.getPollHandles = own_poll_handles;
	t->common.v1.setLocality = own_locality;
	t->common.makeSticky = own_sticky;
	*ret = (TSS2_TCTI_CONTEXT *)t;
	*ret_own = 1;
	return QUOTE_OK;
}

void quote_tcti_close(TSS2_TCTI_CONTEXT **tcti, int is_own)
{
	if (!tcti || !*tcti)
		return;
	if (is_own) {
		own_finalize(*tcti);
		free(*tcti);
	} else {
		Tss2_TctiLdr_Finalize(tcti);
	}
	*tcti = NULL;
}
