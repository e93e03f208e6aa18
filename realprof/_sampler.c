/*
 * realprof._sampler: a SIGPROF sampler for CPython 3.11-3.13, built like Go's.
 *
 * Mechanism (one line, as in Go's runtime):
 *   CPU timer -> SIGPROF on the thread that burned the CPU -> C handler captures
 *   that thread's own Python stack as (code pointer, instruction offset) pairs ->
 *   lock-free multi-producer ring buffer -> reader (holds the GIL) resolves the
 *   pointers to names and lines -> sim.profile.Profile (done in sampler.py).
 *
 * Timers (see linux-sigprof.md §2, §6 and Go's src/runtime/os_linux.go):
 *   - "process": setitimer(ITIMER_PROF), one per process, interval 1e6/hz us
 *     (integer division, like Go's setProcessCPUProfilerTimer). si_code SI_KERNEL.
 *   - "per-thread": timer_create(CLOCK_THREAD_CPUTIME_ID) with SIGEV_THREAD_ID for
 *     every registered Python thread, period 1e9/hz ns, first expiry uniform in
 *     [1, period] ns (Go's setThreadCPUProfiler, golang/go #40435). si_code SI_TIMER.
 *     For a thread other than the caller the clock is that thread's CPU clock,
 *     MAKE_THREAD_CPUCLOCK(tid, CPUCLOCK_SCHED) (kernel
 *     include/linux/posix-timers_types.h; glibc's pthread_getcpuclockid computes the
 *     same id), which is what CLOCK_THREAD_CPUTIME_ID means on that thread.
 *   - "both": the two together; duplicates are filtered like Go's validSIGPROF
 *     (src/runtime/os_linux.go): on a thread that has its own timer, SI_KERNEL is
 *     discarded (counted) and SI_TIMER accepted; on a thread without one, SI_KERNEL
 *     is accepted and SI_TIMER discarded. Other si_codes (kill/tgkill) are accepted.
 *     Our SI_TIMER check is stricter than Go's: si_value must carry the token of the
 *     thread's *current* timer, so a straggler from a deleted timer is discarded.
 *
 * Which threads, and how their thread state is found:
 *   A fixed open-addressing table maps kernel tid -> (PyThreadState*, timer).
 *   The handler finds its own entry with gettid(): no thread-local storage is read
 *   in the handler at all (our module is dlopen'ed, and a first access to dynamic
 *   TLS may call malloc inside __tls_get_addr). Entries are added under the GIL:
 *     - start() registers the calling thread and scans the interpreter's thread
 *       states (PyInterpreterState_ThreadHead/PyThreadState_Next, native_thread_id);
 *     - sampler.py wraps threading.Thread._bootstrap_inner so each new Python
 *       thread registers itself before run() (prompt, so short threads get a
 *       timer and a chance to be sampled, #40435);
 *     - the reader calls scan_threads() every period as a backstop for threads
 *       created by C code (PyGILState_Ensure).
 *   A thread's exit is caught by a sentinel object stored in its thread-state dict:
 *   PyThreadState_Clear() clears tstate->dict before the thread state is freed, so
 *   the sentinel's dealloc unregisters the entry and deletes the timer (no leaked
 *   timers, no signals aimed at a dead tid) while the PyThreadState is still valid.
 *
 * The handler (SA_SIGINFO|SA_RESTART, full sa_mask so it never nests, like Go's
 * setsig) is async-signal-safe: no malloc, no locks, no refcounts, no Python API,
 * errno saved and restored. It reads only the interrupted thread's own frame chain,
 * which cannot change while the handler runs on that thread:
 *   3.11  tstate->cframe->current_frame, f_code, prev_instr
 *   3.12  same, f_code, prev_instr; skip owner == FRAME_OWNED_BY_CSTACK (shims)
 *   3.13  tstate->current_frame, f_executable (type-checked, may be None), instr_ptr
 * (Include/internal/pycore_frame.h of each version; compiled against each version's
 * own headers, never hard-coded offsets). Incomplete frames (before RESUME, see
 * _PyFrame_IsIncomplete) are skipped. Depth is cut at max_depth keeping the leaf
 * end, like Go's 64-frame cut. "Running Python" means the thread's state is
 * attached (it holds the GIL):
 *   3.11  _PyRuntime.gilstate.tstate_current == tstate (_PyThreadState_UncheckedGet)
 *   3.12  tstate->_status.active (cleared when the thread detaches to release the GIL)
 *   3.13  tstate->state == _Py_THREAD_ATTACHED
 * otherwise the sample is "native": the frame chain then still shows the Python
 * caller of the GIL-free C code, and that is what is recorded, flagged native. A
 * thread waiting in take_gil is detached as well, so the few samples taken during
 * GIL handoffs are flagged native too (their leaf is the Python line that waits).
 *
 * Ring buffer (after Go's src/runtime/profbuf.go, but multi-producer, since on
 * several CPUs several handlers may run at once and we have no signalLock):
 *   positions w (reserved) and r (consumed) grow forever; word i lives at
 *   buf[i % cap]. A writer reserves len words with a CAS on w, provided
 *   w + len - r <= cap, writes words 1..len-1, then publishes word 0, the header
 *   (position << 16 | len), with a release store. The single reader takes records
 *   in order from r while the header's position matches, zeroes what it consumed
 *   and only then moves r forward (release), so a slot's old contents can never
 *   look committed. If the space is short the sample is dropped and counted
 *   (lost_overflow), never silently. Record = 4 header words + 2 words per frame:
 *     [hdr, tid | depth << 32 | flags << 48, CLOCK_MONOTONIC ns,
 *      (uint32)si_code | si_overrun << 32, (code*, offset in code units) ...]
 *   Counters are atomics. Conservation, checked by the tests:
 *     handler_entries == recorded + lost_overflow + discarded,
 *     recorded == reader_records (counted by the reader) == samples in the profile.
 *
 * Code-object lifetime: a record holds raw PyCodeObject pointers. A code object in
 * the interrupted thread's frame is alive while the handler runs (the frame holds a
 * strong reference), but it may die before the reader drains the record, and its
 * address may be reused. While profiling, PyCode_Type.tp_dealloc is wrapped (as
 * vmprof does in src/_vmprof.c): before any code object is freed, every record
 * reserved so far is moved from the ring into a C staging area, taking a strong
 * reference to each live code object and copying name/file/lines of the dying one.
 * Hence no record in the ring can ever point at freed memory or at a reused address.
 * That step does only Py_INCREF and PyMem_Raw*: it cannot run Python code, trigger
 * the GC, or re-enter itself. 3.12+ code watchers (PyCode_AddWatcher) could do the
 * same job; one mechanism for all three versions is simpler to test. A pointer that
 * still fails the type check is labelled "[unknown code]" and counted.
 *
 * fork (linux-sigprof.md, cpython-sampling.md §5; gperftools issue 278): a
 * pthread_atfork prepare handler disarms every timer, the parent re-arms them
 * (fresh random phase), the child, which inherits no timers, resets all state.
 *
 * Stop: profiling off (late signals are counted apart and otherwise ignored), all
 * timers deleted, wait until no handler is in flight, drain. The handler stays
 * installed, inactive: SIG_DFL would let a late SIGPROF kill the process (Go keeps
 * its handler for the same reason, golang/go #19320).
 *
 * A frame chain caught mid-update is never read on trust: see "Trusting the frame
 * chain" below (checked frame pointers, an anchor, a SIGSEGV/SIGBUS guard).
 *
 * Left out: subinterpreters (only the main interpreter's threads are registered);
 * 3.14+ (tagged _PyStackRef frames) and < 3.11; native C frames (py-spy --native);
 * perf_event timers; rates above CONFIG_HZ (one signal per tick per thread).
 *
 * Sources: Go src/runtime/{os_linux.go,signal_unix.go,cpuprof.go,profbuf.go,proc.go};
 * Linux kernel/time/{posix-cpu-timers.c,posix-timers.c,itimer.c}, kernel/signal.c;
 * CPython Include/internal/pycore_frame.h, Include/cpython/pystate.h,
 * Python/pystate.c, Objects/codeobject.c (PyCode_Addr2Line), Modules/signalmodule.c
 * (PyErr_SetInterruptEx); vmprof-python src/_vmprof.c; gperftools
 * src/profile-handler.cc.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#if PY_VERSION_HEX < 0x030B0000 || PY_VERSION_HEX >= 0x030E0000
#  error "realprof._sampler supports CPython 3.11-3.13 only (frame layouts differ)"
#endif
#ifdef Py_GIL_DISABLED
#  error "realprof._sampler needs the GIL (free-threaded builds are not supported)"
#endif

#ifndef Py_BUILD_CORE
#  define Py_BUILD_CORE 1
#endif
#include "internal/pycore_frame.h"

#include <errno.h>
#include <stddef.h>
#include <sys/resource.h>
#include <setjmp.h>
#include <fcntl.h>
#include <linux/perf_event.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <stddef.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#ifndef sigev_notify_thread_id
#  define sigev_notify_thread_id _sigev_un._tid
#endif
#ifndef SIGEV_THREAD_ID
#  define SIGEV_THREAD_ID 4
#endif

#define PY313 (PY_VERSION_HEX >= 0x030D0000)
#define PY312 (PY_VERSION_HEX >= 0x030C0000)

/* ---- constants ---------------------------------------------------------------- */

#define HDR_WORDS 4
#define MAX_DEPTH_CAP 1024          /* keeps the record length below 1 << 16 */
#define SEQ_MASK ((UINT64_C(1) << 48) - 1)
#define TABLE_SIZE 4096             /* power of two */
#define TID_EMPTY 0
#define TID_TOMB (-1)

enum { MODE_OFF = 0, MODE_SAMPLE = 1, MODE_PYCOUNT = 2 };
enum { TIMER_PROCESS = 1, TIMER_THREAD = 2, TIMER_PERF = 4 };

/* record flags */
#define F_PYTHON 1      /* thread state attached: running bytecode, holds the GIL */
#define F_NATIVE 2      /* thread state detached: GIL-free native code */
#define F_NO_TSTATE 4   /* thread not registered: no Python stack to read */
#define F_TRUNCATED 8   /* stack cut at max_depth (leaf end kept) */
#define F_OWN_TIMER 16  /* the signal came from this thread's own timer */
#define F_UNTRUSTED 32  /* the frame chain could not be trusted: no stack recorded */

