/* The verifier's state: one SQLite database (WAL, synchronous=NORMAL) under --state DIR.
 * One connection behind a mutex: appraisals write a few small rows each, and SQLite in WAL
 * mode commits those in microseconds; the crypto runs outside the lock. The database belongs
 * to this one process (locking_mode=EXCLUSIVE): the WAL index lives in the heap instead of a
 * shared -shm mapping and no transaction takes or drops POSIX file locks (fcntl), which was
 * ~4% of an appraisal's CPU. Another process cannot use the database while the verifier runs. */
#include "verifier/verifier-int.h"

#include <errno.h>
#include <limits.h>
#include <openssl/crypto.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define NCACHE 24
#define HSLOTS 2048 /* enrolments remembered by AK name (power of two; at most half used) */
#define HNAME_MAX 68 /* TPM2B_NAME */

/* What an appraisal needs of an enrolment (host id, EK, AK), by AK name: appraisals read it on
 * every request and it changes only when a host enrols, which empties the table (under the
 * store's mutex, like every read of it). The database is this process's alone (exclusive
 * lock), so nothing else can change a row behind it. */
struct hslot {
	uint8_t ak_name[HNAME_MAX];
	size_t ak_name_len; /* 0: free */
	char host_id[VERIFIER_MAX_HOST_ID + 1];
	uint8_t *ek_pub, *ak_pub;
	size_t ek_pub_len, ak_pub_len;
};

struct verifier_store {
	sqlite3 *db;
	pthread_mutex_t mu;
	char cause[256];
	struct hslot *hosts; /* HSLOTS, or NULL (then every lookup reads the database) */
	size_t n_hosts;
	/* Prepared statements of the hot paths, keyed by the address of their SQL literal. */
	struct {
		const char *sql;
		sqlite3_stmt *st;
	} cache[NCACHE];
};

/* Prepare sql (a string literal: its address is the cache key), or reuse the cached statement. */
static int prep(struct verifier_store *s, const char *sql, sqlite3_stmt **st)
{
	int rc;
	for (size_t i = 0; i < NCACHE; i++)
		if (s->cache[i].sql == sql) {
			*st = s->cache[i].st;
			return SQLITE_OK;
		}
	rc = sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT, st, NULL);
	if (rc != SQLITE_OK)
		return rc;
	for (size_t i = 0; i < NCACHE; i++)
		if (!s->cache[i].sql) {
			s->cache[i].sql = sql;
			s->cache[i].st = *st;
			break;
		}
	return SQLITE_OK;
}

/* Release a statement from prep(): cached ones are reset for the next use. */
static void done(struct verifier_store *s, sqlite3_stmt *st)
{
	if (!st)
		return;
	for (size_t i = 0; i < NCACHE; i++)
		if (s->cache[i].st == st) {
			sqlite3_reset(st);
			sqlite3_clear_bindings(st);
			return;
		}
	sqlite3_finalize(st);
}

static int exec1(struct verifier_store *s, const char *sql)
{
	sqlite3_stmt *st = NULL;
	int rc = prep(s, sql, &st);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(st) == SQLITE_DONE ? SQLITE_OK : SQLITE_ERROR;
	done(s, st);
	return rc;
}
#define SQL_BEGIN "BEGIN"
#define SQL_COMMIT "COMMIT"
#define SQL_ROLLBACK "ROLLBACK"

