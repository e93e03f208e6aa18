/*
 * Programs that handle their own SIGSEGV, for tests/test_sampler_promises.py: a
 * "safe probe" whose handler leaves by siglongjmp, and a barrier whose handler mends
 * the fault (unprotects the page) and returns so the access runs again. Built by the
 * test with the C compiler, loaded with ctypes; no Python API.
 */
#include <setjmp.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static sigjmp_buf probe_jump;
static volatile sig_atomic_t probing;
static char *guarded_page;
static long page_size;
static volatile int faults_seen;

static void
leave_by_longjmp(int sig, siginfo_t *si, void *uc)
{
    (void)si;
    (void)uc;
    faults_seen++;
    if (probing) {
        probing = 0;
        siglongjmp(probe_jump, 1);
    }
    signal(sig, SIG_DFL);   /* not ours: die as without a handler */
}

static void
mend_and_return(int sig, siginfo_t *si, void *uc)
{
    (void)uc;
    faults_seen++;
    char *at = (char *)si->si_addr;
    if (at >= guarded_page && at < guarded_page + page_size) {
        mprotect(guarded_page, (size_t)page_size, PROT_READ | PROT_WRITE);
        return;
    }
    signal(sig, SIG_DFL);
}

/* kind 0: leave by siglongjmp; 1: mend and return. 0 on success. */
int
install_handler(int kind)
{
    page_size = sysconf(_SC_PAGESIZE);
    if (guarded_page == NULL) {
        void *p = mmap(NULL, (size_t)page_size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) {
            return -1;
        }
        guarded_page = p;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_flags = SA_SIGINFO;
    sa.sa_sigaction = kind == 0 ? leave_by_longjmp : mend_and_return;
    sigemptyset(&sa.sa_mask);
    return sigaction(SIGSEGV, &sa, NULL);
}

/* One faulting access; returns the faults seen so far. */
int
probe(int kind)
{
    mprotect(guarded_page, (size_t)page_size, PROT_NONE);
    if (kind == 0) {
        if (sigsetjmp(probe_jump, 1) == 0) {
            probing = 1;
            *(volatile char *)guarded_page = 1;
            probing = 0;
        }
    }
    else {
        *(volatile char *)guarded_page = 1;
    }
    return faults_seen;
}