#define LOAD(p) __atomic_load_n((p), __ATOMIC_ACQUIRE)
#define STORE(p, v) __atomic_store_n((p), (v), __ATOMIC_RELEASE)
#define INC(p, v) ((void)__atomic_fetch_add((p), (v), __ATOMIC_RELAXED))

/* ---- state ------------------------------------------------------------------- */

typedef struct {
    int tid;                 /* TID_EMPTY, TID_TOMB or a live kernel tid; published last */
    int has_timer;           /* 1 while `timer` (or `perf_fd`) exists for this thread */
    int perf_fd;             /* TIMER_PERF: this thread's task-clock event */
    int token;               /* sigev_value of the current timer */
    int profiled;            /* counts toward cpu and gets a per-thread timer */
    PyThreadState *tstate;
    timer_t timer;
    uint32_t gen;
    long long cpu_start_ns;
    int walk_tid;            /* this thread's tid while its handler walks (fault guard) */
    sigjmp_buf *walk_jb;     /* where the fault guard jumps back to */
} thread_entry;

typedef struct {
    uint64_t handler_entries, recorded, lost_overflow, discarded;
    uint64_t discarded_duplicate, discarded_stale_timer;
    uint64_t timer_overruns, unknown_frames, late_signals;
    uint64_t reader_records, dead_code_frames, reader_stalls;
    uint64_t threads_registered, threads_unregistered, table_full;
    uint64_t timers_created, timers_deleted, timer_errors;
    uint64_t discarded_unprofiled, handler_ns;
    uint64_t stacks_untrusted, stack_walk_faults, guard_installs;
    uint64_t perf_overflows, perf_signals;
} counters_t;

static struct {
    int mode;                /* MODE_* (atomic) */
    int in_flight;           /* handlers past the mode check (atomic) */
    int timer_kinds;         /* TIMER_* bits */
    long long period_ns;
    int max_depth;
    int itimer_armed;
    int handler_installed;
    int dealloc_hooked;
    int fork_disarmed;
    int perf_exclude_kernel; /* 1 if the kernel allowed only user-mode sampling */
    uint32_t epoch;          /* bumped at every start(); stale sentinels are no-ops */
    uint64_t rng;
    uint64_t *ring;
    uint64_t cap;
    uint64_t w;              /* reserved position (atomic, CAS) */
    uint64_t r;              /* consumed position (atomic, reader only writes) */
    long long cpu_done_ns;   /* CPU of profiled threads already unregistered */
    PyObject *dying_code;    /* the code object freed last, with its thread and stack */
    PyThreadState *dying_tstate;
    void *dying_top;
    counters_t c;
} g;

static thread_entry table[TABLE_SIZE];

/* staging area between the ring and Python objects (GIL held, see the header) */
enum { SF_UNKNOWN = 0, SF_LIVE = 1, SF_DEAD = 2 };
typedef struct {
    PyObject *code;          /* SF_LIVE: strong ref */
    PyObject *name, *file;   /* SF_DEAD: strong refs copied from the dying code */
    int firstline, line;
    int32_t off;
    int kind;
} stg_frame;
typedef struct {
    int tid, flags, si_code, overrun, depth;
    long long t_ns;
    size_t first;
} stg_rec;
static struct {
    stg_rec *recs;
    size_t nrec, caprec;
    stg_frame *frames;
    size_t nframes, capframes;
} stg;

static destructor orig_code_dealloc;
static PyObject *sentinel_key;

/* ---- small helpers ----------------------------------------------------------- */

static inline int
gettid_(void)
{
    return (int)syscall(SYS_gettid);
}

static inline clockid_t
thread_clock(int tid)
{
    /* MAKE_THREAD_CPUCLOCK(tid, CPUCLOCK_SCHED): (~tid << 3) | PERTHREAD(4) | SCHED(2) */
    return (clockid_t)((~(unsigned int)tid) << 3) | 6;
}