static const char schema[] =
	"CREATE TABLE IF NOT EXISTS hosts ("
	"  host_id TEXT PRIMARY KEY, ek_pub BLOB NOT NULL, ek_cert BLOB, ak_pub BLOB NOT NULL,"
	"  ak_name BLOB NOT NULL, enrolled_at INTEGER NOT NULL,"
	"  last_status TEXT, last_at INTEGER, last_reasons TEXT);"
	"CREATE INDEX IF NOT EXISTS hosts_ak ON hosts(ak_name);"
	"CREATE TABLE IF NOT EXISTS enroll_pending ("
	"  id TEXT PRIMARY KEY, host_id TEXT NOT NULL, ek_pub BLOB NOT NULL, ek_cert BLOB,"
	"  ak_pub BLOB NOT NULL, ak_name BLOB NOT NULL, secret_hash BLOB NOT NULL, expires INTEGER NOT NULL);"
	"CREATE TABLE IF NOT EXISTS nonces ("
	"  nonce BLOB PRIMARY KEY, host_id TEXT NOT NULL, expires INTEGER NOT NULL,"
	"  used INTEGER NOT NULL DEFAULT 0) WITHOUT ROWID;"
	"CREATE TABLE IF NOT EXISTS verdicts ("
	"  id INTEGER PRIMARY KEY, host_id TEXT NOT NULL, at INTEGER NOT NULL, status TEXT NOT NULL,"
	"  reasons TEXT, statement_hash BLOB, verdict BLOB, receipt BLOB);"
	/* No per-host index on verdicts: the service never reads the history back (a host's last
	 * verdict is in its hosts row), and keeping one cost every appraisal an index insert and a
	 * WAL page (~6 us); databases made by earlier versions lose theirs once. */
	"DROP INDEX IF EXISTS verdicts_host;";

static enum verifier_err dberr(struct verifier_store *s, const char *what)
{
	snprintf(s->cause, sizeof s->cause, "%s: %s", what, sqlite3_errmsg(s->db));
	return VERIFIER_ERR_DB;
}

const char *verifier_store_last_cause(struct verifier_store *s)
{
	return s ? s->cause : "";
}

static void hosts_clear(struct verifier_store *s)
{
	if (!s->hosts)
		return;
	for (size_t i = 0; i < HSLOTS; i++) {
		free(s->hosts[i].ek_pub);
		free(s->hosts[i].ak_pub);
	}
	memset(s->hosts, 0, HSLOTS * sizeof *s->hosts);
	s->n_hosts = 0;
}

/* The slot of name: its entry, or the free slot where it would go. NULL if not cacheable. */
static struct hslot *hosts_slot(struct verifier_store *s, const uint8_t *name, size_t len)
{
	size_t i = 0;
	if (!s->hosts || len < 10 || len > HNAME_MAX)
		return NULL;
	for (size_t k = 2; k < 10; k++) /* the digest after the hash algorithm id */
		i = i << 8 | name[k];
	for (i &= HSLOTS - 1; s->hosts[i].ak_name_len; i = (i + 1) & (HSLOTS - 1))
		if (s->hosts[i].ak_name_len == len && memcmp(s->hosts[i].ak_name, name, len) == 0)
			break;
	return &s->hosts[i];
}

static int dup_bytes(const uint8_t *b, size_t n, uint8_t **ret)
{
	*ret = NULL;
	if (!n)
		return 0;
	if (!(*ret = malloc(n)))
		return -1;
	memcpy(*ret, b, n);
	return 0;
}

enum verifier_err verifier_store_open(const char *dir, struct verifier_store **ret)
{
	char path[PATH_MAX];
	struct verifier_store *s;
	char *msg = NULL;

	if (snprintf(path, sizeof path, "%s/verifier.db", dir) >= (int)sizeof path)
		return VERIFIER_ERR_INVAL;
	if (mkdir(dir, 0700) != 0 && errno != EEXIST)
		return VERIFIER_ERR_IO;
	if (!(s = calloc(1, sizeof *s)))
		return VERIFIER_ERR_NOMEM;
	pthread_mutex_init(&s->mu, NULL);
	s->hosts = calloc(HSLOTS, sizeof *s->hosts);
	if (sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL) !=
	    SQLITE_OK)
		goto fail;
	sqlite3_busy_timeout(s->db, 5000);
	/* locking_mode before journal_mode: WAL then keeps its index in the heap (no -shm). */
	if (sqlite3_exec(s->db,
			 "PRAGMA locking_mode=EXCLUSIVE; PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; "
			 "PRAGMA foreign_keys=ON;",
			 NULL, NULL, &msg) != SQLITE_OK ||
	    sqlite3_exec(s->db, schema, NULL, NULL, &msg) != SQLITE_OK)
		goto fail;
	*ret = s;
	return VERIFIER_OK;
