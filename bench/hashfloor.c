/* bench/hashfloor.c — the floor for any tool that reads files to hash them.
 *
 *   find TREE -type f -print0 | hashfloor THREADS [mmap]
 *
 * Opens, reads (64 KiB, the size sluice uses) and SHA-256-hashes (OpenSSL EVP) each file named
 * on stdin on THREADS threads, and nothing else: no walk, no stat of directories, no records, no
 * sorting, no Merkle tree. With "mmap", files of 256 KiB and more are mapped (MADV_SEQUENTIAL)
 * and hashed from the mapping instead of copied out of the page cache: the zero-copy variant,
 * so the bench shows whether avoiding the copy pays here (sluice reads, because a file
 * truncated under a mapping raises SIGBUS). bench/measure.sh times it next to `sluice measure` and the openssl
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
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define READ_BUF (64 * 1024)
#define MAX_THREADS 64
#define MAP_MIN (256 * 1024)

static char **names;
static size_t nnames;
static atomic_size_t next_name;
static atomic_int failed;
static int use_mmap;
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
		struct stat st;
		if (use_mmap && fstat(fd, &st) == 0 && st.st_size >= MAP_MIN) {
			void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
			r = p == MAP_FAILED ? -1 : 0;
			if (p != MAP_FAILED) {
				madvise(p, (size_t)st.st_size, MADV_SEQUENTIAL);
				EVP_DigestUpdate(ctx, p, (size_t)st.st_size);
				munmap(p, (size_t)st.st_size);
			}
		} else {
			while ((r = read(fd, buf, READ_BUF)) > 0)
				EVP_DigestUpdate(ctx, buf, (size_t)r);
		}
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
	int threads;
	size_t cap = 0, len = 0;
	char *line = NULL;
	ssize_t n;
	pthread_t tid[MAX_THREADS];

	if (argc == 3 && strcmp(argv[2], "mmap") == 0) {
		use_mmap = 1;
		argc--;
	}
	threads = argc == 2 ? atoi(argv[1]) : 0;
	if (threads < 1 || threads > MAX_THREADS) {
		fprintf(stderr, "usage: find TREE -type f -print0 | hashfloor THREADS (1-%d) [mmap]\n", MAX_THREADS);
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