static long long
clock_ns(clockid_t clk)
{
    struct timespec ts;
    if (clock_gettime(clk, &ts) != 0) {
        return -1;
    }
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static long long
thread_cpu_of(int tid)
{
    if (tid == gettid_()) {
        return clock_ns(CLOCK_THREAD_CPUTIME_ID);
    }
    return clock_ns(thread_clock(tid));
}

static uint64_t
rng_next(void)
{
    /* xorshift64*: only called under the GIL (registration, fork parent) */
    uint64_t x = g.rng ? g.rng : UINT64_C(0x9E3779B97F4A7C15);
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    g.rng = x;
    return x * UINT64_C(0x2545F4914F6CDD1D);
}

static inline unsigned
tid_hash(int tid)
{
    return ((unsigned)tid * 2654435761u) & (TABLE_SIZE - 1);
}

/* Lock-free lookup; safe in the handler. Writers publish `tid` last. */
static thread_entry *
table_find(int tid)
{
    unsigned h = tid_hash(tid);
    for (unsigned i = 0; i < TABLE_SIZE; i++) {
        thread_entry *e = &table[(h + i) & (TABLE_SIZE - 1)];
        int t = LOAD(&e->tid);
        if (t == tid) {
            return e;
        }
        if (t == TID_EMPTY) {
            return NULL;
        }
    }
    return NULL;
}

/* ---- timers ------------------------------------------------------------------ */

static struct itimerspec
thread_timer_spec(void)
{
    struct itimerspec its;
    long long first = 1 + (long long)(rng_next() % (uint64_t)g.period_ns);
    its.it_interval.tv_sec = g.period_ns / 1000000000LL;
    its.it_interval.tv_nsec = g.period_ns % 1000000000LL;
    its.it_value.tv_sec = first / 1000000000LL;
    its.it_value.tv_nsec = first % 1000000000LL;
    return its;
}

/* GIL held. Creates and arms e's per-thread CPU timer. */
static int
thread_timer_create(thread_entry *e, unsigned slot)
{
    struct sigevent sev;
    memset(&sev, 0, sizeof(sev));
    sev.sigev_notify = SIGEV_THREAD_ID;
    sev.sigev_signo = SIGPROF;
    sev.sigev_notify_thread_id = e->tid;
    int token = (int)((slot & 0xFFF) | ((e->gen & 0x7FFFF) << 12));
    sev.sigev_value.sival_int = token;
    clockid_t clk = (e->tid == gettid_()) ? CLOCK_THREAD_CPUTIME_ID : thread_clock(e->tid);
    timer_t t;
    if (timer_create(clk, &sev, &t) != 0) {
        INC(&g.c.timer_errors, 1);
        return -1;
    }
    e->timer = t;
    e->token = token;
    /* Published before arming: the first signal must find has_timer set. */
    STORE(&e->has_timer, 1);
    INC(&g.c.timers_created, 1);
    struct itimerspec its = thread_timer_spec();
    if (timer_settime(t, 0, &its, NULL) != 0) {
        INC(&g.c.timer_errors, 1);
    }
    return 0;
}

/*
 * TIMER_PERF: a software task-clock perf event on thread `tid` (perf_event_open(2);
 * kernel/events/core.c, task_clock_event_* and perf_swevent_hrtimer). The event counts
 * the thread's CPU time in ns and an hrtimer, not the tick, ends each period, so it can
 * sample above CONFIG_HZ. Its overflow is announced like I/O readiness (fs/fcntl.c,
 * send_sigio_to_task): O_ASYNC, F_SETSIG = SIGPROF (si_code POLL_IN, si_fd = the event)
 * and F_SETOWN_EX with F_OWNER_TID, so the signal goes to that thread alone. The event
 * stays enabled: the kernel restarts its hrtimer at each overflow, so nothing has to be
 * re-armed from the handler (async-profiler instead re-arms with
 * PERF_EVENT_IOC_REFRESH there, trading a syscall per sample for backpressure). An
 * overflow while SIGPROF is still pending on the thread is lost in legacy_queue(); the
 * count read at close gives the overflows, so those losses are counted too.
 * Returns the fd, or -errno.
 */
static int
perf_open(int tid, long long period_ns, int exclude_kernel)
{
    struct perf_event_attr attr;
    memset(&attr, 0, sizeof(attr));
    attr.size = sizeof(attr);
    attr.type = PERF_TYPE_SOFTWARE;
    attr.config = PERF_COUNT_SW_TASK_CLOCK;
    attr.sample_period = (uint64_t)period_ns;
    attr.disabled = 1;
    attr.exclude_kernel = exclude_kernel ? 1 : 0;
    attr.exclude_hv = 1;
    long fd = syscall(SYS_perf_event_open, &attr, (long)tid, -1L, -1L,
                      (unsigned long)PERF_FLAG_FD_CLOEXEC);
    if (fd < 0) {
        return -errno;
    }
    struct f_owner_ex owner = {F_OWNER_TID, tid};
    if (fcntl((int)fd, F_SETSIG, SIGPROF) != 0 || fcntl((int)fd, F_SETOWN_EX, &owner) != 0 ||
        fcntl((int)fd, F_SETFL, O_ASYNC | O_NONBLOCK) != 0) {
        int err = errno;
        close((int)fd);
        return -err;
    }
    return (int)fd;
}

/* GIL held. Opens and enables e's perf event. */
static int
thread_perf_create(thread_entry *e)
{
    int fd = perf_open(e->tid, g.period_ns, g.perf_exclude_kernel);
    if (fd == -EACCES && !g.perf_exclude_kernel) {
        /* perf_event_paranoid >= 2 without CAP_PERFMON: user-mode sampling only */
        g.perf_exclude_kernel = 1;
        fd = perf_open(e->tid, g.period_ns, 1);
    }
    if (fd < 0) {
        INC(&g.c.timer_errors, 1);
        return -1;
    }
    e->perf_fd = fd;
    e->token = fd;
    STORE(&e->has_timer, 1);
    INC(&g.c.timers_created, 1);
    if (ioctl(fd, PERF_EVENT_IOC_ENABLE, 0) != 0) {
        INC(&g.c.timer_errors, 1);
    }
    return 0;
}

static void
thread_timer_delete(thread_entry *e)
{
    if (LOAD(&e->has_timer)) {
        STORE(&e->has_timer, 0);
        if (g.timer_kinds & TIMER_PERF) {
            uint64_t count = 0;
            ioctl(e->perf_fd, PERF_EVENT_IOC_DISABLE, 0);
            if (read(e->perf_fd, &count, sizeof(count)) == (ssize_t)sizeof(count)
                && g.period_ns > 0) {
                INC(&g.c.perf_overflows, count / (uint64_t)g.period_ns);
            }
            close(e->perf_fd);
            e->perf_fd = -1;
        }
        else {
            timer_delete(e->timer);
        }
        INC(&g.c.timers_deleted, 1);
    }
}

static int
itimer_set(long long period_ns)
{
    struct itimerval it;
    memset(&it, 0, sizeof(it));
    if (period_ns > 0) {
        /* Go: 1e6/hz microseconds, first expiry one interval, no random phase. */
        long long us = period_ns / 1000;
        if (us < 1) {
            us = 1;
        }
        it.it_interval.tv_sec = us / 1000000;
        it.it_interval.tv_usec = us % 1000000;
        it.it_value = it.it_interval;
    }
    return setitimer(ITIMER_PROF, &it, NULL);
}

/* ---- the signal handler ------------------------------------------------------ */

static inline int
tstate_attached(PyThreadState *ts)
{
#if PY313
    return ts->state == 1; /* _Py_THREAD_ATTACHED, Include/internal/pycore_pystate.h */
#elif PY312
    return ts->_status.active;
#else
    return _PyThreadState_UncheckedGet() == ts;
#endif
}

static inline _PyInterpreterFrame *
newest_frame(PyThreadState *ts)
{
#if PY313
    return ts->current_frame;
#else
    return ts->cframe ? ts->cframe->current_frame : NULL;
#endif
}

/*
 * Trusting the frame chain.
 *
 * The handler reads only the interrupted thread's own frames, which nothing else changes
 * while it runs, but the thread may have been stopped half-way through changing them:
 *  - 3.11 and 3.12 publish tstate->cframe (a struct on the C stack) a few instructions
 *    before they set its current_frame (the prologue of _PyEvalFrameDefault, at every
 *    entry from C), so for that moment the newest frame pointer is whatever the stack
 *    slot held before: often a frame popped long ago, sometimes any word at all;
 *  - a frame is popped (datastack_top lowered, its chunk maybe unmapped) a few
 *    instructions before current_frame moves on to its caller;
 *  - the compiler may order the stores that link a new frame unlike the source.
 * So no frame pointer is dereferenced on trust. Each is checked first:
 *  - a frame owned by the thread must lie below datastack_top in one of the thread's
 *    live data-stack chunks (the tstate->datastack_chunk list, Python/pystate.c):
 *    arithmetic only, and memory there is mapped and holds frames not yet popped;
 *  - a generator's frame lies inside its generator object, whose type must be a
 *    generator, coroutine or async generator, with a frame state not yet completed;
 *  - an entry frame on the C stack (3.12+) must run a code object (3.12's trampoline)
 *    or nothing (3.13);
 *  - anything else ends the walk.
 * And in 3.11 and 3.12 the newest segment must lead, through checked frames, to the
 * previous cframe's current_frame (the anchor): it was set before the newest C-level
 * eval began and cannot change until that eval returns. A walk that misses the anchor
 * began at a stale pointer: its stack is dropped and counted (stacks_untrusted).
 * The checks read generator objects and C-stack frames at addresses a stale pointer may
 * aim anywhere, so walks run under a SIGSEGV/SIGBUS guard (the technique vmprof uses):
 * a fault jumps back into the handler, which drops the stack and counts it
 * (stack_walk_faults); a fault anywhere else goes to the previous handler. A code
 * object freed while its frame is still current (_PyFrame_Clear runs before the pop)
 * is named by the dealloc hook in g.dying_* and recorded as unknown.
 */
#define HOPS_MAX 100000            /* frames a walk may hop through to reach its anchor */
#define MAX_CHUNKS 64

typedef struct {
    uintptr_t lo[MAX_CHUNKS], hi[MAX_CHUNKS];
    int n;
} stack_ranges;

static void
live_ranges(PyThreadState *ts, stack_ranges *r)
{
    r->n = 0;
    _PyStackChunk *c = ts->datastack_chunk;
    uintptr_t top = (uintptr_t)ts->datastack_top;
    for (int first = 1; c != NULL && r->n < MAX_CHUNKS; first = 0, c = c->previous) {
        uintptr_t lo = (uintptr_t)&c->data[0];
        uintptr_t end = (uintptr_t)c + c->size;
        /* older chunks keep their saved top (push_chunk); while a chunk is being pushed
           or popped datastack_top may point into another chunk: then this one is
           skipped, which only ever rejects a frame */
        uintptr_t hi = first ? top : (uintptr_t)&c->data[c->top];
        if (hi > lo && hi <= end) {
            r->lo[r->n] = lo;
            r->hi[r->n] = hi;
            r->n++;
        }
    }
}

static inline int
in_live_stack(const stack_ranges *r, uintptr_t p, size_t len)
{
    for (int i = 0; i < r->n; i++) {
        if (p >= r->lo[i] && p + len <= r->hi[i]) {
            return 1;
        }
    }
    return 0;
}

/* 1 if f may be read as one of this thread's frames (see above); may fault (guarded). */
static int
frame_trusted(const stack_ranges *r, _PyInterpreterFrame *f)
{
    uintptr_t p = (uintptr_t)f;
    if (p % sizeof(void *) != 0) {
        return 0;
    }
    if (in_live_stack(r, p, offsetof(_PyInterpreterFrame, localsplus))) {
        return f->owner == FRAME_OWNED_BY_THREAD;
    }
    int owner = f->owner;
    if (owner == FRAME_OWNED_BY_GENERATOR) {
        PyGenObject *gen = (PyGenObject *)(p - offsetof(PyGenObject, gi_iframe));
        PyTypeObject *t = Py_TYPE(gen);
        if (t != &PyGen_Type && t != &PyCoro_Type && t != &PyAsyncGen_Type) {
            return 0;
        }
        return gen->gi_frame_state < FRAME_COMPLETED;
    }
#if PY313
    if (owner == FRAME_OWNED_BY_CSTACK) {
        return f->f_executable == Py_None;
    }
#elif PY312
    if (owner == FRAME_OWNED_BY_CSTACK) {
        return f->f_code != NULL && Py_TYPE(f->f_code) == &PyCode_Type;
    }
#endif
    return 0;
}

/* The frame the newest segment must reach, or NULL when the chain's end is enough. */
static inline _PyInterpreterFrame *
walk_anchor(PyThreadState *ts)
{
#if PY313
    (void)ts;
    return NULL;
#else
    _PyCFrame *c = ts->cframe;
    return (c != NULL && c->previous != NULL) ? c->previous->current_frame : NULL;
#endif
}

/*
 * Walks ts's frame chain, leaf first. With out == NULL counts the frames that would be
 * written; otherwise writes at most `limit` (code, offset) pairs at ring positions
 * pos, pos+1, ... Returns the count, or -1 if the chain is not to be trusted. The chain
 * cannot change between the two passes: it belongs to the thread this handler
 * interrupted.
 */
static int
walk_frames(PyThreadState *ts, const stack_ranges *r, uint64_t *out, uint64_t pos,
            int limit, int *truncated)
{
    _PyInterpreterFrame *f = newest_frame(ts);
    _PyInterpreterFrame *anchor = walk_anchor(ts);
    PyObject *dying = LOAD(&g.dying_code);
    int dying_here = dying != NULL && LOAD(&g.dying_tstate) == ts
                     && LOAD(&g.dying_top) == (void *)ts->datastack_top;
    int anchored = 0;          /* a NULL anchor is reached at the chain's end */
    int n = 0;
    for (long hops = 0; f != NULL; hops++, f = f->previous) {
        if (f == anchor) {
            anchored = 1;
        }
        if (anchored && n >= limit && *truncated) {
            break;
        }
        if (hops >= HOPS_MAX || !frame_trusted(r, f)) {
            /* below the anchor a frame never fails; if one does, keep the leaf end */
            if (anchored) {
                *truncated = 1;
                break;
            }
            return -1;
        }
#if PY312
        if (f->owner == FRAME_OWNED_BY_CSTACK) {
            continue;
        }
#endif
#if PY313
        PyObject *exe = f->f_executable;
        _Py_CODEUNIT *ip = f->instr_ptr;
#else
        PyObject *exe = (PyObject *)f->f_code;
        _Py_CODEUNIT *ip = f->prev_instr;
#endif
        uint64_t code_word = 0;
        int64_t off = 0;
        if (dying_here && exe == dying) {
            /* freed by _PyFrame_Clear a moment ago: recorded as unknown */
        }
        else if (exe != NULL && Py_TYPE(exe) == &PyCode_Type) {
            PyCodeObject *co = (PyCodeObject *)exe;
            _Py_CODEUNIT *base = _PyCode_CODE(co);
            if (f->owner != FRAME_OWNED_BY_GENERATOR &&
                ip < base + co->_co_firsttraceable) {
                continue;   /* incomplete: not yet at RESUME */
            }
            code_word = (uint64_t)(uintptr_t)co;
            off = (int64_t)(ip - base);
        }
#if PY313
        else if (exe == Py_None) {
            continue;       /* 3.13 frames that run no code object */
        }
#endif
        if (n >= limit) {
            *truncated = 1;
            if (anchored) {
                break;
            }
            continue;
        }
        if (out != NULL) {
            if (code_word == 0) {
                INC(&g.c.unknown_frames, 1);
            }
            out[(pos + 2 * (uint64_t)n) % g.cap] = code_word;
            out[(pos + 2 * (uint64_t)n + 1) % g.cap] = (uint64_t)off;
        }
        n++;
    }
    if (f == NULL && anchor == NULL) {
        anchored = 1;
    }
    return anchored ? n : -1;
}

/* ---- the fault guard --------------------------------------------------------- */

static struct sigaction prev_segv, prev_bus;

static void
fault_guard(int sig, siginfo_t *si, void *uc)
{
    int tid = gettid_();
    for (unsigned i = 0; i < TABLE_SIZE; i++) {
        thread_entry *e = &table[i];
        if (LOAD(&e->walk_tid) == tid) {
            STORE(&e->walk_tid, 0);
            siglongjmp(*e->walk_jb, 1);
        }
    }
    /* Not a walk of ours: the program's own fault. */
    struct sigaction *prev = sig == SIGBUS ? &prev_bus : &prev_segv;
    if (prev->sa_flags & SA_SIGINFO) {
        prev->sa_sigaction(sig, si, uc);
        return;
    }
    if (prev->sa_handler != SIG_DFL && prev->sa_handler != SIG_IGN) {
        prev->sa_handler(sig);
        return;
    }
    /* Default action: restored, the faulting instruction runs again and dies as it
       would have without us (core dump included). */
    sigaction(sig, prev, NULL);
}

static int
guard_is_ours(int sig)
{
    struct sigaction cur;
    return sigaction(sig, NULL, &cur) == 0 && (cur.sa_flags & SA_SIGINFO)
           && cur.sa_sigaction == fault_guard;
}

/* GIL held. Puts the guard in front of whatever handles SIGSEGV/SIGBUS now; called at
   start() and by every drain, since faulthandler.enable() and friends replace it. */
static void
fault_guard_install(void)
{
    static const int sigs[2] = {SIGSEGV, SIGBUS};
    for (int k = 0; k < 2; k++) {
        if (guard_is_ours(sigs[k])) {
            continue;
        }
        struct sigaction sa, old;
        memset(&sa, 0, sizeof(sa));
        sa.sa_sigaction = fault_guard;
        /* NODEFER: a siglongjmp out of it leaves nothing blocked; ONSTACK: a stack
           overflow still reaches faulthandler on its alternate stack */
        sa.sa_flags = SA_SIGINFO | SA_NODEFER | SA_ONSTACK;
        sigemptyset(&sa.sa_mask);
        if (sigaction(sigs[k], NULL, &old) != 0) {
            continue;
        }
        /* the previous handler is saved before ours can run and call it */
        if (sigs[k] == SIGBUS) {
            prev_bus = old;
        }
        else {
            prev_segv = old;
        }
        if (sigaction(sigs[k], &sa, NULL) == 0) {
            INC(&g.c.guard_installs, 1);
        }
    }
}

static void
fault_guard_remove(void)
{
    if (guard_is_ours(SIGSEGV)) {
        sigaction(SIGSEGV, &prev_segv, NULL);
    }
    if (guard_is_ours(SIGBUS)) {
        sigaction(SIGBUS, &prev_bus, NULL);
    }
}

/* One guarded walk: the count, -1 (untrusted) or -2 (a fault, caught). */
static __attribute__((noinline)) int
guarded_walk(thread_entry *e, int tid, PyThreadState *ts, stack_ranges *r, int pass_one,
             uint64_t *out, uint64_t pos, int limit, int *truncated)
{
    sigjmp_buf jb;
    e->walk_jb = &jb;
    if (sigsetjmp(jb, 0) != 0) {
        return -2;
    }
    STORE(&e->walk_tid, tid);
    if (pass_one) {
        live_ranges(ts, r);
    }
    int n = walk_frames(ts, r, out, pos, limit, truncated);
    STORE(&e->walk_tid, 0);
    return n;
}

static void
sigprof_handler(int sig, siginfo_t *si, void *ucontext)
{
    (void)sig;
    (void)ucontext;
    int saved_errno = errno;
    /* The handler times itself (vDSO clock, async-signal-safe): calibration reads the
       mean as the model's handler cost. */
    long long entered_ns = clock_ns(CLOCK_MONOTONIC);
    __atomic_fetch_add(&g.in_flight, 1, __ATOMIC_SEQ_CST);
    int mode = __atomic_load_n(&g.mode, __ATOMIC_SEQ_CST);
    if (mode == MODE_OFF) {
        INC(&g.c.late_signals, 1);
        goto out;
    }
    INC(&g.c.handler_entries, 1);
    if (mode == MODE_PYCOUNT) {
        /* The naive port: count the delivery, let CPython run the Python handler
           later on the main thread (documented async-signal-safe, 3.10+). */
        PyErr_SetInterruptEx(SIGPROF);
        goto out;
    }

    int tid = gettid_();
    thread_entry *e = table_find(tid);
    int own_timer = e != NULL && LOAD(&e->has_timer);
    int flags = 0;
    if (si->si_code == POLL_IN || si->si_code == POLL_HUP) {
        /* a perf event's overflow: accepted only from this thread's current event */
        if (!own_timer || !(g.timer_kinds & TIMER_PERF) || si->si_fd != e->perf_fd) {
            INC(&g.c.discarded, 1);
            INC(&g.c.discarded_stale_timer, 1);
            goto out;
        }
        flags |= F_OWN_TIMER;
        INC(&g.c.perf_signals, 1);
    }
    /* validSIGPROF (Go, src/runtime/os_linux.go) */
    else if (si->si_code == SI_TIMER) {
        if (!own_timer || si->si_value.sival_int != e->token) {
            INC(&g.c.discarded, 1);
            INC(&g.c.discarded_stale_timer, 1);
            goto out;
        }
        flags |= F_OWN_TIMER;
        if (si->si_overrun > 0) {
            INC(&g.c.timer_overruns, (uint64_t)si->si_overrun);
        }
    }
    else if (si->si_code == SI_KERNEL && own_timer) {
        INC(&g.c.discarded, 1);
        INC(&g.c.discarded_duplicate, 1);
        goto out;
    }
    /* A thread registered as not profiled (the reader) drops what it receives, as Go's
       sigprof drops signals on an M whose profilehz is 0 (src/runtime/proc.go): the
       process timer may pick any thread, and the profiler's own thread is not the
       program. */
    if (e != NULL && !e->profiled) {
        INC(&g.c.discarded, 1);
        INC(&g.c.discarded_unprofiled, 1);
        goto out;
    }

    PyThreadState *ts = e != NULL ? e->tstate : NULL;
    int truncated = 0;
    int depth = 0;
    stack_ranges ranges;
    if (ts == NULL) {
        flags |= F_NO_TSTATE;
    }
    else {
        flags |= tstate_attached(ts) ? F_PYTHON : F_NATIVE;
        depth = guarded_walk(e, tid, ts, &ranges, 1, NULL, 0, g.max_depth, &truncated);
        if (depth < 0) {
            INC(depth == -2 ? &g.c.stack_walk_faults : &g.c.stacks_untrusted, 1);
            flags |= F_UNTRUSTED;
            depth = 0;
            truncated = 0;
        }
    }
    uint64_t len = HDR_WORDS + 2 * (uint64_t)depth;

    /* reserve */
    uint64_t w = __atomic_load_n(&g.w, __ATOMIC_RELAXED);
    for (;;) {
        uint64_t r = LOAD(&g.r);
        if (w + len - r > g.cap) {
            INC(&g.c.lost_overflow, 1);
            goto out;
        }
        if (__atomic_compare_exchange_n(&g.w, &w, w + len, 1,
                                        __ATOMIC_ACQ_REL, __ATOMIC_RELAXED)) {
            break;
        }
    }
    uint64_t *buf = g.ring;
    uint64_t cap = g.cap;
    if (depth > 0) {
        truncated = 0;
        int n2 = guarded_walk(e, tid, ts, &ranges, 0, buf, w + HDR_WORDS, depth, &truncated);
        if (n2 != depth) {
            /* Cannot happen (same chain, same thread, nothing ran between); if it does,
               the reserved record still gets a well-formed, unknown stack. */
            INC(&g.c.stack_walk_faults, 1);
            for (int i = 0; i < depth; i++) {
                buf[(w + HDR_WORDS + 2 * (uint64_t)i) % cap] = 0;
                buf[(w + HDR_WORDS + 2 * (uint64_t)i + 1) % cap] = 0;
            }
            INC(&g.c.unknown_frames, (uint64_t)depth);
        }
    }
    if (truncated) {
        flags |= F_TRUNCATED;
    }
    buf[(w + 1) % cap] = (uint64_t)(uint32_t)tid | ((uint64_t)(uint32_t)depth << 32)
                         | ((uint64_t)(uint32_t)flags << 48);
    buf[(w + 2) % cap] = (uint64_t)clock_ns(CLOCK_MONOTONIC);
    int overrun = si->si_code == SI_TIMER ? si->si_overrun : 0;
    buf[(w + 3) % cap] = (uint64_t)(uint32_t)si->si_code
                         | ((uint64_t)(uint32_t)overrun << 32);
    /* publish: the reader takes the record once the header names its position */
    STORE(&buf[w % cap], ((w & SEQ_MASK) << 16) | len);
    INC(&g.c.recorded, 1);
out:
    if (mode != MODE_OFF) {
        INC(&g.c.handler_ns, (uint64_t)(clock_ns(CLOCK_MONOTONIC) - entered_ns));
    }
    __atomic_fetch_sub(&g.in_flight, 1, __ATOMIC_SEQ_CST);
    errno = saved_errno;
}

/* ---- reader side: ring -> staging (GIL held) --------------------------------- */

static int
stg_reserve(size_t more_frames)
{
    if (stg.nrec + 1 > stg.caprec) {
        size_t n = stg.caprec ? stg.caprec * 2 : 1024;
        stg_rec *p = PyMem_RawRealloc(stg.recs, n * sizeof(stg_rec));
        if (p == NULL) {
            return -1;
        }
        stg.recs = p;
        stg.caprec = n;
    }
    if (stg.nframes + more_frames > stg.capframes) {
        size_t n = stg.capframes ? stg.capframes : 4096;
        while (n < stg.nframes + more_frames) {
            n *= 2;
        }
        stg_frame *p = PyMem_RawRealloc(stg.frames, n * sizeof(stg_frame));
        if (p == NULL) {
            return -1;
        }
        stg.frames = p;
        stg.capframes = n;
    }
    return 0;
}

/*
 * Moves every reserved record from the ring into staging. `dying` is a code object
 * inside its tp_dealloc (refcount 0, fields intact) or NULL. Only Py_INCREF and
 * PyMem_Raw*: no Python code can run, so this cannot re-enter itself.
 * Waits for records reserved but not yet published: their writers are signal
 * handlers on other threads, which take no lock and so always finish.
 */
static void
ring_collect(PyCodeObject *dying)
{
    if (g.ring == NULL) {
        return;
    }
    uint64_t *buf = g.ring;
    uint64_t cap = g.cap;
    uint64_t p = g.r;
    uint64_t wend = LOAD(&g.w);
    long long spin_deadline = -1;
    while (p < wend) {
        uint64_t h = LOAD(&buf[p % cap]);
        uint64_t len = h & 0xFFFF;
        /* Published iff the header names this position and a sane length: at p == 0
           an all-zero slot would otherwise pass the position test. */
        if ((h >> 16) != (p & SEQ_MASK) || len < HDR_WORDS || len > wend - p) {
            /* reserved, not yet published */
            long long now = clock_ns(CLOCK_MONOTONIC);
            if (spin_deadline < 0) {
                spin_deadline = now + 1000000000LL;
            }
            else if (now > spin_deadline) {
                INC(&g.c.reader_stalls, 1);
                break;
            }
            sched_yield();
            continue;
        }
        spin_deadline = -1;
        uint64_t w1 = buf[(p + 1) % cap];
        int depth = (int)((len - HDR_WORDS) / 2); /* == the depth field, by construction */
        if (stg_reserve((size_t)depth) < 0) {
            /* out of memory: drop the record, but keep the funnel honest */
            INC(&g.c.reader_stalls, 1);
            break;
        }
        stg_rec *rec = &stg.recs[stg.nrec];
        rec->tid = (int)(uint32_t)w1;
        rec->depth = depth;
        rec->flags = (int)((w1 >> 48) & 0xFFFF);
        rec->t_ns = (long long)buf[(p + 2) % cap];
        uint64_t w3 = buf[(p + 3) % cap];
        rec->si_code = (int)(uint32_t)w3;
        rec->overrun = (int)(uint32_t)(w3 >> 32);
        rec->first = stg.nframes;
        for (int i = 0; i < depth; i++) {
            uint64_t cw = buf[(p + HDR_WORDS + 2 * (uint64_t)i) % cap];
            int64_t off = (int64_t)buf[(p + HDR_WORDS + 2 * (uint64_t)i + 1) % cap];
            stg_frame *sf = &stg.frames[stg.nframes++];
            memset(sf, 0, sizeof(*sf));
            sf->off = (int32_t)off;
            PyObject *co = (PyObject *)(uintptr_t)cw;
            if (co == NULL) {
                sf->kind = SF_UNKNOWN; /* already counted by the handler */
            }
            else if (co == (PyObject *)dying) {
                PyCodeObject *d = dying;
                sf->kind = SF_DEAD;
                sf->name = Py_NewRef(d->co_qualname);
                sf->file = Py_NewRef(d->co_filename);
                sf->firstline = d->co_firstlineno;
                sf->line = PyCode_Addr2Line(d, (int)(off * (int64_t)sizeof(_Py_CODEUNIT)));
                INC(&g.c.dead_code_frames, 1);
            }
            else if (Py_TYPE(co) == &PyCode_Type) {
                sf->kind = SF_LIVE;
                sf->code = Py_NewRef(co);
            }
            else {
                sf->kind = SF_UNKNOWN;
                INC(&g.c.unknown_frames, 1);
            }
        }
        stg.nrec++;
        INC(&g.c.reader_records, 1);
        for (uint64_t i = 0; i < len; i++) {
            buf[(p + i) % cap] = 0;
        }
        p += len;
    }
    STORE(&g.r, p);
}

static void
hooked_code_dealloc(PyObject *op)
{
    /* Before the memory goes: take every record that may name this code object. */
    /* A handler on this thread may yet see op in the frame being cleared: it checks
       this triple (see "Trusting the frame chain"). */
    PyThreadState *ts = _PyThreadState_UncheckedGet();
    STORE(&g.dying_tstate, ts);
    STORE(&g.dying_top, ts != NULL ? (void *)ts->datastack_top : NULL);
    STORE(&g.dying_code, op);
    if (g.ring != NULL && LOAD(&g.r) != LOAD(&g.w)) {
        ring_collect((PyCodeObject *)op);
    }
    orig_code_dealloc(op);
}

/* ---- thread registration ----------------------------------------------------- */

typedef struct {
    PyObject_HEAD
    uint32_t epoch;
    uint32_t gen;
    unsigned slot;
} SentinelObject;

static void unregister_slot(unsigned slot, uint32_t gen, uint32_t epoch);

static void
sentinel_dealloc(PyObject *self)
{
    SentinelObject *s = (SentinelObject *)self;
    unregister_slot(s->slot, s->gen, s->epoch);
    PyObject_Free(self);
}

static PyTypeObject SentinelType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "realprof._sampler.ThreadSentinel",
    .tp_basicsize = sizeof(SentinelObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_dealloc = sentinel_dealloc,
    .tp_doc = "Unregisters a thread from the sampler when its thread state is cleared.",
};

static void
unregister_slot(unsigned slot, uint32_t gen, uint32_t epoch)
{
    if (slot >= TABLE_SIZE || epoch != g.epoch) {
        return;
    }
    thread_entry *e = &table[slot];
    int tid = LOAD(&e->tid);
    if (tid <= 0 || e->gen != gen) {
        return;
    }
    /* Unpublish first: from here no handler finds the entry (and the only handler
       that could be using it runs on this very thread, or the thread is gone). */
    STORE(&e->tid, TID_TOMB);
    thread_timer_delete(e);
    if (e->profiled && e->cpu_start_ns >= 0) {
        long long now = thread_cpu_of(tid);
        if (now >= e->cpu_start_ns) {
            g.cpu_done_ns += now - e->cpu_start_ns;
        }
    }
    e->tstate = NULL;
    INC(&g.c.threads_unregistered, 1);
}

/*
 * GIL held. Registers (tid, ts); returns 1 if added, 0 if already there, -1 with an
 * exception set on error.
 */
static int
register_tstate(PyThreadState *ts, int tid, int profiled)
{
    thread_entry *old = table_find(tid);
    if (old != NULL) {
        if (old->tstate == ts) {
            return 0;
        }
        /* tid reused by a new thread state: the old one is gone */
        unregister_slot((unsigned)(old - table), old->gen, g.epoch);
    }
    unsigned h = tid_hash(tid);
    thread_entry *e = NULL;
    unsigned slot = 0;
    for (unsigned i = 0; i < TABLE_SIZE; i++) {
        slot = (h + i) & (TABLE_SIZE - 1);
        int t = LOAD(&table[slot].tid);
        if (t == TID_EMPTY || t == TID_TOMB) {
            e = &table[slot];
            break;
        }
    }
    if (e == NULL) {
        INC(&g.c.table_full, 1);
        return 0;
    }
    e->gen++;
    e->tstate = ts;
    e->profiled = profiled;
    e->has_timer = 0;
    e->cpu_start_ns = thread_cpu_of(tid);

    /* The sentinel goes in first, so an error leaves nothing half-registered. */
    SentinelObject *s = PyObject_New(SentinelObject, &SentinelType);
    if (s == NULL) {
        return -1;
    }
    s->epoch = g.epoch;
    s->gen = e->gen;
    s->slot = slot;
    if (ts->dict == NULL) {
        ts->dict = PyDict_New();
        if (ts->dict == NULL) {
            s->epoch = 0; /* never matches: epochs start at 1 */
            Py_DECREF(s);
            return -1;
        }
    }
    STORE(&e->tid, tid); /* publish */
    INC(&g.c.threads_registered, 1);
    int rc = PyDict_SetItem(ts->dict, sentinel_key, (PyObject *)s);
    Py_DECREF(s);
    if (rc < 0) {
        unregister_slot(slot, e->gen, g.epoch);
        return -1;
    }
    if (profiled && (g.timer_kinds & TIMER_THREAD)) {
        thread_timer_create(e, slot);
    }
    else if (profiled && (g.timer_kinds & TIMER_PERF)) {
        thread_perf_create(e);
    }
    return 1;
}

static int
scan_threads_impl(void)
{
    PyInterpreterState *interp = PyInterpreterState_Get();
    int added = 0;
    for (PyThreadState *ts = PyInterpreterState_ThreadHead(interp); ts != NULL;
         ts = PyThreadState_Next(ts)) {
        int tid = (int)ts->native_thread_id;
        if (tid <= 0) {
            continue; /* not yet bound to an OS thread */
        }
        int rc = register_tstate(ts, tid, 1);
        if (rc < 0) {
            return -1;
        }
        added += rc;
    }
    /* Backstop: entries whose thread state left the list without clearing its dict. */
    for (unsigned i = 0; i < TABLE_SIZE; i++) {
        thread_entry *e = &table[i];
        if (LOAD(&e->tid) <= 0) {
            continue;
        }
        int found = 0;
        for (PyThreadState *ts = PyInterpreterState_ThreadHead(interp); ts != NULL;
             ts = PyThreadState_Next(ts)) {
            if (ts == e->tstate) {
                found = 1;
                break;
            }
        }
        if (!found) {
            unregister_slot(i, e->gen, g.epoch);
        }
    }
    return added;
}

/* ---- fork -------------------------------------------------------------------- */

static void
atfork_prepare(void)
{
    if (LOAD(&g.mode) != MODE_SAMPLE) {
        return;
    }
    struct itimerspec zero;
    memset(&zero, 0, sizeof(zero));
    for (unsigned i = 0; i < TABLE_SIZE; i++) {
        if (LOAD(&table[i].tid) > 0 && LOAD(&table[i].has_timer)) {
            if (g.timer_kinds & TIMER_PERF) {
                ioctl(table[i].perf_fd, PERF_EVENT_IOC_DISABLE, 0);
            }
            else {
                timer_settime(table[i].timer, 0, &zero, NULL);
            }
        }
    }
    if (g.itimer_armed) {
        itimer_set(0);
    }
    g.fork_disarmed = 1;
}

static void
atfork_parent(void)
{
    if (!g.fork_disarmed) {
        return;
    }
    g.fork_disarmed = 0;
    for (unsigned i = 0; i < TABLE_SIZE; i++) {
        if (LOAD(&table[i].tid) > 0 && LOAD(&table[i].has_timer)) {
            if (g.timer_kinds & TIMER_PERF) {
                ioctl(table[i].perf_fd, PERF_EVENT_IOC_ENABLE, 0);
            }
            else {
                struct itimerspec its = thread_timer_spec();
                timer_settime(table[i].timer, 0, &its, NULL);
            }
        }
    }
    if (g.itimer_armed) {
        itimer_set(g.period_ns);
    }
}

static void
atfork_child(void)
{
    /* The child has no timers (timer_create(2), setitimer(2)) and one thread. It does
       hold copies of the perf event fds: closed here (the events, the parent's, stay
       disabled until atfork_parent re-enables them there). */
    if (g.timer_kinds & TIMER_PERF) {
        for (unsigned i = 0; i < TABLE_SIZE; i++) {
            if (table[i].tid > 0 && table[i].has_timer && table[i].perf_fd >= 0) {
                close(table[i].perf_fd);
            }
        }
    }
    g.mode = MODE_OFF;
    g.fork_disarmed = 0;
    g.itimer_armed = 0;
    g.in_flight = 0;
    memset(table, 0, sizeof(table));
    if (g.ring != NULL) {
        memset(g.ring, 0, g.cap * sizeof(uint64_t));
    }
    g.w = g.r = 0;
    memset(&g.c, 0, sizeof(g.c));
    g.cpu_done_ns = 0;
    g.epoch++; /* sentinels inherited by the child become no-ops */
}

/* ---- signal disposition ------------------------------------------------------ */

static int
install_handler(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_sigaction = sigprof_handler;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigfillset(&sa.sa_mask);
    /* A synchronous fault while blocked kills the process outright: the walk's fault
       guard must be able to run inside this handler. */
    sigdelset(&sa.sa_mask, SIGSEGV);
    sigdelset(&sa.sa_mask, SIGBUS);
    if (sigaction(SIGPROF, &sa, NULL) != 0) {
        PyErr_SetFromErrno(PyExc_OSError);
        return -1;
    }
    g.handler_installed = 1;
    return 0;
}

static void
unblock_sigprof(void)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGPROF);
    pthread_sigmask(SIG_UNBLOCK, &set, NULL);
}

