/* cprobe: the process timer with a trivial SIGPROF handler, outside Python and realprof.
 *
 *   cprobe THREADS RATE_HZ DURATION_S HANDLER_US READER_MS READER_US PIN RUSAGE
 *
 * THREADS busy threads spin on the CPU while setitimer(ITIMER_PROF)
 * runs at RATE_HZ for DURATION_S seconds. The SIGPROF handler saves errno, stamps
 * (CLOCK_MONOTONIC ns, gettid) into a preallocated array at an atomic index (no lock,
 * no allocation), then busy-waits HANDLER_US microseconds (0: none) to mimic a costlier
 * handler. With READER_MS > 0 an extra thread wakes every READER_MS ms and burns
 * READER_US µs of CPU, like realprof's reader. PIN = 1 pins busy thread i to CPU i mod n.
 * RUSAGE = 1 makes the busy loop call getrusage(RUSAGE_THREAD) after every block of
 * work, as realprof's spin_native does (a system call every few µs); 0: no system call.
 * The main thread blocks SIGPROF, so only the busy threads and the reader take samples.
 *
 * Prints one JSON object: the samples, each thread's CPU time (CLOCK_THREAD_CPUTIME_ID),
 * the process CPU time (CLOCK_PROCESS_CPUTIME_ID), and every sample's time and thread
 * (index into "tids"; -1 for a thread the probe did not start). lab/cprobe.py builds,
 * runs and reads it.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define MAX_THREADS 64
#define MAX_SAMPLES (1 << 20)

static int64_t sample_ns[MAX_SAMPLES];
static int32_t sample_tid[MAX_SAMPLES];
static atomic_long sample_count;
static int64_t handler_busy_ns;
static atomic_int stop;
static int64_t thread_cpu_ns[MAX_THREADS + 1];
static pid_t tids[MAX_THREADS + 1];
static int threads_n, pin, reader_ms, reader_us, rusage_calls;

static int64_t now_ns(clockid_t clock)
{
	struct timespec ts;
	clock_gettime(clock, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void on_sigprof(int sig)
{
	(void)sig;
	int saved = errno;
	int64_t t = now_ns(CLOCK_MONOTONIC);
	long i = atomic_fetch_add_explicit(&sample_count, 1, memory_order_relaxed);
	if (i < MAX_SAMPLES) {
		sample_ns[i] = t;
		sample_tid[i] = (int32_t)syscall(SYS_gettid);
	}
	if (handler_busy_ns > 0)
		while (now_ns(CLOCK_MONOTONIC) - t < handler_busy_ns)
			;
	errno = saved;
}

static void *busy(void *arg)
{
	long index = (long)arg;
	tids[index] = (pid_t)syscall(SYS_gettid);
	if (pin) {
		long cpus = sysconf(_SC_NPROCESSORS_ONLN);
		cpu_set_t set;
		CPU_ZERO(&set);
		CPU_SET(index % cpus, &set);
		sched_setaffinity(0, sizeof set, &set);
	}
	volatile uint64_t x = 1;
	struct rusage ru;
	while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
		for (int k = 0; k < 10000; k++)
			x = x * 6364136223846793005ULL + 1442695040888963407ULL;
		if (rusage_calls)
			getrusage(RUSAGE_THREAD, &ru);
	}
	thread_cpu_ns[index] = now_ns(CLOCK_THREAD_CPUTIME_ID);
	return NULL;
}

static void *reader(void *arg)
{
	(void)arg;
	tids[threads_n] = (pid_t)syscall(SYS_gettid);
	struct timespec period = {reader_ms / 1000, (long)(reader_ms % 1000) * 1000000};
	while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
		nanosleep(&period, NULL);
		int64_t until = now_ns(CLOCK_MONOTONIC) + (int64_t)reader_us * 1000;
		while (now_ns(CLOCK_MONOTONIC) < until)
			;
	}
	thread_cpu_ns[threads_n] = now_ns(CLOCK_THREAD_CPUTIME_ID);
	return NULL;
}

int main(int argc, char **argv)
{
	if (argc != 9) {
		fprintf(stderr, "usage: cprobe THREADS RATE_HZ DURATION_S HANDLER_US READER_MS "
				"READER_US PIN RUSAGE\n");
		return 2;
	}
	threads_n = atoi(argv[1]);
	double rate_hz = atof(argv[2]), duration_s = atof(argv[3]);
	handler_busy_ns = (int64_t)(atof(argv[4]) * 1000);
	reader_ms = atoi(argv[5]);
	reader_us = atoi(argv[6]);
	pin = atoi(argv[7]);
	rusage_calls = atoi(argv[8]);
	if (threads_n < 1 || threads_n > MAX_THREADS || rate_hz <= 0 || duration_s <= 0) {
		fprintf(stderr, "cprobe: THREADS in 1..%d, RATE_HZ and DURATION_S > 0\n",
			MAX_THREADS);
		return 2;
	}
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_sigprof;
	sa.sa_flags = SA_RESTART;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGPROF, &sa, NULL);

	pthread_t th[MAX_THREADS + 1];
	for (long i = 0; i < threads_n; i++)
		pthread_create(&th[i], NULL, busy, (void *)i);
	if (reader_ms > 0)
		pthread_create(&th[threads_n], NULL, reader, NULL);
	/* Threads inherit the mask at creation: block SIGPROF on main only afterwards. */
	sigset_t block;
	sigemptyset(&block);
	sigaddset(&block, SIGPROF);
	pthread_sigmask(SIG_BLOCK, &block, NULL);

	/* Go's interval: whole microseconds (setProcessCPUProfilerTimer). */
	long interval_us = (long)(1000000 / rate_hz);
	struct itimerval it = {{interval_us / 1000000, interval_us % 1000000},
			       {interval_us / 1000000, interval_us % 1000000}};
	int64_t cpu0 = now_ns(CLOCK_PROCESS_CPUTIME_ID);
	int64_t start = now_ns(CLOCK_MONOTONIC);
	setitimer(ITIMER_PROF, &it, NULL);
	struct timespec d = {(time_t)duration_s, (long)((duration_s - (time_t)duration_s) * 1e9)};
	while (nanosleep(&d, &d) == -1 && errno == EINTR)
		;
	struct itimerval off = {{0, 0}, {0, 0}};
	setitimer(ITIMER_PROF, &off, NULL);
	int64_t cpu1 = now_ns(CLOCK_PROCESS_CPUTIME_ID);
	int64_t end = now_ns(CLOCK_MONOTONIC);
	atomic_store(&stop, 1);
	for (int i = 0; i < threads_n + (reader_ms > 0); i++)
		pthread_join(th[i], NULL);

	long n = atomic_load(&sample_count);
	if (n > MAX_SAMPLES)
		n = MAX_SAMPLES;
	int known = threads_n + (reader_ms > 0);
	printf("{\"threads\": %d, \"rate_hz\": %g, \"interval_us\": %ld, \"start_ns\": %lld, "
	       "\"end_ns\": %lld, \"process_cpu_ns\": %lld, \"samples\": %ld, \"reader\": %s, "
	       "\"thread_cpu_ns\": [",
	       threads_n, rate_hz, interval_us, (long long)start, (long long)end,
	       (long long)(cpu1 - cpu0), n, reader_ms > 0 ? "true" : "false");
	for (int i = 0; i < known; i++)
		printf("%s%lld", i ? ", " : "", (long long)thread_cpu_ns[i]);
	printf("], \"tids\": [");
	for (int i = 0; i < known; i++)
		printf("%s%d", i ? ", " : "", tids[i]);
	printf("], \"times_ns\": [");
	for (long i = 0; i < n; i++)
		printf("%s%lld", i ? ", " : "", (long long)sample_ns[i]);
	printf("], \"thread_index\": [");
	for (long i = 0; i < n; i++) {
		int who = -1;
		for (int k = 0; k < known; k++)
			if (tids[k] == sample_tid[i])
				who = k;
		printf("%s%d", i ? ", " : "", who);
	}
	printf("]}\n");
	return 0;
}