fail:
	sqlite3_free(msg);
	verifier_store_close(s);
	return VERIFIER_ERR_DB;
}

void verifier_store_close(struct verifier_store *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < NCACHE; i++)
		sqlite3_finalize(s->cache[i].st);
	hosts_clear(s);
	free(s->hosts);
	sqlite3_close(s->db);
	pthread_mutex_destroy(&s->mu);
	free(s);
}

void verifier_host_clear(struct verifier_host *h)
{
	if (!h)
		return;
	free(h->ek_pub);
	free(h->ek_cert);
	free(h->ak_pub);
	free(h->ak_name);
	free(h->last_reasons);
	memset(h, 0, sizeof *h);
}

static int dup_blob(sqlite3_stmt *st, int col, uint8_t **ret, size_t *len)
{
	const void *b = sqlite3_column_blob(st, col);
	int n = sqlite3_column_bytes(st, col);
	*ret = NULL;
	*len = 0;
	if (!b || n <= 0)
		return 0;
	if (!(*ret = malloc((size_t)n)))
		return -1;
	memcpy(*ret, b, (size_t)n);
	*len = (size_t)n;
	return 0;
}

static enum verifier_err read_host(sqlite3_stmt *st, struct verifier_host *h)
{
	const unsigned char *t;
	memset(h, 0, sizeof *h);
	snprintf(h->host_id, sizeof h->host_id, "%s", (const char *)sqlite3_column_text(st, 0));
	if (dup_blob(st, 1, &h->ek_pub, &h->ek_pub_len) || dup_blob(st, 2, &h->ek_cert, &h->ek_cert_len) ||
	    dup_blob(st, 3, &h->ak_pub, &h->ak_pub_len) || dup_blob(st, 4, &h->ak_name, &h->ak_name_len)) {
		verifier_host_clear(h);
		return VERIFIER_ERR_NOMEM;
	}
	h->enrolled_at = sqlite3_column_int64(st, 5);
	t = sqlite3_column_text(st, 6);
	snprintf(h->last_status, sizeof h->last_status, "%s", t ? (const char *)t : "");
	h->last_at = sqlite3_column_int64(st, 7);
	t = sqlite3_column_text(st, 8);
	if (t && !(h->last_reasons = strdup((const char *)t))) {
		verifier_host_clear(h);
		return VERIFIER_ERR_NOMEM;
	}
	return VERIFIER_OK;
}

#define HOST_COLS "host_id, ek_pub, ek_cert, ak_pub, ak_name, enrolled_at, last_status, last_at, last_reasons"

/* One host row by key (text or blob) into ret; the caller holds s->mu. */
static enum verifier_err host_query_locked(struct verifier_store *s, const char *sql, const void *key, size_t keylen,
					   int is_text, struct verifier_host *ret)
{
	sqlite3_stmt *st = NULL;
	enum verifier_err rc;
	int r;

	if (prep(s, sql, &st) != SQLITE_OK) {
		rc = dberr(s, "prepare host query");
		goto out;
	}
	if (is_text)
		sqlite3_bind_text(st, 1, key, (int)keylen, SQLITE_STATIC);
	else
		sqlite3_bind_blob(st, 1, key, (int)keylen, SQLITE_STATIC);
	r = sqlite3_step(st);
	if (r == SQLITE_ROW)
		rc = read_host(st, ret);
	else if (r == SQLITE_DONE)
		rc = VERIFIER_ERR_NOTFOUND;
	else
		rc = dberr(s, "host query");
out:
	done(s, st);
	return rc;
}

static enum verifier_err host_query(struct verifier_store *s, const char *sql, const void *key, size_t keylen,
				    int is_text, struct verifier_host *ret)
{
	enum verifier_err rc;

	pthread_mutex_lock(&s->mu);
	rc = host_query_locked(s, sql, key, keylen, is_text, ret);
	pthread_mutex_unlock(&s->mu);
	return rc;
}

enum verifier_err verifier_store_host_get(struct verifier_store *s, const char *host_id, struct verifier_host *ret)
{
	return host_query(s, "SELECT " HOST_COLS " FROM hosts WHERE host_id = ?", host_id, strlen(host_id), 1, ret);
}