static void
wait_quiescent(void)
{
    while (__atomic_load_n(&g.in_flight, __ATOMIC_SEQ_CST) != 0) {
        sched_yield();
    }
}

/* ---- Python-visible functions ------------------------------------------------ */

static PyObject *
py_sigprof_disposition(PyObject *Py_UNUSED(self), PyObject *Py_UNUSED(unused))
{
    struct sigaction old;
    if (sigaction(SIGPROF, NULL, &old) != 0) {
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    if ((old.sa_flags & SA_SIGINFO) && old.sa_sigaction == sigprof_handler) {
        return PyUnicode_FromString("ours");
    }
    if (!(old.sa_flags & SA_SIGINFO) && old.sa_handler == SIG_DFL) {
        return PyUnicode_FromString("default");
    }
    if (!(old.sa_flags & SA_SIGINFO) && old.sa_handler == SIG_IGN) {
        return PyUnicode_FromString("ignore");
    }
    return PyUnicode_FromString("other");
}

static int
check_disposition(void)
{
    PyObject *d = py_sigprof_disposition(NULL, NULL);
    if (d == NULL) {
        return -1;
    }
    int other = PyUnicode_CompareWithASCIIString(d, "other") == 0;
    Py_DECREF(d);
    if (other) {
        PyErr_SetString(PyExc_RuntimeError,
                        "another SIGPROF handler is installed (another profiler, or "
                        "signal.signal(SIGPROF, ...)); realprof needs sole ownership of "
                        "SIGPROF, like gperftools: remove that handler first");
        return -1;
    }
    return 0;
}

static void
reset_for_start(void)
{
    memset(table, 0, sizeof(table));
    memset(&g.c, 0, sizeof(g.c));
    g.cpu_done_ns = 0;
    g.perf_exclude_kernel = 0;
    g.epoch++;
    if (g.epoch == 0) {
        g.epoch = 1;
    }
    if (g.rng == 0) {
        g.rng = (uint64_t)clock_ns(CLOCK_MONOTONIC) ^ ((uint64_t)getpid() << 32);
    }
}

static PyObject *py_stop(PyObject *Py_UNUSED(self), PyObject *Py_UNUSED(unused));

/* PyErr_GetRaisedException is 3.12+; Fetch/Restore work everywhere. */
static PyObject *
PyErr_GetRaisedException_compat(void)
{
    PyObject *t, *v, *tb;
    PyErr_Fetch(&t, &v, &tb);
    return Py_BuildValue("(NNN)", t ? t : Py_NewRef(Py_None), v ? v : Py_NewRef(Py_None),
                         tb ? tb : Py_NewRef(Py_None));
}

static void
PyErr_SetRaisedException_compat(PyObject *saved)
{
    if (saved == NULL) {
        return;
    }
    PyObject *t = PyTuple_GET_ITEM(saved, 0), *v = PyTuple_GET_ITEM(saved, 1),
             *tb = PyTuple_GET_ITEM(saved, 2);
    PyErr_Restore(t == Py_None ? NULL : Py_NewRef(t), v == Py_None ? NULL : Py_NewRef(v),
                  tb == Py_None ? NULL : Py_NewRef(tb));
    Py_DECREF(saved);
}

/* Drops whatever staging holds (GIL held). */
static void
stg_clear(void)
{
    size_t nf = stg.nframes;
    stg_frame *old = stg.frames;
    stg.frames = NULL;
    stg.capframes = 0;
    stg.nframes = 0;
    stg.nrec = 0;
    for (size_t k = 0; k < nf; k++) {
        Py_XDECREF(old[k].code);
        Py_XDECREF(old[k].name);
        Py_XDECREF(old[k].file);
    }
    PyMem_RawFree(old);
}

static PyObject *
py_start(PyObject *Py_UNUSED(self), PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"timer_kinds", "period_ns", "buffer_words", "max_depth", NULL};
    int kinds;
    long long period_ns, words;
    int max_depth;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "iLLi", kwlist, &kinds, &period_ns, &words,
                                     &max_depth)) {
        return NULL;
    }
    if (LOAD(&g.mode) != MODE_OFF) {
        PyErr_SetString(PyExc_RuntimeError, "the sampler is already running");
        return NULL;
    }
    if (kinds < 1 || (kinds > 3 && kinds != TIMER_PERF) || period_ns < 1000 || max_depth < 1 ||
        max_depth > MAX_DEPTH_CAP || words < HDR_WORDS + 2) {
        PyErr_SetString(PyExc_ValueError, "bad sampler parameters");
        return NULL;
    }
    if (check_disposition() < 0) {
        return NULL;
    }
    /* Anything left from a previous run is collected (it may name code objects that
       are about to die) and thrown away. */
    ring_collect(NULL);
    stg_clear();
    if (g.ring == NULL || g.cap != (uint64_t)words) {
        /* The old ring is only touched by handlers in MODE_SAMPLE, which is off. */
        uint64_t *ring = PyMem_RawCalloc((size_t)words, sizeof(uint64_t));
        if (ring == NULL) {
            return PyErr_NoMemory();
        }
        PyMem_RawFree(g.ring);
        g.ring = ring;
        g.cap = (uint64_t)words;
    }
    else {
        memset(g.ring, 0, g.cap * sizeof(uint64_t));
    }
    g.w = g.r = 0;
    g.timer_kinds = kinds;
    g.period_ns = period_ns;
    g.max_depth = max_depth;
    reset_for_start();

    if (!g.dealloc_hooked) {
        /* Installed once, never removed: another extension may wrap it after us. */
        orig_code_dealloc = PyCode_Type.tp_dealloc;
        PyCode_Type.tp_dealloc = hooked_code_dealloc;
        g.dealloc_hooked = 1;
    }
    if (install_handler() < 0) {
        return NULL;
    }
    fault_guard_install();
    unblock_sigprof();
    /* Sampling is on before the first timer exists, so no expiry (the first may be
       1 ns away) is thrown away as late. */
    __atomic_store_n(&g.mode, MODE_SAMPLE, __ATOMIC_SEQ_CST);
    if (register_tstate(PyThreadState_Get(), gettid_(), 1) < 0 || scan_threads_impl() < 0) {
        PyObject *exc = PyErr_GetRaisedException_compat();
        Py_XDECREF(py_stop(NULL, NULL));
        PyErr_SetRaisedException_compat(exc);
        return NULL;
    }
    if (kinds & TIMER_PROCESS) {
        if (itimer_set(period_ns) != 0) {
            PyErr_SetFromErrno(PyExc_OSError);
            PyObject *exc = PyErr_GetRaisedException_compat();
            Py_XDECREF(py_stop(NULL, NULL));
            PyErr_SetRaisedException_compat(exc);
            return NULL;
        }
        g.itimer_armed = 1;
    }
    Py_RETURN_NONE;
}

