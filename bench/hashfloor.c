/* bench/hashfloor.c — the floor for any tool that reads files to hash them.
 *
 *   find TREE -type f -print0 | hashfloor THREADS
 *
 * Opens, reads (64 KiB, the size sluice uses) and SHA-256-hashes (OpenSSL EVP) each file named
 * on stdin on THREADS threads, and nothing else: no walk, no stat of directories, no records, no
 * sorting, no Merkle tree. bench/measure.sh times it next to `sluice measure` and the openssl
 * pipeline, so the best ratio a read-based implementation could reach on this machine is printed
 * from a measurement in the same run instead of argued. Prints the XOR of all digests (so the
 * work cannot be optimised away) and exits 1 on any error. Not part of sluice. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define READ_BUF (64 * 1024)
#define MAX_THREADS 64

static char **names;
static size_t nnames;
static atomic_size_t next_name;
static atomic_int failed;
static uint8_t folded[MAX_THREADS][32];

static void *work(void *arg)
{
	uint8_t *acc = arg, md[32];
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	EVP_MD *sha = EVP_MD_fetch(NULL, "SHA256", NULL);
	uint8_t *buf = aligned_alloc(4096, READ_BUF);

	if (!ctx || !sha || !buf) {
		atomic_store(&failed, 1);
		goto out;
	}
	for (size_t i; (i = atomic_fetch_add(&next_name, 1)) < nnames;) {
		int fd = open(names[i], O_RDONLY | O_NOFOLLOW | O_NOATIME | O_CLOEXEC);
		ssize_t r;
		if (fd < 0 && errno == EPERM)
			fd = open(names[i], O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0 || !EVP_DigestInit_ex(ctx, sha, NULL)) {
			perror(names[i]);
			atomic_store(&failed, 1);
			if (fd >= 0)
				close(fd);
			continue;
		}
		while ((r = read(fd, buf, READ_BUF)) > 0)
			EVP_DigestUpdate(ctx, buf, (size_t)r);
		if (r < 0) {
			perror(names[i]);
			atomic_store(&failed, 1);
		}
		EVP_DigestFinal_ex(ctx, md, NULL);
		close(fd);
		for (int k = 0; k < 32; k++)
			acc[k] ^= md[k];
	}
out:
	free(buf);
	EVP_MD_free(sha);
	EVP_MD_CTX_free(ctx);
	return NULL;
}

int main(int argc, char **argv)
{
	int threads = argc == 2 ? atoi(argv[1]) : 0;
	size_t cap = 0, len = 0;
	char *line = NULL;
	ssize_t n;
	pthread_t tid[MAX_THREADS];

	if (threads < 1 || threads > MAX_THREADS) {
		fprintf(stderr, "usage: find TREE -type f -print0 | hashfloor THREADS (1-%d)\n", MAX_THREADS);
		return 2;
	}
	while ((n = getdelim(&line, &len, '\0', stdin)) > 0) {
		if (nnames == cap) {
			char **grown = realloc(names, (cap = cap ? 2 * cap : 4096) * sizeof *names);
			if (!grown)
				return 1;
			names = grown;
		}
		if (!(names[nnames++] = strdup(line)))
			return 1;
	}
	free(line);
	for (int t = 0; t < threads; t++)
		if (pthread_create(&tid[t], NULL, work, folded[t]) != 0)
			return 1;
	for (int t = 0; t < threads; t++)
		pthread_join(tid[t], NULL);
	for (int t = 1; t < threads; t++)
		for (int k = 0; k < 32; k++)
			folded[0][k] ^= folded[t][k];
	for (int k = 0; k < 32; k++)
		printf("%02x", folded[0][k]);
	printf("  %zu files\n", nnames);
	return atomic_load(&failed) ? 1 : 0;
}