enum verifier_err verifier_store_host_by_ak(struct verifier_store *s, const uint8_t *ak_name, size_t len,
					   struct verifier_host *ret)
{
	return host_query(s, "SELECT " HOST_COLS " FROM hosts WHERE ak_name = ? LIMIT 1", ak_name, len, 0, ret);
}

enum verifier_err verifier_store_host_keys_by_ak(struct verifier_store *s, const uint8_t *ak_name, size_t len,
						 struct verifier_host *ret)
{
	enum verifier_err rc;
	struct hslot *e;

	memset(ret, 0, sizeof *ret);
	pthread_mutex_lock(&s->mu);
	e = hosts_slot(s, ak_name, len);
	if (e && e->ak_name_len) {
		memcpy(ret->host_id, e->host_id, sizeof ret->host_id);
		ret->ek_pub_len = e->ek_pub_len;
		ret->ak_pub_len = e->ak_pub_len;
		ret->ak_name_len = len;
		rc = dup_bytes(e->ek_pub, e->ek_pub_len, &ret->ek_pub) || dup_bytes(e->ak_pub, e->ak_pub_len, &ret->ak_pub) ||
			     dup_bytes(ak_name, len, &ret->ak_name)
			     ? VERIFIER_ERR_NOMEM
			     : VERIFIER_OK;
		goto out;
	}
	rc = host_query_locked(s,
			       "SELECT host_id, ek_pub, NULL, ak_pub, ak_name, enrolled_at, NULL, NULL, NULL FROM hosts "
			       "WHERE ak_name = ? LIMIT 1",
			       ak_name, len, 0, ret);
	/* Remember a found enrolment (misses are not: anyone can send an unknown AK). */
	if (rc == VERIFIER_OK && e && s->n_hosts < HSLOTS / 2 && ret->ak_name_len == len &&
	    memcmp(ret->ak_name, ak_name, len) == 0) {
		if (dup_bytes(ret->ek_pub, ret->ek_pub_len, &e->ek_pub) == 0 &&
		    dup_bytes(ret->ak_pub, ret->ak_pub_len, &e->ak_pub) == 0) {
			memcpy(e->ak_name, ak_name, len);
			e->ak_name_len = len;
			memcpy(e->host_id, ret->host_id, sizeof e->host_id);
			e->ek_pub_len = ret->ek_pub_len;
			e->ak_pub_len = ret->ak_pub_len;
			s->n_hosts++;
		} else {
			free(e->ek_pub);
			free(e->ak_pub);
			memset(e, 0, sizeof *e);
		}
	}
out:
	pthread_mutex_unlock(&s->mu);
	if (rc != VERIFIER_OK && rc != VERIFIER_ERR_NOTFOUND)
		verifier_host_clear(ret);
	return rc;
}

enum verifier_err verifier_store_host_put(struct verifier_store *s, const struct verifier_host *h)
{
	sqlite3_stmt *st = NULL;
	enum verifier_err rc = VERIFIER_OK;