static PyObject *
py_stop(PyObject *Py_UNUSED(self), PyObject *Py_UNUSED(unused))
{
    int mode = LOAD(&g.mode);
    if (mode == MODE_OFF) {
        Py_RETURN_NONE;
    }
    __atomic_store_n(&g.mode, MODE_OFF, __ATOMIC_SEQ_CST);
    if (g.itimer_armed) {
        itimer_set(0);
        g.itimer_armed = 0;
    }
    wait_quiescent();
    if (mode == MODE_SAMPLE) {
        for (unsigned i = 0; i < TABLE_SIZE; i++) {
            thread_entry *e = &table[i];
            int tid = LOAD(&e->tid);
            if (tid <= 0) {
                continue;
            }
            thread_timer_delete(e);
            if (e->profiled && e->cpu_start_ns >= 0) {
                long long now = thread_cpu_of(tid);
                if (now >= e->cpu_start_ns) {
                    g.cpu_done_ns += now - e->cpu_start_ns;
                }
            }
            STORE(&e->tid, TID_TOMB);
            e->tstate = NULL;
        }
        /* Sentinels still in thread dicts now carry a stale epoch. */
        g.epoch++;
        ring_collect(NULL);
        fault_guard_remove();
    }
    Py_RETURN_NONE;
}

