/* go_seccomp: run a program with one system call denied by a seccomp filter.

   usage: go_seccomp SYSCALL ERRNO PROGRAM [ARG...]
   SYSCALL is "timer_create" (the only one the lab needs); ERRNO is a positive number.

   The filter answers every SYSCALL of this process and of everything it execs with
   -ERRNO and lets every other call through. It is installed here, in a process with one
   thread, after prctl(PR_SET_NO_NEW_PRIVS) (which an unprivileged seccomp filter
   requires), and both are kept across execve and inherited by every thread and child the
   program creates (Documentation/userspace-api/seccomp_filter.rst in the kernel). Before
   exec the launcher checks that the call now fails with ERRNO, so a filter that did not
   take cannot pass for one that did (exit 125). A call made under another system-call
   ABI than the native one (i386 or x32 on x86-64) is let through: the lab runs
   native Go binaries, and this is a test harness, not a sandbox. */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#if defined(__x86_64__)
#define NATIVE_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define NATIVE_ARCH AUDIT_ARCH_AARCH64
#else
#error "go_seccomp knows the audit arch of x86-64 and arm64 only"
#endif

static int deny(long nr, int err)
{
    struct sock_filter filter[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, NATIVE_ARCH, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (unsigned)nr, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ((unsigned)err & SECCOMP_RET_DATA)),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = {(unsigned short)(sizeof(filter) / sizeof(filter[0])), filter};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
        return -1;
    }
    return (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog);
}

int main(int argc, char **argv)
{
    if (argc < 4 || strcmp(argv[1], "timer_create") != 0) {
        fprintf(stderr, "usage: %s timer_create ERRNO PROGRAM [ARG...]\n", argv[0]);
        return 2;
    }
    char *end = NULL;
    long err = strtol(argv[2], &end, 10);
    if (*argv[2] == '\0' || *end != '\0' || err <= 0 || err > 4095) {
        fprintf(stderr, "go_seccomp: ERRNO must be a number from 1 to 4095, got %s\n", argv[2]);
        return 2;
    }
    if (deny(SYS_timer_create, (int)err) != 0) {
        fprintf(stderr, "go_seccomp: cannot install the seccomp filter: %s\n", strerror(errno));
        return 125;
    }
    /* The check: the call must now fail with ERRNO (a timer made anyway is deleted). */
    int timer_id = 0;
    long got = syscall(SYS_timer_create, CLOCK_THREAD_CPUTIME_ID, NULL, &timer_id);
    if (got == 0) {
        syscall(SYS_timer_delete, timer_id);
        fprintf(stderr, "go_seccomp: timer_create still succeeds under the filter\n");
        return 125;
    }
    if (errno != err) {
        fprintf(stderr, "go_seccomp: timer_create failed with %s, not errno %ld\n",
                strerror(errno), err);
        return 125;
    }
    execvp(argv[3], argv + 3);
    fprintf(stderr, "go_seccomp: cannot run %s: %s\n", argv[3], strerror(errno));
    return 127;
}