	pthread_mutex_lock(&s->mu);
	hosts_clear(s); /* enrolments change: appraisals read them from the database again */
	if (exec1(s, SQL_BEGIN) != SQLITE_OK) {
		rc = dberr(s, "begin");
		goto out;
	}
	/* The TPM (its AK) belongs to this host id only: an older binding is dropped. */
	if (prep(s, "DELETE FROM hosts WHERE ak_name = ? AND host_id != ?", &st) !=
	    SQLITE_OK) {
		rc = dberr(s, "prepare host move");
		goto rollback;
	}
	sqlite3_bind_blob(st, 1, h->ak_name, (int)h->ak_name_len, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, h->host_id, -1, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_DONE) {
		rc = dberr(s, "move host");
		goto rollback;
	}
	done(s, st);
	st = NULL;
	if (prep(s, "INSERT INTO hosts (host_id, ek_pub, ek_cert, ak_pub, ak_name, enrolled_at) "
			       "VALUES (?,?,?,?,?,?) ON CONFLICT(host_id) DO UPDATE SET ek_pub=excluded.ek_pub, "
			       "ek_cert=excluded.ek_cert, ak_pub=excluded.ak_pub, ak_name=excluded.ak_name, "
			       "enrolled_at=excluded.enrolled_at, last_status=NULL, last_at=NULL, last_reasons=NULL", &st) != SQLITE_OK) {
		rc = dberr(s, "prepare host insert");
		goto rollback;
	}
	sqlite3_bind_text(st, 1, h->host_id, -1, SQLITE_STATIC);
	sqlite3_bind_blob(st, 2, h->ek_pub, (int)h->ek_pub_len, SQLITE_STATIC);
	if (h->ek_cert)
		sqlite3_bind_blob(st, 3, h->ek_cert, (int)h->ek_cert_len, SQLITE_STATIC);
	sqlite3_bind_blob(st, 4, h->ak_pub, (int)h->ak_pub_len, SQLITE_STATIC);
	sqlite3_bind_blob(st, 5, h->ak_name, (int)h->ak_name_len, SQLITE_STATIC);
	sqlite3_bind_int64(st, 6, h->enrolled_at);
	if (sqlite3_step(st) != SQLITE_DONE) {
		rc = dberr(s, "insert host");
		goto rollback;
	}
	if (exec1(s, SQL_COMMIT) == SQLITE_OK)
		goto out;
	rc = dberr(s, "commit host");
rollback:
	done(s, st);
	st = NULL;
	exec1(s, SQL_ROLLBACK);
out:
	done(s, st);
	pthread_mutex_unlock(&s->mu);
	return rc;
}

enum verifier_err verifier_store_pending_put(struct verifier_store *s, const char *id, const struct verifier_host *h,
					     const uint8_t secret_hash[VERIFIER_HASH_LEN], int64_t expires)
{
	sqlite3_stmt *st = NULL;
	enum verifier_err rc = VERIFIER_OK;

	pthread_mutex_lock(&s->mu);
	if (prep(s, "INSERT INTO enroll_pending (id, host_id, ek_pub, ek_cert, ak_pub, ak_name, secret_hash, "
			       "expires) VALUES (?,?,?,?,?,?,?,?)", &st) != SQLITE_OK) {
		rc = dberr(s, "prepare pending insert");
		goto out;
	}
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, h->host_id, -1, SQLITE_STATIC);
	sqlite3_bind_blob(st, 3, h->ek_pub, (int)h->ek_pub_len, SQLITE_STATIC);
	if (h->ek_cert)
		sqlite3_bind_blob(st, 4, h->ek_cert, (int)h->ek_cert_len, SQLITE_STATIC);
	sqlite3_bind_blob(st, 5, h->ak_pub, (int)h->ak_pub_len, SQLITE_STATIC);
	sqlite3_bind_blob(st, 6, h->ak_name, (int)h->ak_name_len, SQLITE_STATIC);
	sqlite3_bind_blob(st, 7, secret_hash, VERIFIER_HASH_LEN, SQLITE_STATIC);
	sqlite3_bind_int64(st, 8, expires);
	if (sqlite3_step(st) != SQLITE_DONE)
		rc = dberr(s, "insert pending enrolment");
out:
	done(s, st);
	pthread_mutex_unlock(&s->mu);
	return rc;
}