static PyObject *
py_register_thread(PyObject *Py_UNUSED(self), PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"profiled", NULL};
    int profiled = 1;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "|p", kwlist, &profiled)) {
        return NULL;
    }
    unblock_sigprof();
    if (LOAD(&g.mode) != MODE_SAMPLE) {
        Py_RETURN_FALSE;
    }
    int tid = gettid_();
    thread_entry *e = table_find(tid);
    PyThreadState *ts = PyThreadState_Get();
    if (e != NULL && e->tstate == ts && e->profiled != profiled) {
        /* e.g. the reader: found by a scan before it could say it is not profiled */
        unregister_slot((unsigned)(e - table), e->gen, g.epoch);
    }
    int rc = register_tstate(ts, tid, profiled);
    if (rc < 0) {
        return NULL;
    }
    return PyBool_FromLong(rc);
}

static PyObject *
py_scan_threads(PyObject *Py_UNUSED(self), PyObject *Py_UNUSED(unused))
{
    if (LOAD(&g.mode) != MODE_SAMPLE) {
        return PyLong_FromLong(0);
    }
    int n = scan_threads_impl();
    if (n < 0) {
        return NULL;
    }
    return PyLong_FromLong(n);
}

/* Phase 2: staging -> list of (tid, t_ns, si_code, overrun, flags, frames) where
   frames is a tuple, leaf first, of (qualname, filename, line, firstlineno) or None. */
