/*
 * Threads the interpreter did not create, for tests/test_sampler_native_threads.py:
 * the pool of a C library (OpenBLAS and the like) with no Python thread state. Built by
 * the test with the C compiler, loaded with ctypes (which releases the GIL around each
 * call); no Python API.
 *   start_spinners(n, ns): n threads named "spinner", waiting on a condition variable;
 *   go_spinners(): each burns ns of its own CPU; join_spinners() -> their CPU in ns.
 *   spin_short(n, ns): n threads one after another, each burning ns and exiting.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdint.h>
#include <sys/resource.h>
#include <time.h>

#define MAX_SPINNERS 16

static pthread_t threads[MAX_SPINNERS];
static long long used[MAX_SPINNERS];
static int count;
static long long burn_ns;
static int started;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;

static long long
thread_cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* The loop watches getrusage, as realprof's spin_native does (see tests/test_sampler.py
   on why: no reason to be switched out between ticks); the CPU used is read from the
   thread's CPU clock once at each end. */
static long long
rusage_ns(void)
{
    struct rusage ru;
    getrusage(RUSAGE_THREAD, &ru);
    return (long long)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000000LL
           + (long long)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000LL;
}

static long long
burn(long long ns)
{
    volatile uint64_t x = 1;
    long long t0 = thread_cpu_ns();
    long long r0 = rusage_ns();
    while (rusage_ns() - r0 < ns) {
        for (int i = 0; i < 20000; i++) {
            x = x * 6364136223846793005ULL + 1442695040888963407ULL;
        }
    }
    return thread_cpu_ns() - t0;
}

static void *
spinner(void *arg)
{
    int i = (int)(intptr_t)arg;
    pthread_setname_np(pthread_self(), "spinner");
    pthread_mutex_lock(&lock);
    while (!started) {
        pthread_cond_wait(&cond, &lock);
    }
    pthread_mutex_unlock(&lock);
    used[i] = burn(burn_ns);
    return NULL;
}

int
start_spinners(int n, long long ns)
{
    if (n < 1 || n > MAX_SPINNERS) {
        return -1;
    }
    count = n;
    burn_ns = ns;
    started = 0;
    for (int i = 0; i < n; i++) {
        if (pthread_create(&threads[i], NULL, spinner, (void *)(intptr_t)i) != 0) {
            return -1;
        }
    }
    return 0;
}

void
go_spinners(void)
{
    pthread_mutex_lock(&lock);
    started = 1;
    pthread_cond_broadcast(&cond);
    pthread_mutex_unlock(&lock);
}

long long
join_spinners(void)
{
    long long total = 0;
    for (int i = 0; i < count; i++) {
        pthread_join(threads[i], NULL);
        total += used[i];
    }
    return total;
}

static void *
short_one(void *arg)
{
    pthread_setname_np(pthread_self(), "short-lived");
    *(long long *)arg = burn(burn_ns);
    return NULL;
}

long long
spin_short(int n, long long ns)
{
    long long total = 0;
    burn_ns = ns;
    for (int i = 0; i < n; i++) {
        pthread_t t;
        long long u = 0;
        if (pthread_create(&t, NULL, short_one, &u) != 0) {
            return -1;
        }
        pthread_join(t, NULL);
        total += u;
    }
    return total;
}