enum verifier_err verifier_store_pending_take(struct verifier_store *s, const char *id, struct verifier_host *h,
					      uint8_t secret_hash[VERIFIER_HASH_LEN], int64_t *expires)
{
	sqlite3_stmt *st = NULL;
	enum verifier_err rc = VERIFIER_OK;
	int r;

	memset(h, 0, sizeof *h);
	pthread_mutex_lock(&s->mu);
	if (prep(s, "DELETE FROM enroll_pending WHERE id = ? RETURNING host_id, ek_pub, ek_cert, ak_pub, "
			       "ak_name, secret_hash, expires", &st) != SQLITE_OK) {
		rc = dberr(s, "prepare pending take");
		goto out;
	}
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	r = sqlite3_step(st);
	if (r == SQLITE_DONE) {
		rc = VERIFIER_ERR_NOTFOUND;
		goto out;
	}
	if (r != SQLITE_ROW) {
		rc = dberr(s, "take pending enrolment");
		goto out;
	}
	snprintf(h->host_id, sizeof h->host_id, "%s", (const char *)sqlite3_column_text(st, 0));
	if (dup_blob(st, 1, &h->ek_pub, &h->ek_pub_len) || dup_blob(st, 2, &h->ek_cert, &h->ek_cert_len) ||
	    dup_blob(st, 3, &h->ak_pub, &h->ak_pub_len) || dup_blob(st, 4, &h->ak_name, &h->ak_name_len)) {
		verifier_host_clear(h);
		rc = VERIFIER_ERR_NOMEM;
		goto out;
	}
	if (sqlite3_column_bytes(st, 5) != VERIFIER_HASH_LEN) {
		verifier_host_clear(h);
		rc = VERIFIER_ERR_DB;
		goto out;
	}
	memcpy(secret_hash, sqlite3_column_blob(st, 5), VERIFIER_HASH_LEN);
	*expires = sqlite3_column_int64(st, 6);
	while (sqlite3_step(st) == SQLITE_ROW)
		;
out:
	done(s, st);
	pthread_mutex_unlock(&s->mu);
	return rc;
}

enum verifier_err verifier_store_nonce_put(struct verifier_store *s, const uint8_t *nonce, size_t len,
					   const char *host_id, int64_t expires)
{
	sqlite3_stmt *st = NULL;
	enum verifier_err rc = VERIFIER_OK;

	pthread_mutex_lock(&s->mu);
	if (prep(s, "INSERT INTO nonces (nonce, host_id, expires) VALUES (?,?,?)", &st) !=
	    SQLITE_OK) {
		rc = dberr(s, "prepare nonce insert");
		goto out;
	}
	sqlite3_bind_blob(st, 1, nonce, (int)len, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, host_id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, expires);
	if (sqlite3_step(st) != SQLITE_DONE)
		rc = dberr(s, "insert nonce");
out:
	done(s, st);
	pthread_mutex_unlock(&s->mu);
	return rc;
}

enum verifier_err verifier_store_nonce_consume(struct verifier_store *s, const uint8_t *nonce, size_t len,
					       const char *host_id, int64_t now, enum nonce_state *state)
{
	sqlite3_stmt *st = NULL;
	enum verifier_err rc = VERIFIER_OK;
	int r;

	pthread_mutex_lock(&s->mu);
	/* Mark used in one statement and learn what it was before: single use even under races. */
	if (prep(s, "UPDATE nonces SET used = used + 1 WHERE nonce = ? RETURNING host_id, expires, used", &st) !=
	    SQLITE_OK) {
		rc = dberr(s, "prepare nonce consume");
		goto out;
	}
	sqlite3_bind_blob(st, 1, nonce, (int)len, SQLITE_STATIC);
	r = sqlite3_step(st);
	if (r == SQLITE_DONE) {
		*state = NONCE_UNKNOWN;
	} else if (r == SQLITE_ROW) {
		const char *h = (const char *)sqlite3_column_text(st, 0);
		int64_t exp = sqlite3_column_int64(st, 1);
		int64_t used = sqlite3_column_int64(st, 2);
		if (used > 1)
			*state = NONCE_REPLAYED;
		else if (!h || strcmp(h, host_id) != 0)
			*state = NONCE_OTHER_HOST;
		else if (now > exp)
			*state = NONCE_EXPIRED;
		else
			*state = NONCE_FRESH;
		while (sqlite3_step(st) == SQLITE_ROW)
			;
	} else {
		rc = dberr(s, "consume nonce");
	}
out:
	done(s, st);
	pthread_mutex_unlock(&s->mu);
	return rc;
}

enum verifier_err verifier_store_nonce_purge(struct verifier_store *s, int64_t before)
{
	sqlite3_stmt *st = NULL;
	enum verifier_err rc = VERIFIER_OK;

