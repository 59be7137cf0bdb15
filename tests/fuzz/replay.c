/* Replays a fuzz corpus through a libFuzzer-style target without clang.
 * Usage: fuzz_X DIR|FILE...   Every regular file is fed once to LLVMFuzzerTestOneInput.
 * A crash or sanitizer report fails the run; "ok fuzz/<file>" lines are not printed per
 * input (corpora are large), only one summary "ok replay N inputs". */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define REPLAY_MAX_INPUT (4u << 20)

static int replay_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf = NULL;
	long n;
	int rc = -1;

	if (!f)
		return -1;
	if (fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 || n > (long)REPLAY_MAX_INPUT ||
	    fseek(f, 0, SEEK_SET) != 0)
		goto out;
	buf = malloc(n ? (size_t)n : 1);
	if (!buf || fread(buf, 1, (size_t)n, f) != (size_t)n)
		goto out;
	LLVMFuzzerTestOneInput(buf, (size_t)n);
	rc = 0;
out:
	free(buf);
	fclose(f);
	return rc;
}

int main(int argc, char **argv)
{
	unsigned count = 0, errors = 0;

	for (int i = 1; i < argc; i++) {
		struct stat st;
		if (stat(argv[i], &st) != 0) {
			printf("not ok replay: cannot stat %s\n", argv[i]);
			return 1;
		}
		if (S_ISDIR(st.st_mode)) {
			DIR *d = opendir(argv[i]);
			struct dirent *e;
			if (!d)
				return 1;
			while ((e = readdir(d))) {
				char p[4096];
				if (e->d_name[0] == '.')
					continue;
				snprintf(p, sizeof p, "%s/%s", argv[i], e->d_name);
				if (replay_file(p) != 0) {
					printf("# cannot read %s\n", p);
					errors++;
				}
				count++;
			}
			closedir(d);
		} else {
			if (replay_file(argv[i]) != 0)
				errors++;
			count++;
		}
	}
	if (errors) {
		printf("not ok replay: %u of %u inputs unreadable\n", errors, count);
		return 1;
	}
	printf("ok replay %u inputs\n", count);
	return 0;
}
