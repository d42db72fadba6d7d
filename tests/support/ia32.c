// SPDX-License-Identifier: GPL-2.0
/* A 32-bit program (gcc -m32) for tests/raw_tracepoint.rs: names itself
 * argv[1], then makes argv[2] rounds of system calls through glibc (the
 * vDSO's sysenter/syscall entry, not int $0x80) whose ia32 numbers are
 * those of the read/write family on x86-64: 0 restart_syscall, 17 break,
 * 18 oldstat, 19 lseek, 20 getpid, 295 openat, 296 mkdirat, 327 signalfd4,
 * 328 eventfd2, and real 32-bit reads and writes (ia32 3 and 4) of
 * /dev/zero and /dev/null. None is an x86-64 read or write. Prints
 * `ia32_calls=N` after renaming itself. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	if (argc != 3)
		return 2;
	int zero = open("/dev/zero", O_RDONLY), null = open("/dev/null", O_WRONLY);
	if (zero < 0 || null < 0)
		return 1;
	long rounds = atol(argv[2]), calls = 0;
	char byte = 'x';
	prctl(PR_SET_NAME, argv[1], 0, 0, 0);
	for (long i = 0; i < rounds; i++) {
		long numbers[] = { 0, 17, 18, 19, 20, 295, 296, 327 };
		for (unsigned j = 0; j < sizeof(numbers) / sizeof(numbers[0]); j++) {
			syscall(numbers[j], -1, 0, 0, 0);
			calls++;
		}
		long fd = syscall(328, 0, 0);
		calls++;
		if (fd >= 0) {
			close(fd);
			calls++;
		}
		calls += read(zero, &byte, 1) == 1;
		calls += write(null, &byte, 1) == 1;
	}
	prctl(PR_SET_NAME, "ia32-done", 0, 0, 0);
	printf("ia32_calls=%ld\n", calls);
	return 0;
}
