/*
 * replay.h - the main of a fuzz target built without libFuzzer (-DFUZZ_REPLAY_MAIN): runs
 * LLVMFuzzerTestOneInput on each file named on the command line (the target's seed corpus), so
 * that `make test` replays the corpora as ordinary tests. A target defines FUZZ_TARGET_NAME
 * ("fuzz_der_cert") and includes this file after its LLVMFuzzerTestOneInput.
 */
#ifndef CF_FUZZ_REPLAY_H
#define CF_FUZZ_REPLAY_H

#ifdef FUZZ_REPLAY_MAIN
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int
main(int argc, char **argv)
{
	int i;

	for (i = 1; i < argc; i++) {
		unsigned char *buf = NULL;
		size_t len = 0, cap = 0, n;
		FILE *f = fopen(argv[i], "rb");

		if (f == NULL) {
			perror(argv[i]);
			return 1;
		}
		do {
			if (len == cap) {
				unsigned char *nb = realloc(buf, cap = cap ? 2 * cap : 4096);

				if (nb == NULL)
					return 1;
				buf = nb;
			}
			n = fread(buf + len, 1, cap - len, f);
			len += n;
		} while (n > 0);
		fclose(f);
		LLVMFuzzerTestOneInput(buf, len);
		free(buf);
		/* a finding aborts before this line, which the test runner counts as a failure */
		printf("ok - %s replay %s\n", FUZZ_TARGET_NAME, argv[i]);
	}
	return 0;
}
#endif

#endif