static PyObject *
py_drain(PyObject *Py_UNUSED(self), PyObject *Py_UNUSED(unused))
{
    if (LOAD(&g.mode) == MODE_SAMPLE) {
        fault_guard_install();  /* back in front if something replaced it */
    }
    ring_collect(NULL);
    PyObject *out = PyList_New(0);
    if (out == NULL) {
        return NULL;
    }
    /* Python allocations below may run the GC, free code objects and so append to
       staging (through the dealloc hook): index, never hold pointers into it. */
    size_t i = 0;
    for (; i < stg.nrec; i++) {
        stg_rec rec = stg.recs[i];
        PyObject *frames = PyTuple_New(rec.depth);
        if (frames == NULL) {
            goto error;
        }
        for (int j = 0; j < rec.depth; j++) {
            stg_frame f = stg.frames[rec.first + (size_t)j];
            PyObject *item;
            if (f.kind == SF_LIVE) {
                PyCodeObject *co = (PyCodeObject *)f.code;
                int line = PyCode_Addr2Line(co, f.off * (int)sizeof(_Py_CODEUNIT));
                item = Py_BuildValue("(OOii)", co->co_qualname, co->co_filename, line,
                                     co->co_firstlineno);
            }
            else if (f.kind == SF_DEAD) {
                item = Py_BuildValue("(OOii)", f.name, f.file, f.line, f.firstline);
            }
            else {
                item = Py_NewRef(Py_None);
            }
            if (item == NULL) {
                Py_DECREF(frames);
                goto error;
            }
            PyTuple_SET_ITEM(frames, j, item);
        }
        PyObject *t = Py_BuildValue("(iLiiiN)", rec.tid, rec.t_ns, rec.si_code, rec.overrun,
                                    rec.flags, frames);
        if (t == NULL || PyList_Append(out, t) < 0) {
            Py_XDECREF(t);
            goto error;
        }
        Py_DECREF(t);
    }
    /* Everything (including records appended during the loop) is now in `out`.
       Releasing the references may free code objects, which may append to staging
       again through the hook: stg_clear detaches the arrays before releasing. */
    stg_clear();
    return out;
error:
    Py_DECREF(out);
    return NULL;
}

static PyObject *
py_stats(PyObject *Py_UNUSED(self), PyObject *Py_UNUSED(unused))
{
    counters_t c;
    c.handler_entries = LOAD(&g.c.handler_entries);
    c.recorded = LOAD(&g.c.recorded);
    c.lost_overflow = LOAD(&g.c.lost_overflow);
    c.discarded = LOAD(&g.c.discarded);
    c.discarded_duplicate = LOAD(&g.c.discarded_duplicate);
    c.discarded_stale_timer = LOAD(&g.c.discarded_stale_timer);
    c.timer_overruns = LOAD(&g.c.timer_overruns);
    c.unknown_frames = LOAD(&g.c.unknown_frames);
    c.late_signals = LOAD(&g.c.late_signals);
    c.reader_records = LOAD(&g.c.reader_records);
    c.dead_code_frames = LOAD(&g.c.dead_code_frames);
    c.reader_stalls = LOAD(&g.c.reader_stalls);
    c.threads_registered = LOAD(&g.c.threads_registered);
    c.threads_unregistered = LOAD(&g.c.threads_unregistered);
    c.table_full = LOAD(&g.c.table_full);
    c.timers_created = LOAD(&g.c.timers_created);
    c.timers_deleted = LOAD(&g.c.timers_deleted);
    c.timer_errors = LOAD(&g.c.timer_errors);
    c.discarded_unprofiled = LOAD(&g.c.discarded_unprofiled);
    c.handler_ns = LOAD(&g.c.handler_ns);
    c.stacks_untrusted = LOAD(&g.c.stacks_untrusted);
    c.stack_walk_faults = LOAD(&g.c.stack_walk_faults);
    c.guard_installs = LOAD(&g.c.guard_installs);
    c.perf_overflows = LOAD(&g.c.perf_overflows);
    c.perf_signals = LOAD(&g.c.perf_signals);
    long long cpu = g.cpu_done_ns;
    if (LOAD(&g.mode) == MODE_SAMPLE) {
        for (unsigned i = 0; i < TABLE_SIZE; i++) {
            thread_entry *e = &table[i];
            int tid = LOAD(&e->tid);
            if (tid > 0 && e->profiled && e->cpu_start_ns >= 0) {
                long long now = thread_cpu_of(tid);
                if (now >= e->cpu_start_ns) {
                    cpu += now - e->cpu_start_ns;
                }
            }
        }
    }
    return Py_BuildValue(
        "{sKsKsKsKsKsKsKsKsKsKsKsKsKsKsKsKsKsKsKsKsKsKsKsKsKsisLsK}",
        "handler_entries", (unsigned long long)c.handler_entries,
        "recorded", (unsigned long long)c.recorded,
        "lost_overflow", (unsigned long long)c.lost_overflow,
        "discarded", (unsigned long long)c.discarded,
        "discarded_duplicate", (unsigned long long)c.discarded_duplicate,
        "discarded_stale_timer", (unsigned long long)c.discarded_stale_timer,
        "timer_overruns", (unsigned long long)c.timer_overruns,
        "unknown_frames", (unsigned long long)c.unknown_frames,
        "late_signals", (unsigned long long)c.late_signals,
        "reader_records", (unsigned long long)c.reader_records,
        "dead_code_frames", (unsigned long long)c.dead_code_frames,
        "reader_stalls", (unsigned long long)c.reader_stalls,
        "threads_registered", (unsigned long long)c.threads_registered,
        "threads_unregistered", (unsigned long long)c.threads_unregistered,
        "table_full", (unsigned long long)c.table_full,
        "timers_created", (unsigned long long)c.timers_created,
        "timers_deleted", (unsigned long long)c.timers_deleted,
        "timer_errors", (unsigned long long)c.timer_errors,
        "discarded_unprofiled", (unsigned long long)c.discarded_unprofiled,
        "handler_ns", (unsigned long long)c.handler_ns,
        "stacks_untrusted", (unsigned long long)c.stacks_untrusted,
        "stack_walk_faults", (unsigned long long)c.stack_walk_faults,
        "guard_installs", (unsigned long long)c.guard_installs,
        "perf_overflows", (unsigned long long)c.perf_overflows,
        "perf_signals", (unsigned long long)c.perf_signals,
        "perf_exclude_kernel", g.perf_exclude_kernel,
        "cpu_ns", cpu,
        "timers_live", (unsigned long long)(c.timers_created - c.timers_deleted));
}

static PyObject *
py_timers_armed(PyObject *Py_UNUSED(self), PyObject *Py_UNUSED(unused))
{
    long n = g.itimer_armed ? 1 : 0;
    for (unsigned i = 0; i < TABLE_SIZE; i++) {
        if (LOAD(&table[i].tid) > 0 && LOAD(&table[i].has_timer)) {
            n++;
        }
    }
    return PyLong_FromLong(n);
}

/* handler="python": count deliveries in C, run the Python handler via the
   interpreter's own pending-signal machinery. */
static PyObject *
py_pycount_start(PyObject *Py_UNUSED(self), PyObject *Py_UNUSED(unused))
{
    if (LOAD(&g.mode) != MODE_OFF) {
        PyErr_SetString(PyExc_RuntimeError, "the sampler is already running");
        return NULL;
    }
    memset(&g.c, 0, sizeof(g.c));
    __atomic_store_n(&g.mode, MODE_PYCOUNT, __ATOMIC_SEQ_CST);
    if (install_handler() < 0) {
        __atomic_store_n(&g.mode, MODE_OFF, __ATOMIC_SEQ_CST);
        return NULL;
    }
    unblock_sigprof();
    Py_RETURN_NONE;
}

static PyObject *
py_check_signals(PyObject *Py_UNUSED(self), PyObject *Py_UNUSED(unused))
{
    if (PyErr_CheckSignals() < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

/* This thread's CPU time from getrusage(RUSAGE_THREAD). Unlike reading the thread's
   CPU clock, it does not make the scheduler update the running task's accounting
   (update_curr), which on EEVDF kernels can end a used-up slice between ticks: a spin
   that read its own clock thousands of times a second was switched out mid-tick, escaped
   the tick-time timer checks and lost samples to overruns. It lags by up to a tick. */
static long long
thread_rusage_ns(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_THREAD, &ru) != 0) {
        return clock_ns(CLOCK_THREAD_CPUTIME_ID);
    }
    return (long long)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000000LL
           + (long long)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000LL;
}

static PyObject *
py_spin_native(PyObject *Py_UNUSED(self), PyObject *args)
{
    long long cpu_ns;
    if (!PyArg_ParseTuple(args, "L", &cpu_ns)) {
        return NULL;
    }
    long long start, now;
    volatile uint64_t sink = 0;
    Py_BEGIN_ALLOW_THREADS
    start = thread_rusage_ns();
    now = start;
    while (now - start < cpu_ns) {
        for (int i = 0; i < 20000; i++) {
            sink += (uint64_t)i * 2654435761u;
        }
        now = thread_rusage_ns();
    }
    Py_END_ALLOW_THREADS
    (void)sink;
    return PyLong_FromLongLong(now - start);
}