	pthread_mutex_lock(&s->mu);
	if (prep(s, "DELETE FROM nonces WHERE expires < ?", &st) != SQLITE_OK) {
		rc = dberr(s, "prepare nonce purge");
		goto out;
	}
	sqlite3_bind_int64(st, 1, before);
	if (sqlite3_step(st) != SQLITE_DONE)
		rc = dberr(s, "purge nonces");
	done(s, st);
	st = NULL;
	if (rc == VERIFIER_OK &&
	    prep(s, "DELETE FROM enroll_pending WHERE expires < ?", &st) == SQLITE_OK) {
		sqlite3_bind_int64(st, 1, before);
		if (sqlite3_step(st) != SQLITE_DONE)
			rc = dberr(s, "purge pending enrolments");
	}
out:
	done(s, st);
	pthread_mutex_unlock(&s->mu);
	return rc;
}

enum verifier_err verifier_store_verdict_add(struct verifier_store *s, const char *host_id, int64_t at,
					     const char *status, const char *reasons_json,
					     const uint8_t *stmt_hash, size_t stmt_hash_len,
					     const uint8_t *verdict, size_t verdict_len,
					     const uint8_t *receipt, size_t receipt_len)
{
	sqlite3_stmt *st = NULL, *up = NULL;
	enum verifier_err rc = VERIFIER_OK;

	pthread_mutex_lock(&s->mu);
	if (exec1(s, SQL_BEGIN) != SQLITE_OK) {
		rc = dberr(s, "begin");
		goto out;
	}
	if (prep(s,
		 "INSERT INTO verdicts (host_id, at, status, reasons, statement_hash, verdict, receipt) "
		 "VALUES (?,?,?,?,?,?,?)",
		 &st) != SQLITE_OK ||
	    prep(s, "UPDATE hosts SET last_status = ?, last_at = ?, last_reasons = ? WHERE host_id = ?", &up) !=
		    SQLITE_OK) {
		rc = dberr(s, "prepare verdict insert");
		goto rollback;
	}
	sqlite3_bind_text(st, 1, host_id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, at);
	sqlite3_bind_text(st, 3, status, -1, SQLITE_STATIC);
	if (reasons_json)
		sqlite3_bind_text(st, 4, reasons_json, -1, SQLITE_STATIC);
	if (stmt_hash)
		sqlite3_bind_blob(st, 5, stmt_hash, (int)stmt_hash_len, SQLITE_STATIC);
	if (verdict)
		sqlite3_bind_blob(st, 6, verdict, (int)verdict_len, SQLITE_STATIC);
	if (receipt)
		sqlite3_bind_blob(st, 7, receipt, (int)receipt_len, SQLITE_STATIC);
	sqlite3_bind_text(up, 1, status, -1, SQLITE_STATIC);
	sqlite3_bind_int64(up, 2, at);
	if (reasons_json)
		sqlite3_bind_text(up, 3, reasons_json, -1, SQLITE_STATIC);
	sqlite3_bind_text(up, 4, host_id, -1, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_DONE || sqlite3_step(up) != SQLITE_DONE) {
		rc = dberr(s, "insert verdict");
		goto rollback;
	}
	if (exec1(s, SQL_COMMIT) != SQLITE_OK) {
		rc = dberr(s, "commit verdict");
		goto rollback;
	}
	goto out;
rollback:
	done(s, st);
	done(s, up);
	st = up = NULL;
	exec1(s, SQL_ROLLBACK);
out:
	done(s, st);
	done(s, up);
	pthread_mutex_unlock(&s->mu);
	return rc;
}

enum verifier_err verifier_store_count(struct verifier_store *s, const char *table, long long *ret)
{
	char sql[96];
	sqlite3_stmt *st = NULL;
	enum verifier_err rc = VERIFIER_OK;

	if (strcmp(table, "hosts") && strcmp(table, "verdicts") && strcmp(table, "nonces") &&
	    strcmp(table, "enroll_pending"))
		return VERIFIER_ERR_INVAL;
	snprintf(sql, sizeof sql, "SELECT count(*) FROM %s", table);
	pthread_mutex_lock(&s->mu);
	if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK || sqlite3_step(st) != SQLITE_ROW)
		rc = dberr(s, "count");
	else
		*ret = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	pthread_mutex_unlock(&s->mu);
	return rc;
}