static PyObject *
py_thread_cpu_ns(PyObject *Py_UNUSED(self), PyObject *args)
{
    int tid = 0;
    if (!PyArg_ParseTuple(args, "|i", &tid)) {
        return NULL;
    }
    long long v = tid > 0 ? clock_ns(thread_clock(tid)) : clock_ns(CLOCK_THREAD_CPUTIME_ID);
    if (v < 0) {
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    return PyLong_FromLongLong(v);
}

/*
 * Test hook: puts the calling thread in the state a signal can catch CPython in, with
 * the newest frame pointer set to `kind` of garbage, and sends itself SIGPROF (tgkill:
 * delivered before the call returns). 3.11/3.12: a fresh cframe published before its
 * current_frame is set, exactly _PyEvalFrameDefault's prologue; 3.13: current_frame
 * itself. Nothing else runs meanwhile (no Python code, no allocation). Kinds:
 * "unreadable" (a PROT_NONE page), "stale" (just above datastack_top, where popped
 * frames lie), "misaligned" (8 bytes into the current frame).
 */
static PyObject *
py_walk_selftest(PyObject *Py_UNUSED(self), PyObject *args)
{
    const char *kind;
    if (!PyArg_ParseTuple(args, "s", &kind)) {
        return NULL;
    }
    if (LOAD(&g.mode) != MODE_SAMPLE) {
        PyErr_SetString(PyExc_RuntimeError, "walk_selftest needs a running sampler");
        return NULL;
    }
    PyThreadState *ts = PyThreadState_Get();
    long page = sysconf(_SC_PAGESIZE);
    void *none_page = NULL;
    _PyInterpreterFrame *garbage;
    if (strcmp(kind, "unreadable") == 0) {
        none_page = mmap(NULL, (size_t)page, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (none_page == MAP_FAILED) {
            return PyErr_SetFromErrno(PyExc_OSError);
        }
        garbage = (_PyInterpreterFrame *)((char *)none_page + 64);
    }
    else if (strcmp(kind, "stale") == 0) {
        garbage = (_PyInterpreterFrame *)ts->datastack_top;
    }
    else if (strcmp(kind, "misaligned") == 0) {
        garbage = (_PyInterpreterFrame *)((char *)newest_frame(ts) + 8);
    }
    else {
        PyErr_Format(PyExc_ValueError,
                     "unknown kind %s (allowed: unreadable, stale, misaligned)", kind);
        return NULL;
    }
#if PY313
    _PyInterpreterFrame *saved = ts->current_frame;
    ts->current_frame = garbage;
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
    syscall(SYS_tgkill, (long)getpid(), (long)gettid_(), (long)SIGPROF);
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
    ts->current_frame = saved;
#else
    _PyCFrame fake;
    memset(&fake, 0, sizeof(fake));
#if !PY312
    fake.use_tracing = ts->cframe->use_tracing;
#endif
    fake.previous = ts->cframe;
    fake.current_frame = garbage;
    ts->cframe = &fake;
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
    syscall(SYS_tgkill, (long)getpid(), (long)gettid_(), (long)SIGPROF);
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
    ts->cframe = fake.previous;
#endif
    if (none_page != NULL) {
        munmap(none_page, (size_t)page);
    }
    Py_RETURN_NONE;
}

/* Can this thread open the task-clock event that --timer perf needs? Returns
   (0, exclude_kernel) or (errno, exclude_kernel of the last try). Opens nothing that
   stays open. */
static PyObject *
py_perf_probe(PyObject *Py_UNUSED(self), PyObject *args)
{
    long long period_ns = 1000000;
    if (!PyArg_ParseTuple(args, "|L", &period_ns)) {
        return NULL;
    }
    int tid = gettid_();
    int exclude_kernel = 0;
    int fd = perf_open(tid, period_ns, 0);
    if (fd == -EACCES) {
        exclude_kernel = 1;
        fd = perf_open(tid, period_ns, 1);
    }
    if (fd >= 0) {
        close(fd);
        return Py_BuildValue("(ii)", 0, exclude_kernel);
    }
    return Py_BuildValue("(ii)", -fd, exclude_kernel);
}

/* Test hook: from now on the kernel answers perf_event_open with `err` for this whole
   process (a seccomp filter; irreversible, so tests call it in a child process). */
static PyObject *
py_deny_perf_event_open(PyObject *Py_UNUSED(self), PyObject *args)
{
    int err = EACCES;
    if (!PyArg_ParseTuple(args, "|i", &err)) {
        return NULL;
    }
    struct sock_filter filter[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_perf_event_open, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ((unsigned)err & SECCOMP_RET_DATA)),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = {(unsigned short)(sizeof(filter) / sizeof(filter[0])), filter};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ||
        syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_TSYNC, &prog) != 0) {
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    Py_RETURN_NONE;
}

static PyObject *
py_is_running(PyObject *Py_UNUSED(self), PyObject *Py_UNUSED(unused))
{
    return PyLong_FromLong(LOAD(&g.mode));
}

static PyMethodDef methods[] = {
    {"start", (PyCFunction)(void (*)(void))py_start, METH_VARARGS | METH_KEYWORDS,
     "start(timer_kinds, period_ns, buffer_words, max_depth): install the handler, "
     "register threads, arm timers (kinds: 1 process, 2 per-thread, 3 both)."},
    {"stop", py_stop, METH_NOARGS,
     "Disarm and delete every timer, wait for handlers in flight; handler stays, inactive."},
    {"register_thread", (PyCFunction)(void (*)(void))py_register_thread,
     METH_VARARGS | METH_KEYWORDS,
     "register_thread(profiled=True): register the calling thread (and its timer)."},
    {"scan_threads", py_scan_threads, METH_NOARGS,
     "Register thread states not yet known; drop entries whose state is gone."},
    {"drain", py_drain, METH_NOARGS,
     "Take all published records: [(tid, t_ns, si_code, overrun, flags, frames)]."},
    {"stats", py_stats, METH_NOARGS, "Counters (atomic snapshots)."},
    {"timers_armed", py_timers_armed, METH_NOARGS,
     "Number of this module's timers still armed (process timer counts as one)."},
    {"sigprof_disposition", py_sigprof_disposition, METH_NOARGS,
     "'default', 'ignore', 'ours' or 'other'."},
    {"pycount_start", py_pycount_start, METH_NOARGS,
     "Python-handler mode: count deliveries in C, forward with PyErr_SetInterruptEx."},
    {"check_signals", py_check_signals, METH_NOARGS, "PyErr_CheckSignals()."},
    {"spin_native", py_spin_native, METH_VARARGS,
     "spin_native(cpu_ns): busy-spin on this thread's CPU clock with the GIL released; "
     "returns the CPU ns spent."},
    {"thread_cpu_ns", py_thread_cpu_ns, METH_VARARGS,
     "thread_cpu_ns(tid=0): CPU clock of a thread of this process (0: the caller)."},
    {"mode", py_is_running, METH_NOARGS, "0 off, 1 sampling, 2 python-handler counting."},
    {"perf_probe", py_perf_probe, METH_VARARGS,
     "perf_probe(period_ns=1e6): (0 or errno, exclude_kernel) for a task-clock event on "
     "this thread."},
    {"deny_perf_event_open", py_deny_perf_event_open, METH_VARARGS,
     "deny_perf_event_open(errno=EACCES): test hook, a seccomp filter that makes the "
     "kernel refuse perf_event_open in this process from now on."},
    {"walk_selftest", py_walk_selftest, METH_VARARGS,
     "walk_selftest(kind): test hook, SIGPROF to self with a garbage newest frame "
     "(unreadable, stale, misaligned)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef moduledef = {
    PyModuleDef_HEAD_INIT,
    .m_name = "realprof._sampler",
    .m_doc = "SIGPROF sampler core: timers, async-signal-safe handler, lock-free ring "
             "buffer. See the comment at the top of _sampler.c; use realprof.sampler.",
    .m_size = -1,
    .m_methods = methods,
};

PyMODINIT_FUNC
PyInit__sampler(void)
{
    if (PyType_Ready(&SentinelType) < 0) {
        return NULL;
    }
    sentinel_key = PyUnicode_InternFromString("realprof._sampler.thread_sentinel");
    if (sentinel_key == NULL) {
        return NULL;
    }
    static int atfork_done = 0;
    if (!atfork_done) {
        if (pthread_atfork(atfork_prepare, atfork_parent, atfork_child) != 0) {
            PyErr_SetString(PyExc_OSError, "pthread_atfork failed");
            return NULL;
        }
        atfork_done = 1;
    }
    PyObject *m = PyModule_Create(&moduledef);
    if (m == NULL) {
        return NULL;
    }
#if PY313
    const char *layout = "3.13";
#elif PY312
    const char *layout = "3.12";
#else
    const char *layout = "3.11";
#endif
    if (PyModule_AddStringConstant(m, "FRAME_LAYOUT", layout) < 0 ||
        PyModule_AddIntConstant(m, "MAX_DEPTH_CAP", MAX_DEPTH_CAP) < 0 ||
        PyModule_AddIntConstant(m, "HEADER_WORDS", HDR_WORDS) < 0 ||
        PyModule_AddIntConstant(m, "F_PYTHON", F_PYTHON) < 0 ||
        PyModule_AddIntConstant(m, "F_NATIVE", F_NATIVE) < 0 ||
        PyModule_AddIntConstant(m, "F_NO_TSTATE", F_NO_TSTATE) < 0 ||
        PyModule_AddIntConstant(m, "F_TRUNCATED", F_TRUNCATED) < 0 ||
        PyModule_AddIntConstant(m, "F_OWN_TIMER", F_OWN_TIMER) < 0 ||
        PyModule_AddIntConstant(m, "F_UNTRUSTED", F_UNTRUSTED) < 0 ||
        PyModule_AddIntConstant(m, "TIMER_PROCESS", TIMER_PROCESS) < 0 ||
        PyModule_AddIntConstant(m, "TIMER_THREAD", TIMER_THREAD) < 0 ||
        PyModule_AddIntConstant(m, "TIMER_PERF", TIMER_PERF) < 0 ||
        PyModule_AddIntConstant(m, "SI_TIMER", SI_TIMER) < 0 ||
        PyModule_AddIntConstant(m, "SI_KERNEL", SI_KERNEL) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
