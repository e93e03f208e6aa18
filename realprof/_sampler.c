/*
 * realprof._sampler: a SIGPROF sampler for CPython 3.11.1-3.15, built like Go's.
 *
 * Mechanism (one line, as in Go's runtime):
 *   CPU timer -> SIGPROF on the thread that burned the CPU -> C handler captures
 *   that thread's own Python stack as (code pointer, instruction offset) pairs ->
 *   lock-free multi-producer ring buffer -> reader (holds the GIL) resolves the
 *   pointers to names and lines -> contract.profile.Profile (done in sampler.py).
 *
 * Timers (Go's src/runtime/os_linux.go; Linux kernel/time/itimer.c,
 * posix-cpu-timers.c, kernel/events/core.c):
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
 *   - "perf": a software task-clock perf event per thread whose overflow is routed to
 *     that thread as SIGPROF (see perf_open): an hrtimer ends each period, so it
 *     samples above CONFIG_HZ. Its fds sit at high numbers, close-on-exec, and are
 *     checked (PERF_EVENT_IOC_ID) before every use: a program that closes them
 *     (os.closerange) stops that thread's sampling, which is counted, and its own
 *     file at the same number is never read or closed.
 *
 * Which threads, and how their thread state is found:
 *   A fixed open-addressing table maps kernel tid -> (PyThreadState*, timer).
 *   The handler finds its own entry with gettid(): no thread-local storage is read
 *   in the handler at all (our module is dlopen'ed, and a first access to dynamic
 *   TLS may call malloc inside __tls_get_addr). Entries are added under the GIL:
 *     - start() registers the calling thread and scans the interpreter's thread
 *       states (under the runtime's head lock, see scan_threads_impl);
 *     - the sampler wraps threading.Thread._bootstrap_inner (process_hooks.py) so
 *       each new Python thread registers itself before run() (prompt, so short
 *       threads get a timer and a chance to be sampled, #40435);
 *     - the reader calls scan_threads() every period, and as soon as its watch sees a
 *       new thread (py_watch_threads), for threads created by C code,
 *       and for threads with no thread state at all (BLAS pools, C libraries' workers),
 *       found in /proc/self/task (see scan_native_threads): their samples carry no
 *       Python stack (F_NO_TSTATE), the reader labels them with the thread's name.
 *   A thread's exit is caught by a sentinel object stored in its thread-state dict:
 *   PyThreadState_Clear() clears tstate->dict before the thread state is freed, so
 *   the sentinel's dealloc unregisters the entry and deletes the timer (no leaked
 *   timers, no signals aimed at a dead tid) while the PyThreadState is still valid.
 *   A thread that C code calls into Python from, with a new thread state per call
 *   (PyGILState_Ensure), keeps its entry and timer between calls (detach_slot). The
 *   races of registration (finalizers that run while it calls Python, a second live
 *   thread state with the same tid) are handled in register_tstate. Tombstones are
 *   reclaimed (table_reclaim), so a miss never probes the whole table.
 *
 * The handler (SA_SIGINFO|SA_RESTART; sa_mask everything but SIGSEGV and SIGBUS, so it
 * never nests, like Go's setsig, and the fault guard can still run inside it) is
 * async-signal-safe: no malloc, no locks, no refcounts, no Python API,
 * errno saved and restored. It reads only the interrupted thread's own frame chain,
 * which cannot change while the handler runs on that thread:
 *   3.11  tstate->cframe->current_frame, f_code, prev_instr
 *   3.12  same, f_code, prev_instr; skip owner == FRAME_OWNED_BY_CSTACK (shims)
 *   3.13  tstate->current_frame, f_executable (type-checked, may be None), instr_ptr
 *   3.14  same, f_executable a tagged _PyStackRef; skip owner >= FRAME_OWNED_BY_INTERPRETER
 *   3.15  same, and the chain ends at tstate->base_frame, a sentinel with no code
 * (Include/internal/pycore_frame.h, 3.14+ pycore_interpframe*.h, of each version;
 * compiled against each version's own headers, never hard-coded offsets; see "CPython
 * 3.14 and 3.15" below). Incomplete frames (before RESUME, see
 * _PyFrame_IsIncomplete) are kept, at their RESUME instruction: their prologue can run
 * the cyclic GC, and that time belongs to the called function (py-spy charges it there
 * too), not to its caller. Code with no RESUME at all (3.13's _Py_InitCleanup shim,
 * under a specialized __init__ call) is skipped, as before. Depth is cut at max_depth keeping the leaf
 * end, like Go's 64-frame cut; the walk reads nothing deeper, so its cost is bounded
 * by max_depth whatever the real depth. "Running Python" means the thread's state is
 * attached (it holds the GIL):
 *   3.11  _PyRuntime.gilstate.tstate_current == tstate (_PyThreadState_UncheckedGet)
 *   3.12  tstate->_status.active (cleared when the thread detaches to release the GIL;
 *         not when its thread state is deleted, see attached_tstate_of)
 *   3.13+ tstate->state == _Py_THREAD_ATTACHED
 * otherwise the sample is "native": the frame chain then still shows the Python
 * caller of the GIL-free C code, and that is what is recorded, flagged native. A
 * thread waiting in take_gil is detached as well, so the few samples taken during
 * GIL handoffs are flagged native too (their leaf is the Python line that waits).
 * A frame chain caught mid-update is never read on trust: see "Trusting the frame
 * chain" (every frame checked against the data stack's layout) and "the fault guard"
 * (the walk's own faults are caught; every other SIGSEGV/SIGBUS reaches the
 * program's handler, or kills, as if the guard were not there).
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
 *   so the ring holds at least one max_depth record (start() refuses less).
 *   Counters are atomics, asserted lock-free at compile time. Conservation while
 *   sampling, checked by the tests:
 *     handler_entries == recorded + lost_overflow + discarded,
 *     recorded == reader_records (counted by the reader) == samples in the profile
 *     + lost["unknown_code"] (untrusted stacks, unresolvable leaves).
 *
 * Counting mode (handler="python" in sampler.py, see python_handler.py): the same
 * handler sits in front of CPython's own, counts every delivery (handler_entries) and
 * forwards it with PyErr_SetInterruptEx, so the deliveries CPython folds into one
 * Python-level call can be counted; nothing is walked or recorded in that mode.
 *
 * Code-object lifetime: a record holds raw PyCodeObject pointers. A code object in
 * the interrupted thread's frame is alive while the handler runs (the frame holds a
 * strong reference), but it may die before the reader drains the record, and its
 * address may be reused. While profiling, PyCode_Type.tp_dealloc is wrapped (as
 * vmprof does in src/_vmprof.c): before any code object of the main interpreter is
 * freed, every record reserved so far is moved from the ring into a C staging area,
 * taking a strong reference to each live code object and copying name/file/lines of
 * the dying one; if a stalled writer keeps a record unpublished, the dying object is
 * buried instead (see "The graveyard"). Hence no record is ever resolved through freed
 * memory or a reused address. That step does only Py_INCREF and PyMem_Raw*: it cannot
 * run Python code, trigger the GC, or re-enter itself. 3.12+ code watchers
 * (PyCode_AddWatcher) could do the same job; one mechanism for all three versions is
 * simpler to test. A pointer that still fails the type check is labelled
 * "[unknown code]" and counted.
 *
 * The process around it: fork blocks SIGPROF on the forking thread (see "fork() with
 * profiling on"); exec disarms everything and discards pending SIGPROF first (see
 * "exec while profiling"); a program that takes SIGPROF or ITIMER_PROF for itself
 * stops the sampling, counted and reported (sigprof_taken_over).
 *
 * Stop: profiling off (late signals are counted apart and otherwise ignored), all
 * timers deleted, wait until no handler is in flight (given up after 2 s on a stalled
 * thread and counted, quiesce_abandoned: see wait_quiescent), drain. The handler stays
 * installed, inactive: SIG_DFL would let a late SIGPROF kill the process (Go keeps
 * its handler for the same reason, golang/go #19320).
 *
 * CPython 3.14 and 3.15 (read in the headers of 3.14.10 and 3.15.2, the versions CI runs;
 * .ci/cpython-builds gets them). What the walk reads changed in four ways:
 *  - the frame's code is a tagged stack reference, `_PyStackRef f_executable`
 *    (https://github.com/python/cpython/blob/v3.14.10/Include/internal/pycore_interpframe_structs.h#L31):
 *    on builds with the GIL the low bit says whether the reference owns a count and is
 *    masked off by PyStackRef_AsPyObjectBorrow
 *    (https://github.com/python/cpython/blob/v3.14.10/Include/internal/pycore_stackref.h#L467,
 *    #L518), bit operations only, so the handler uses the header's own function. A new
 *    frame still takes a new reference to its code
 *    (https://github.com/python/cpython/blob/v3.14.10/Include/internal/pycore_interpframe.h#L193),
 *    so "Code-object lifetime" below holds unchanged;
 *  - frame owners: FRAME_OWNED_BY_INTERPRETER (3) is new, with FRAME_OWNED_BY_CSTACK
 *    (4) above it in 3.14 and gone in 3.15
 *    (https://github.com/python/cpython/blob/v3.14.10/Include/internal/pycore_interpframe_structs.h#L26);
 *    CPython treats every owner >= FRAME_OWNED_BY_INTERPRETER as a frame that runs no
 *    code of its own
 *    (https://github.com/python/cpython/blob/v3.14.10/Include/internal/pycore_interpframe.h#L262),
 *    and so does the walk, which also checks that such a frame's f_executable is None
 *    (what the interpreter's entry frames on the C stack hold, as 3.13's did; the
 *    walk tests, tests/test_sampler_walk.py, pass on 3.14 and 3.15 with that check);
 *  - 3.15 ends every thread's chain at a sentinel frame embedded in the thread state,
 *    tstate->base_frame, "used by profiling/sampling to detect incomplete stack traces"
 *    (https://github.com/python/cpython/blob/v3.15.2/Include/internal/pycore_tstate.h#L36,
 *    https://github.com/python/cpython/blob/v3.15.2/Include/cpython/pystate.h#L142): not on
 *    the data stack, so the walk accepts it by address and records nothing for it;
 *  - generator frame states were renumbered in 3.15 (COMPLETED is gone, CLEARED is the
 *    one finished state,
 *    https://github.com/python/cpython/blob/v3.15.2/Include/internal/pycore_frame.h#L57):
 *    3.14+ test FRAME_STATE_FINISHED from the header
 *    (https://github.com/python/cpython/blob/v3.14.10/Include/internal/pycore_frame.h#L56).
 * Unchanged and relied on: co_framesize and _co_firsttraceable
 * (https://github.com/python/cpython/blob/v3.14.10/Include/cpython/code.h#L86, #L105),
 * instr_ptr relative to _PyCode_CODE(co) on builds with the GIL
 * (https://github.com/python/cpython/blob/v3.14.10/Include/internal/pycore_interpframe.h#L58),
 * tstate->state == _Py_THREAD_ATTACHED
 * (https://github.com/python/cpython/blob/v3.15.2/Include/internal/pycore_pystate.h#L44),
 * the GIL's last_holder
 * (https://github.com/python/cpython/blob/v3.14.10/Include/internal/pycore_gil.h#L44) and
 * the data stack's layout.
 *
 * Free-threaded builds (3.14t, PEP 703): designed here, not built yet. This file still
 * refuses Py_GIL_DISABLED (#error below): the extension is optional, so on 3.14t the
 * package installs and realprof falls back to the Python handler, and no import turns
 * the GIL back on. Nothing below has run: no free-threaded interpreter could be had
 * where this was written (.ci/cpython-builds builds 3.14t from Debian's source package,
 * which the archive did not serve). What each GIL-reliant part needs there:
 *  - Frames: instr_ptr points into the thread's own copy of the bytecode, entry
 *    tlbc_index of the code's thread-local bytecode array
 *    (https://github.com/python/cpython/blob/v3.14.10/Include/internal/pycore_interpframe_structs.h#L42,
 *    pycore_interpframe.h#L64), so the offset is taken from that copy's base, read under
 *    the fault guard and checked against the array's size; _PyStackRef untagging masks
 *    Py_TAG_BITS (the header's function again).
 *  - Thread registration: the table's single writer is "whoever holds the GIL". There,
 *    a PyMutex of the module serialises the writers (start, the thread hook, the scan,
 *    sentinel deallocs, stop, exec_prepare/resume); the handler still reads lock-free
 *    with tid published last. The handler finds the interrupted thread's state with
 *    PyThreadState_GetUnchecked() (a thread-local of the interpreter itself, read on the
 *    interrupted thread; to be checked that it cannot allocate there, as a first access
 *    to this dlopen'ed module's own thread-locals can) instead of the GIL's last holder,
 *    which a build without a GIL does not have; "attached" is tstate->state as today.
 *  - Emptying the ring from the code-dealloc hook: code objects die on any thread, at
 *    the same time as the reader drains. ring_collect and staging go under one
 *    owner-recursive lock (a PyMutex plus the owner's tid: the reader's own allocations
 *    may free code objects and re-enter the hook on its thread). A hook waiting for it
 *    first publishes its dying object in a small lock-free slot array; a collect that
 *    meets a code word equal to a published dying object copies its name, file and
 *    line (the object is intact: its hook cannot proceed) instead of taking a
 *    reference, since Py_INCREF from 0 would resurrect it.
 *  - The reader resolving names: staging's strong references are taken only under that
 *    lock and only on objects not published as dying, so each is alive when taken.
 *  - The thread scan: the interpreter's thread list is read under the runtime's head
 *    lock as today; writing another thread's tstate->dict (the sentinel) would race with
 *    that thread, so a scan registers a C-created thread as a detached C-thread entry
 *    (no sentinel; the tgkill backstop notices its exit), and only a thread's own call
 *    (start, the thread hook) plants a sentinel.
 *  - Hardening: exec_prepare/resume, stop and atfork take the registration lock (the
 *    child resets it: the parent's holder does not exist there); the fault guard is
 *    already per thread and lock-free; fork's SIGPROF block is per thread already.
 *  - Then, and only then, the module declares Py_mod_gil = Py_MOD_GIL_NOT_USED (with
 *    single-phase init, PyUnstable_Module_SetGIL), so importing it keeps the GIL off.
 *
 * Left out: subinterpreters (only the main interpreter's threads are registered;
 * their code deallocations leave the ring alone); < 3.11.1 and free-threaded builds
 * (above); native C frames (py-spy --native).
 *
 * Sources: Go src/runtime/{os_linux.go,signal_unix.go,cpuprof.go,profbuf.go,proc.go};
 * Linux kernel/time/{posix-cpu-timers.c,posix-timers.c,itimer.c}, kernel/signal.c,
 * kernel/fork.c, kernel/events/core.c; CPython Include/internal/pycore_frame.h,
 * Include/cpython/pystate.h, Python/pystate.c, Python/ceval.c, Python/ceval_gil.c,
 * Objects/codeobject.c (PyCode_Addr2Line), Modules/signalmodule.c
 * (PyErr_SetInterruptEx), Modules/faulthandler.c; vmprof-python src/_vmprof.c;
 * gperftools src/profile-handler.cc.
 */

#define PY_SSIZE_T_CLEAN
/* The frame walk and the thread scan read CPython's internal structures: the internal
   headers need Py_BUILD_CORE, and Python.h must see it too so both agree. */
#ifndef Py_BUILD_CORE
#  define Py_BUILD_CORE 1
#endif
#include <Python.h>

#if PY_VERSION_HEX < 0x030B0100 || PY_VERSION_HEX >= 0x03100000
#  error "realprof._sampler supports CPython 3.11.1-3.15 only (frame layouts differ)"
#endif
#ifdef Py_GIL_DISABLED
#  error "realprof._sampler needs the GIL (free-threaded builds: see the design above)"
#endif

#ifndef Py_BUILD_CORE
#  define Py_BUILD_CORE 1
#endif
#include "internal/pycore_frame.h"
#if PY_VERSION_HEX >= 0x030E0000
#  include "internal/pycore_interpframe.h"   /* 3.14+: the frame struct and its helpers */
#  include "internal/pycore_stackref.h"      /* 3.14+: tagged _PyStackRef */
#endif
#include "internal/pycore_interp.h"     /* interp->threads (the scan) */
#include "internal/pycore_runtime.h"    /* _PyRuntime.interpreters.mutex */

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
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

#define PY315 (PY_VERSION_HEX >= 0x030F0000)
#define PY314 (PY_VERSION_HEX >= 0x030E0000)
#define PY313 (PY_VERSION_HEX >= 0x030D0000)
#define PY312 (PY_VERSION_HEX >= 0x030C0000)

/* ---- constants ---------------------------------------------------------------- */

#define HDR_WORDS 4
/* kernel/events/core.c perf_swevent_init_hrtimer: a task-clock period is at least 10 us */
#define PERF_MIN_PERIOD_NS 10000
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

/* The handler's counters and ring positions are 64-bit atomics; a lock-based fallback
   (libatomic) would take a lock inside a signal handler. */
_Static_assert(__atomic_always_lock_free(sizeof(uint64_t), 0),
               "64-bit atomics must be lock-free on this platform");
_Static_assert(__atomic_always_lock_free(sizeof(void *), 0), "pointer atomics must be lock-free");

#define LOAD(p) __atomic_load_n((p), __ATOMIC_ACQUIRE)
#define STORE(p, v) __atomic_store_n((p), (v), __ATOMIC_RELEASE)
#define INC(p, v) ((void)__atomic_fetch_add((p), (v), __ATOMIC_RELAXED))

/* ---- state ------------------------------------------------------------------- */

typedef struct {
    int tid;                 /* TID_EMPTY, TID_TOMB or a live kernel tid; published last */
    int has_timer;           /* 1 while `timer` (or `perf_fd`) exists for this thread */
    int perf_fd;             /* TIMER_PERF: this thread's task-clock event */
    uint64_t perf_id;        /* its PERF_EVENT_IOC_ID: is perf_fd still that event? */
    int token;               /* sigev_value of the current timer */
    int profiled;            /* counts toward cpu and gets a per-thread timer */
    int c_thread;            /* found by a scan: a thread C code runs Python on, whose
                                thread state may come and go (PyGILState_Ensure per call) */
    PyThreadState *tstate;
    timer_t timer;
    uint32_t gen;
    long long cpu_start_ns;
    int walk_tid;            /* this thread's tid while its handler walks (fault guard) */
    sigjmp_buf *walk_jb;     /* where the fault guard jumps back to */
    int native;              /* found in /proc/self/task with no thread state (BLAS pools,
                                C libraries' threads): see scan_native_threads */
    long long cpu_last_ns;   /* its CPU clock at the last scan (it may exit unseen) */
    char comm[16];           /* native: /proc/self/task/TID/comm, read at each scan */
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
    uint64_t code_buried, dead_code_after_stall;
    uint64_t stacks_unguarded, signals_forwarded;
    uint64_t perf_events_closed, gilstate_lookups, quiesce_abandoned;
    uint64_t stacks_entry_window;
    uint64_t native_threads;
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
    int perf_exclude_kernel; /* 1 if the kernel allowed only user-mode sampling */
    int taken_over;          /* sigprof_taken_over's reasons, once seen */
    uint32_t epoch;          /* bumped at every start(); stale sentinels are no-ops */
    uint64_t rng;
    uint64_t *ring;
    uint64_t cap;
    uint64_t w;              /* reserved position (atomic, CAS) */
    uint64_t r;              /* consumed position (atomic, reader only writes) */
    long long cpu_done_ns;   /* CPU of profiled threads already unregistered */
    counters_t c;
} g;

static thread_entry table[TABLE_SIZE];

/* What exec_prepare turned off, for exec_resume (see "exec while profiling"). */
static struct {
    int active;
    int mode;
    struct sigaction disposition;
    struct itimerval itimer;
} exec_saved;

/* Test hook (stall_next_record): the next record reserved on this tid waits this long. */
static int stall_tid;
static long long stall_ns;

/* staging area between the ring and Python objects (GIL held, see the header) */
enum { SF_UNKNOWN = 0, SF_LIVE = 1, SF_DEAD = 2, SF_GC = 3 };
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

/* GIL held (the only writer). The first free slot (empty or tomb) on tid's probe
   chain, or NULL if the table is full. */
static thread_entry *
table_free_slot(int tid, unsigned *slot)
{
    unsigned h = tid_hash(tid);
    for (unsigned i = 0; i < TABLE_SIZE; i++) {
        *slot = (h + i) & (TABLE_SIZE - 1);
        int t = LOAD(&table[*slot].tid);
        if (t == TID_EMPTY || t == TID_TOMB) {
            return &table[*slot];
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
/* The lowest fd number the perf events take: half the soft RLIMIT_NOFILE (at least 64
   below it), so that `os.closerange(3, 256)` and the like leave them alone. */
static int
perf_fd_floor(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY
        || rl.rlim_cur > (1u << 20)) {
        return 1 << 19;
    }
    long floor = (long)rl.rlim_cur / 2;
    if (floor > (long)rl.rlim_cur - 64) {
        floor = (long)rl.rlim_cur - 64;
    }
    return floor > 3 ? (int)floor : 3;
}

/* 1 if e->perf_fd is still the event this entry opened: the program may have closed it
   (os.closerange) and reused the number for a file of its own, which the sampler must
   never read, disable or close. */
static int
perf_fd_ours(const thread_entry *e)
{
    uint64_t id = 0;
    return e->perf_fd >= 0 && ioctl(e->perf_fd, PERF_EVENT_IOC_ID, &id) == 0
           && id == e->perf_id;
}

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
    /* Out of the program's way: an fd number the program does not expect to be taken
       (daemonizing code closes low fds and reuses the numbers). */
    int high = fcntl((int)fd, F_DUPFD_CLOEXEC, perf_fd_floor());
    if (high >= 0) {
        close((int)fd);
        fd = high;
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
    e->perf_id = 0;
    ioctl(fd, PERF_EVENT_IOC_ID, &e->perf_id);
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
            if (!perf_fd_ours(e)) {
                INC(&g.c.perf_events_closed, 1);   /* the program closed it: not ours now */
            }
            else {
                ioctl(e->perf_fd, PERF_EVENT_IOC_DISABLE, 0);
                if (read(e->perf_fd, &count, sizeof(count)) == (ssize_t)sizeof(count)
                    && g.period_ns > 0) {
                    INC(&g.c.perf_overflows, count / (uint64_t)g.period_ns);
                }
                close(e->perf_fd);
            }
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
 * Garbage collection. The cyclic GC runs on the thread whose allocation (3.11) or eval
 * breaker (3.12+, gh-97922) started it, inside whatever Python frame was current then,
 * and finalizers it calls push their frames above that one. Its time belongs to the
 * collection, not to that frame's function, and the frame that started it is whichever
 * allocation crossed the threshold: pyflakes' 15-20 % of collection time landed on a
 * different function from run to run. So `gc_phase`, appended to gc.callbacks while
 * sampling (Modules/gcmodule.c invoke_gc_callback, on the collecting thread, before and
 * after each collection), notes the collecting thread and its newest frame; the walk
 * then inserts GC_MARK just below the frames pushed since (the finalizers), where the
 * reader names it [garbage collection]: the collection shows as its own leaf with the
 * trigger as its caller, as in CPython 3.15's sampling profiler (<GC>, gh-140643). The
 * frame is written before the tid and the tid is cleared first, so a handler that
 * interrupts the callback sees no collection or a complete one.
 */
#define GC_MARK ((uint64_t)1)   /* never a code object's address: those are aligned */
#define GC_FRAME_NAME "[garbage collection]"
static struct {
    int tid;                        /* the collecting thread, 0 if none */
    _PyInterpreterFrame *frame;     /* its newest frame when the collection started */
} gc_now;

/* tids py_watch_threads has reported (see "Watching for new threads between scans") */
#define WATCH_REPORTED 64
static int watch_reported[WATCH_REPORTED];
static unsigned watch_reported_next;

static PyObject *
py_gc_phase(PyObject *Py_UNUSED(self), PyObject *args)
{
    PyObject *phase, *info;
    if (!PyArg_ParseTuple(args, "UO", &phase, &info)) {
        return NULL;
    }
    if (PyUnicode_CompareWithASCIIString(phase, "start") == 0) {
        STORE(&gc_now.frame, newest_frame(PyThreadState_Get()));
        STORE(&gc_now.tid, gettid_());
    }
    else {
        STORE(&gc_now.tid, 0);
    }
    Py_RETURN_NONE;
}

/*
 * Trusting the frame chain.
 *
 * The handler reads only the interrupted thread's own frames, which nothing else changes
 * while it runs, but the thread may have been stopped half-way through changing them:
 *  - 3.11 and 3.12 publish tstate->cframe (a struct on the C stack) a few instructions
 *    before they set its current_frame (the prologue of _PyEvalFrameDefault, at every
 *    entry from C), so for that moment the newest frame pointer is whatever the stack
 *    slot held before: often a frame popped long ago, sometimes any word at all (a walk
 *    from it that fails is followed by one from the caller: "The entry window" below);
 *  - a call pushes its frame (datastack_top raised) some instructions before it links
 *    it as the current frame, and a return unlinks the frame before clearing and
 *    popping it (GH-99729, CPython 3.11.1+: Python/ceval.c, RETURN_VALUE and
 *    exit_unwind), so for a moment one frame (two for 3.13's __init__ shim,
 *    CALL_ALLOC_AND_ENTER_INIT) sits on the data stack above the newest linked frame;
 *  - the compiler may order the stores that link a new frame unlike the source.
 * So no frame pointer is followed on trust. The check rests on one invariant of the
 * data stack (Include/internal/pycore_frame.h _PyThreadState_PushFrame and
 * Python/pystate.c push_chunk/_PyThreadState_PopFrame, the same in 3.11-3.13; in 3.14
 * and 3.15 the push is in pycore_interpframe.h, datastack_top raised by co_framesize,
 * https://github.com/python/cpython/blob/v3.14.10/Include/internal/pycore_interpframe.h#L356; CPython
 * asserts it in _PyEvalFrameClearAndPop/clear_thread_frame): thread-owned frames are
 * pushed and popped like a stack, each one `frame size` words (3.12+ co_framesize;
 * 3.11 co_nlocalsplus + co_stacksize + FRAME_SPECIALS_SIZE) right after the previous
 * one, in chunks linked newest first whose saved `top` marks where their frames end.
 * Hence, walking from the leaf:
 *  - the newest thread-owned frame must end exactly at tstate->datastack_top, or below
 *    it by at most MAX_GAP whole frames whose own sizes reach the top (the push and
 *    return windows above), the last of which may not have its code yet (gap_closes);
 *  - every older thread-owned frame must end exactly where the newer one begins (or,
 *    when that one opened its chunk, where the previous chunk's saved top says), or
 *    below it by whole frames being cleared (MIDDLE_GAP, see cursor_take);
 *  - a walk that reaches the chain's end must have used up the data stack (the root
 *    chunk's first frame is its bottom).
 * A stale or garbage pointer has to land on the exact start of a live frame to pass,
 * and the only live frames it can land on without leaving the leaf unexplained are the
 * newest frame itself or its caller during a one-frame window: the leaf end of every
 * kept stack is the true leaf, at most MAX_GAP frames short of it. Frames that are not
 * on the data stack are checked by type: a generator's frame lies inside its
 * generator object, whose type must be a generator, coroutine or async generator with
 * a frame not yet completed; an entry frame on the C stack (3.12+) must run a code
 * object (3.12's trampoline) or nothing (3.13). Anything else ends the walk unkept.
 *
 * The checks are local (each frame against its neighbour), so the walk stops as soon as
 * max_depth frames are recorded: its cost is bounded by max_depth (at most HOP_FACTOR
 * hops per recorded frame, for C-stack entry frames and frames that run no code),
 * whatever the real depth. (Until this design the newest C-level segment had to reach
 * the previous cframe's current_frame, which for deep pure-Python recursion meant
 * walking the whole stack, and live ranges covered 64 chunks only: a 9000-deep stack
 * was dropped whole.) A walk that fails is dropped and counted (stacks_untrusted).
 * Reading a code object's size and a generator's type follows pointers that a stale
 * frame may aim anywhere, so walks run under the SIGSEGV/SIGBUS fault guard below.
 *
 * No code object freed by its own frame's clear is ever read: since GH-99729 a frame
 * is unlinked before it is cleared, so the chain never holds a frame whose code is
 * being deallocated; only a gap frame's size may be read from it, under the guard.
 * CPython 3.11.0 cleared the frame while it was still current: the sampler refuses it.
 */
#if PY312
#  define CODE_FRAME_WORDS(co) ((uintptr_t)(co)->co_framesize)
#else
#  define CODE_FRAME_WORDS(co) \
    ((uintptr_t)(co)->co_nlocalsplus + (uintptr_t)(co)->co_stacksize + FRAME_SPECIALS_SIZE)
#endif
#if PY313
#  define MAX_GAP 2
#else
#  define MAX_GAP 1
#endif
#define MIDDLE_GAP 8
#define HOP_FACTOR 2
#define HOP_SLACK 8
#define FRAME_HEAD offsetof(_PyInterpreterFrame, localsplus)

static inline PyObject *
frame_exe(_PyInterpreterFrame *f)
{
#if PY314
    /* a tagged _PyStackRef: the header's own untagging (bit operations only) */
    return PyStackRef_AsPyObjectBorrow(f->f_executable);
#elif PY313
    return f->f_executable;
#else
    return (PyObject *)f->f_code;
#endif
}

/* Bytes a thread-owned frame occupies, or 0 if its code is not a code object. May fault
   (guarded): a frame not yet checked can hold any word. */
static uintptr_t
frame_bytes(_PyInterpreterFrame *f)
{
    PyObject *exe = frame_exe(f);
    if (exe == NULL || (uintptr_t)exe % sizeof(void *) != 0 || Py_TYPE(exe) != &PyCode_Type) {
        return 0;
    }
    return CODE_FRAME_WORDS((PyCodeObject *)exe) * sizeof(PyObject *);
}

/* Where the next thread-owned frame must lie: inside `chunk`, ending at `end`. */
typedef struct {
    _PyStackChunk *chunk;
    uintptr_t end;
} stack_cursor;

static inline uintptr_t
chunk_base(_PyStackChunk *c)
{
    return (uintptr_t)&c->data[0];
}

static inline int
cursor_holds(const stack_cursor *cur, uintptr_t p)
{
    return cur->chunk != NULL && p >= chunk_base(cur->chunk) && p + FRAME_HEAD <= cur->end;
}

/* 1 if whole frames (at most `most`) laid from `from` reach `to` exactly. With
   `newest`, the last may have no code object yet: a frame being pushed is made room for
   (datastack_top raised) before its code is stored (_PyFrame_Push,
   _PyFrame_PushUnchecked), and on fresh data-stack memory that store is the page's
   first touch, so the tick of a page fault lands in the window often. A live frame,
   which a stale pointer would have to come from, always has its code. */
static int
gap_closes(uintptr_t from, uintptr_t to, int most, int newest)
{
    for (int k = 0; k < most && from + FRAME_HEAD <= to; k++) {
        uintptr_t size = frame_bytes((_PyInterpreterFrame *)from);
        if (size == 0) {
            return newest;   /* the frame being pushed runs to the top */
        }
        from += size;
        if (from == to) {
            return 1;
        }
    }
    return 0;
}

/* Accepts thread-owned frame f at the cursor and moves the cursor below it; 0 if f is
   not where the data stack says the next frame must be. `newest`: the first
   thread-owned frame of the walk, which may sit below the top by MAX_GAP frames; an
   older one may sit below the next newer one by MIDDLE_GAP frames that are being
   cleared (unlinked before their clear, GH-99729, and the clear can run finalizers,
   whose frames then link to the frame below: one gap frame per nested clear). */
static int
cursor_take(stack_cursor *cur, _PyInterpreterFrame *f, int newest)
{
    uintptr_t p = (uintptr_t)f;
    int most = newest ? MAX_GAP : MIDDLE_GAP;
    uintptr_t size;
    if (cursor_holds(cur, p)) {
        size = frame_bytes(f);
        if (size == 0 || (p + size != cur->end && !(p + size < cur->end
                                                     && gap_closes(p + size, cur->end, most,
                                                                   newest)))) {
            return 0;
        }
    }
    else if (cur->chunk != NULL && cur->chunk->previous != NULL) {
        /* the gap frames open the cursor's chunk: f must end the previous one */
        _PyStackChunk *prev = cur->chunk->previous;
        stack_cursor below = {prev, (uintptr_t)&prev->data[prev->top]};
        if (!cursor_holds(&below, p)
            || !gap_closes(chunk_base(cur->chunk), cur->end, most, newest)) {
            return 0;
        }
        size = frame_bytes(f);
        if (size == 0 || p + size != below.end) {
            return 0;
        }
        *cur = below;
    }
    else {
        return 0;
    }
    if (p == chunk_base(cur->chunk)) {
        _PyStackChunk *prev = cur->chunk->previous;
        cur->chunk = prev;
        cur->end = prev != NULL ? (uintptr_t)&prev->data[prev->top] : 0;
    }
    else {
        cur->end = p;
    }
    return 1;
}

/* 1 if a frame that is not on the data stack may be read as one of this thread's. */
static int
offstack_frame_trusted(_PyInterpreterFrame *f)
{
    uintptr_t p = (uintptr_t)f;
    int owner = f->owner;
    if (owner == FRAME_OWNED_BY_GENERATOR) {
        PyGenObject *gen = (PyGenObject *)(p - offsetof(PyGenObject, gi_iframe));
        PyTypeObject *t = Py_TYPE(gen);
        if (t != &PyGen_Type && t != &PyCoro_Type && t != &PyAsyncGen_Type) {
            return 0;
        }
#if PY314
        return !FRAME_STATE_FINISHED(gen->gi_frame_state);
#else
        return gen->gi_frame_state < FRAME_COMPLETED;
#endif
    }
#if PY314
    if (owner >= FRAME_OWNED_BY_INTERPRETER) {
        /* the entry frame of _PyEval_EvalFrameDefault, on the C stack: no code */
        return PyStackRef_IsNone(f->f_executable);
    }
#elif PY313
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

/*
 * Walks ts's frame chain from `f` (its newest frame, leaf first), checking each frame
 * as above. With out == NULL counts the frames that would be written; otherwise writes
 * at most `limit` (code, offset) pairs at ring positions pos, pos+1, ... Returns the
 * count, or -1 if the chain is not to be trusted. The chain cannot change between the
 * two passes: it belongs to the thread this handler interrupted.
 */
static int
walk_frames(PyThreadState *ts, _PyInterpreterFrame *f, uint64_t *out, uint64_t pos,
            int limit, int *truncated, int gc_on, _PyInterpreterFrame *gc_frame)
{
    stack_cursor cur = {ts->datastack_chunk, (uintptr_t)ts->datastack_top};
    if (cur.chunk != NULL
        && (cur.end < chunk_base(cur.chunk) || cur.end > (uintptr_t)cur.chunk + cur.chunk->size)) {
        return -1;   /* a chunk being pushed or popped */
    }
    int newest = 1;
    int n = 0;
    long hop_cap = (long)HOP_FACTOR * limit + HOP_SLACK;
    for (long hops = 0; f != NULL; hops++, f = f->previous) {
        if (n >= limit || hops >= hop_cap) {
            *truncated = 1;   /* nothing deeper is read */
            return n;
        }
        if ((uintptr_t)f % sizeof(void *) != 0) {
            return -1;
        }
#if PY315
        if (f == ts->base_frame) {
            continue;   /* the sentinel below the first frame: no code */
        }
#endif
        if (cursor_holds(&cur, (uintptr_t)f) || f->owner == FRAME_OWNED_BY_THREAD) {
            if (f->owner != FRAME_OWNED_BY_THREAD || !cursor_take(&cur, f, newest)) {
                return -1;
            }
            newest = 0;
        }
        else if (!offstack_frame_trusted(f)) {
            return -1;
        }
        if (gc_on && f == gc_frame) {
            gc_on = 0;   /* the collection sits just above the frame that started it */
            if (out != NULL) {
                out[(pos + 2 * (uint64_t)n) % g.cap] = GC_MARK;
                out[(pos + 2 * (uint64_t)n + 1) % g.cap] = 0;
            }
            if (++n >= limit) {
                *truncated = 1;   /* no room left for f */
                return n;
            }
        }
#if PY314
        if (f->owner >= FRAME_OWNED_BY_INTERPRETER) {
            continue;
        }
#elif PY312
        if (f->owner == FRAME_OWNED_BY_CSTACK) {
            continue;
        }
#endif
        PyObject *exe = frame_exe(f);
#if PY313
        _Py_CODEUNIT *ip = f->instr_ptr;
#else
        _Py_CODEUNIT *ip = f->prev_instr;
#endif
        uint64_t code_word = 0;
        int64_t off = 0;
        if (exe != NULL && Py_TYPE(exe) == &PyCode_Type) {
            PyCodeObject *co = (PyCodeObject *)exe;
            _Py_CODEUNIT *base = _PyCode_CODE(co);
            if ((Py_ssize_t)co->_co_firsttraceable >= Py_SIZE(co)) {
                continue;   /* no RESUME at all: 3.13's _Py_InitCleanup shim */
            }
            code_word = (uint64_t)(uintptr_t)co;
            off = (int64_t)(ip - base);
            if (off < (int64_t)co->_co_firsttraceable) {
                /* Not yet at RESUME. The prologue (MAKE_CELL, COPY_FREE_VARS,
                   RETURN_GENERATOR) allocates, and in 3.11 an allocation can run the
                   whole cyclic GC, finalizers included (Modules/gcmodule.c
                   _PyObject_GC_Link; 3.12+ only schedules it for the eval breaker,
                   gh-97922). The function has been called, so the time is its own:
                   charged to its RESUME, i.e. its first line. */
                off = (int64_t)co->_co_firsttraceable;
            }
        }
#if PY313
        else if (exe == Py_None) {
            continue;       /* 3.13 frames that run no code object */
        }
#endif
        if (out != NULL) {
            if (code_word == 0) {
                INC(&g.c.unknown_frames, 1);
            }
            out[(pos + 2 * (uint64_t)n) % g.cap] = code_word;
            out[(pos + 2 * (uint64_t)n + 1) % g.cap] = (uint64_t)off;
        }
        n++;
    }
    /* The chain's end: the data stack must be used up too (its root chunk starts at
       data[1], push_chunk). */
    if (cur.chunk != NULL
        && (cur.chunk->previous != NULL || cur.end > (uintptr_t)&cur.chunk->data[1])) {
        return -1;
    }
    if (gc_on && gc_frame == NULL) {
        /* started with no Python frame (from C): the collection is the root */
        if (n >= limit) {
            *truncated = 1;
            return n;
        }
        if (out != NULL) {
            out[(pos + 2 * (uint64_t)n) % g.cap] = GC_MARK;
            out[(pos + 2 * (uint64_t)n + 1) % g.cap] = 0;
        }
        n++;
    }
    return n;
}

/* ---- the fault guard --------------------------------------------------------- */

/*
 * The walk reads memory that a stale frame pointer may aim anywhere, so it runs under a
 * SIGSEGV/SIGBUS handler of ours, the guard (the technique vmprof uses). The guard must
 * catch the walk's own faults and nothing else, and hand everything else on exactly
 * as if it were not there.
 *
 *  - start() puts the guard in front of SIGSEGV and SIGBUS and remembers, per signal,
 *    the disposition it found then (`at_start`) and the one it stands in front of now
 *    (`behind`; the same until something else is installed).
 *  - A walk fault is a signal the kernel raised for a fault (si_code > 0) on a thread
 *    whose table entry says it is walking: the guard jumps back into the walk, which
 *    drops the stack and counts it (stack_walk_faults).
 *  - Anything else is forwarded once, as the kernel would have delivered it: to a
 *    handler with its sa_mask (and the signal, unless SA_NODEFER) blocked around the
 *    call, SA_RESETHAND honoured by resetting to SIG_DFL first, the three-argument form
 *    under SA_SIGINFO. To SIG_DFL or SIG_IGN by restoring that disposition: a fault
 *    then returns, the instruction faults again and the default action (core dump
 *    included) happens as without us; a sent signal (kill, raise: si_code <= 0) is
 *    sent again to this thread with tgkill, so kill(SIGSEGV) still kills with 11.
 *  - Another handler installed after start() (faulthandler.enable(), which pytest
 *    runs) goes in front of the guard and remembers the guard as its own previous
 *    handler. While it is in front, walks do not run (each walk first asks, with one
 *    sigaction query per signal, whether the guard is in front; skipped walks are
 *    counted as stacks_unguarded): a walk fault would reach that handler first, and
 *    faulthandler would report a fatal error. The reader's next drain puts the guard
 *    back in front of it (behind := it).
 *  - No loops: a handler installed after start() may chain back to the guard
 *    (faulthandler disables itself and re-raises), or may have been disabled while
 *    still installed (after faulthandler.disable() its handler returns at once, and the
 *    instruction faults again for ever). So a guard entered on a thread whose earlier
 *    forward is still open deeper on the same stack (nested: the handler came back),
 *    or by the same fault back to back REFAULTS_BEFORE_ESCALATING times, goes one level
 *    up: to `at_start`, installed before the guard ever was, so it cannot lead back to
 *    it, and then to the default action. A forward left by siglongjmp (a handler's safe
 *    probe) is not nested (fwd_slot), and what stood there before start() is always
 *    forwarded to, as the kernel would.
 */

enum { GUARD_SEGV = 0, GUARD_BUS = 1 };
static const int guard_sigs[2] = {SIGSEGV, SIGBUS};
static struct sigaction guard_behind[2], guard_at_start[2], guard_default;
static int guard_ever;
#define FWD_SLOTS 64
/* A handler behind the guard that returns without mending the fault makes the same
   instruction fault again at once, for ever (faulthandler after disable() does). A fault
   at the same address on the same thread within REFAULT_WINDOW_NS of the last forward's
   return counts as that; REFAULTS_BEFORE_ESCALATING of them in a row (tens of ms of a
   loop) escalate. A handler that mends faults and returns (a JVM-like barrier, a safe
   probe) never makes that many back to back. */
#define REFAULTS_BEFORE_ESCALATING 10000
#define REFAULT_WINDOW_NS 100000
static int fwd_tid[FWD_SLOTS];          /* threads inside a forward (lock-free slots) */
static uintptr_t fwd_sp[FWD_SLOTS];     /* where on its stack that forward's guard ran */
static int fwd_level[FWD_SLOTS];
static int last_fwd_tid, last_fwd_count;  /* the same fault forwarded again and again */
static void *last_fwd_addr;
static long long last_fwd_return_ns;

static inline int
guard_index(int sig)
{
    return sig == SIGBUS ? GUARD_BUS : GUARD_SEGV;
}

static inline int
sigaction_same(const struct sigaction *a, const struct sigaction *b)
{
    return a->sa_flags == b->sa_flags && (a->sa_flags & SA_SIGINFO
                                              ? a->sa_sigaction == b->sa_sigaction
                                              : a->sa_handler == b->sa_handler);
}

/* This thread's forwarding slot. A guard entered while an earlier forward on this
   thread is still open runs deeper on the same stack (`sp` below the slot's); one at
   the same depth or above means the earlier forward was left by a siglongjmp (a
   handler's "safe probe"), and the slot is taken over. FWD_SLOTS if all are taken. */
static int
fwd_slot(int tid, uintptr_t sp, int *nested)
{
    *nested = 0;
    for (int i = 0; i < FWD_SLOTS; i++) {
        if (LOAD(&fwd_tid[i]) == tid) {
            if (sp < fwd_sp[i]) {
                *nested = 1;
            }
            else {
                fwd_sp[i] = sp;
                fwd_level[i] = 0;
            }
            return i;
        }
    }
    for (int i = 0; i < FWD_SLOTS; i++) {
        int zero = 0;
        if (__atomic_compare_exchange_n(&fwd_tid[i], &zero, tid, 0, __ATOMIC_ACQ_REL,
                                        __ATOMIC_RELAXED)) {
            fwd_sp[i] = sp;
            fwd_level[i] = 0;
            return i;
        }
    }
    return FWD_SLOTS;
}

/* Delivers sig to `to` as the kernel would have (see above). */
static void
deliver_to(const struct sigaction *to, int sig, siginfo_t *si, void *uc)
{
    int is_default = !(to->sa_flags & SA_SIGINFO) && to->sa_handler == SIG_DFL;
    int is_ignore = !(to->sa_flags & SA_SIGINFO) && to->sa_handler == SIG_IGN;
    if (is_default || is_ignore) {
        sigaction(sig, to, NULL);
        if (si == NULL || si->si_code <= 0) {
            /* a sent signal happens once: send it again, under that disposition */
            syscall(SYS_tgkill, (long)getpid(), (long)gettid_(), (long)sig);
        }
        /* a fault: returning runs the instruction again, under that disposition */
        return;
    }
    sigset_t mask, old;
    mask = to->sa_mask;
    if (!(to->sa_flags & SA_NODEFER)) {
        sigaddset(&mask, sig);
    }
    if (to->sa_flags & SA_RESETHAND) {
        sigaction(sig, &guard_default, NULL);
    }
    pthread_sigmask(SIG_BLOCK, &mask, &old);
    if (to->sa_flags & SA_SIGINFO) {
        to->sa_sigaction(sig, si, uc);
    }
    else {
        to->sa_handler(sig);
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
}

static void
fault_guard(int sig, siginfo_t *si, void *uc)
{
    int saved_errno = errno;
    int tid = gettid_();
    if (si != NULL && si->si_code > 0) {
        /* the whole table, not table_find: the thread's entry may have been
           unpublished (a scan, a new registration) while it walks */
        for (unsigned i = 0; i < TABLE_SIZE; i++) {
            thread_entry *e = &table[i];
            if (LOAD(&e->walk_tid) == tid) {
                STORE(&e->walk_tid, 0);
                errno = saved_errno;
                siglongjmp(*e->walk_jb, 1);
            }
        }
    }
    /* Not a walk of ours: the program's own signal. Level 0 goes to the handler behind
       the guard, 1 to what stood before the guard was ever installed, 2 and more to the
       default action: every path ends. A level is raised only when a handler installed
       after start() comes back to the guard (nested), or returns without mending the
       fault REFAULTS_BEFORE_ESCALATING times in a row (a disabled faulthandler does);
       what stood there before start() is always forwarded to, as the kernel would. */
    int k = guard_index(sig);
    int is_fault = si != NULL && si->si_code > 0;
    void *addr = is_fault ? si->si_addr : NULL;
    int after_start = !sigaction_same(&guard_behind[k], &guard_at_start[k]);
    int nested;
    int slot = fwd_slot(tid, (uintptr_t)&nested, &nested);
    int level = 0;
    if (nested) {
        level = ++fwd_level[slot];
    }
    int same = is_fault && LOAD(&last_fwd_tid) == tid && LOAD(&last_fwd_addr) == addr
               && clock_ns(CLOCK_MONOTONIC) - LOAD(&last_fwd_return_ns) < REFAULT_WINDOW_NS;
    int count = same ? LOAD(&last_fwd_count) + 1 : 1;
    if (after_start && count > REFAULTS_BEFORE_ESCALATING && level < 1) {
        level = count > 2 * REFAULTS_BEFORE_ESCALATING ? 2 : 1;
    }
    if (!after_start && level == 1) {
        level = 2;   /* behind is what stood at start: one level up is the default */
    }
    const struct sigaction *to = level == 0   ? &guard_behind[k]
                                 : level == 1 ? &guard_at_start[k]
                                              : &guard_default;
    INC(&g.c.signals_forwarded, 1);
    if (is_fault) {
        STORE(&last_fwd_addr, addr);
        STORE(&last_fwd_count, count);
        STORE(&last_fwd_tid, tid);
    }
    deliver_to(to, sig, si, uc);
    if (is_fault) {
        STORE(&last_fwd_return_ns, clock_ns(CLOCK_MONOTONIC));
    }
    if (slot < FWD_SLOTS) {
        if (nested) {
            fwd_level[slot]--;
        }
        else {
            STORE(&fwd_tid[slot], 0);
        }
    }
    errno = saved_errno;
}

static int
guard_in_front(int sig)
{
    struct sigaction cur;
    return sigaction(sig, NULL, &cur) == 0 && (cur.sa_flags & SA_SIGINFO)
           && cur.sa_sigaction == fault_guard;
}

/* GIL held. Puts the guard in front of whatever handles SIGSEGV/SIGBUS now; called at
   start() and by every drain. */
static void
fault_guard_install(void)
{
    guard_default.sa_handler = SIG_DFL;
    sigemptyset(&guard_default.sa_mask);
    for (int k = 0; k < 2; k++) {
        int sig = guard_sigs[k];
        if (guard_in_front(sig)) {
            continue;
        }
        struct sigaction sa, old;
        memset(&sa, 0, sizeof(sa));
        sa.sa_sigaction = fault_guard;
        /* NODEFER: a siglongjmp out of it leaves nothing blocked; ONSTACK: a stack
           overflow still reaches faulthandler on its alternate stack */
        sa.sa_flags = SA_SIGINFO | SA_NODEFER | SA_ONSTACK;
        sigemptyset(&sa.sa_mask);
        if (sigaction(sig, NULL, &old) != 0) {
            continue;
        }
        /* saved before the guard can run and use them; `at_start` once per process:
           what stood before the guard ever existed cannot lead back to it */
        guard_behind[k] = old;
        if (!guard_ever) {
            guard_at_start[k] = old;
        }
        if (sigaction(sig, &sa, NULL) == 0) {
            INC(&g.c.guard_installs, 1);
        }
    }
    guard_ever = 1;
}

/* At stop(): the guard steps out if it is in front; a handler installed after it keeps
   the guard as its previous one, and the guard then forwards as above. */
static void
fault_guard_remove(void)
{
    for (int k = 0; k < 2; k++) {
        if (guard_in_front(guard_sigs[k])) {
            sigaction(guard_sigs[k], &guard_behind[k], NULL);
        }
    }
}

/* The thread state attached on thread tid right now, found without the table: the
   GIL's last holder (Python/ceval_gil.c take_gil sets it), if it is bound to tid and
   attached. For detached C-thread entries (see detach_slot). May fault (guarded): the
   last holder may have been freed since. */
static PyThreadState *
attached_tstate_of(int tid)
{
#if PY313
    PyThreadState *t = _PyRuntime.interpreters.main->ceval.gil->last_holder;
#elif PY312
    PyThreadState *t =
        (PyThreadState *)_PyRuntime.interpreters.main->ceval.gil->last_holder._value;
#else
    PyThreadState *t = (PyThreadState *)_PyRuntime.ceval.gil.last_holder._value;
#endif
    if (t == NULL || (uintptr_t)t % sizeof(void *) != 0 || (int)t->native_thread_id != tid
        || t->interp != _PyRuntime.interpreters.main || !tstate_attached(t)) {
        return NULL;   /* another thread's, a subinterpreter's (never collected for) */
    }
#if PY312
    /* deleting the current thread state clears neither _status.active nor state, and
       last_holder keeps pointing at it (_PyThreadState_DeleteCurrent) */
    if (t->_status.cleared || t->_status.finalized) {
        return NULL;
    }
#endif
    return t;
}

/*
 * The entry window. 3.11 and 3.12 publish the new _PyCFrame (tstate->cframe) before
 * they set its current_frame (_PyEval_EvalFrameDefault's prologue,
 * https://github.com/python/cpython/blob/v3.11.2/Python/ceval.c#L1664-L1672; 3.12 the
 * same with its entry frame between), so for those instructions newest_frame() reads
 * whatever the C stack slot held: often the frame that the previous entry at the same
 * C depth ran. For a generator resumed again and again from C (next(), send(), throw(),
 * close()) that is the generator's own frame. 3.11's gen_send_ex2 links it to the
 * caller before the call
 * (https://github.com/python/cpython/blob/v3.11.2/Objects/genobject.c#L208), so that
 * walk passes and is the thread's stack; 3.12's leaves it as YIELD_VALUE left it,
 * unlinked (previous NULL), which passes every check but the last (the data stack
 * below it is not used up); other stale words fail earlier or fault. The soak's
 * generator thread lost 3-13 samples a run of 5300 there on 3.12 (the soak test's -s
 * line prints them). What the thread runs
 * in the window is the caller's chain, the previous cframe's current_frame, plus the
 * frame being entered (on the data stack a gap frame the checks allow, or a
 * generator's, off it): so when the newest chain fails or faults, the chain from
 * tstate->cframe->previous->current_frame is walked instead, under the same checks and
 * the same guard, and the stack it gives (at most the entered frame short) is counted
 * in stacks_entry_window. 3.13+ link the new frame before they publish it
 * (tstate->current_frame): no window, no second walk.
 *
 * That `previous` is itself stale in the window on the builds checked: GCC stores the
 * new cframe's current_frame and previous together, in one 16-byte store after
 * tstate->cframe is published (objdump -d --disassemble=_PyEval_EvalFrameDefault on
 * pyenv's 3.11.7 and 3.12.1 libpython). So the walk reads the caller's chain only when
 * the slot still names the same caller's cframe, as it does for a call site that
 * enters at the same C depth again and again (the soak's generator loop). A slot that
 * names another, older live cframe gives that one's chain, which passes only if every
 * frame between them is off the data stack (generators resumed from C): then the kept
 * stack lacks those generator frames. Anything else fails the checks or faults under
 * the guard, and the sample is dropped as before.
 */
static _PyInterpreterFrame *
walk_start(PyThreadState *ts, int from_caller)
{
#if PY313
    (void)from_caller;
    return ts->current_frame;
#else
    if (!from_caller) {
        return newest_frame(ts);
    }
    _PyCFrame *cf = ts->cframe;
    return cf != NULL && cf->previous != NULL ? cf->previous->current_frame : NULL;
#endif
}

/* 1 if a failed walk may be the entry window (above) and worth a walk of the caller's
   chain. The cframes are read in that walk, under the guard: in the window the new
   cframe's `previous` is not yet stored (above). */
static inline int
entry_window_possible(PyThreadState *ts)
{
#if PY313
    (void)ts;
    return 0;
#else
    return ts != NULL;
#endif
}

/* One guarded walk, from the newest frame or (from_caller) the entry window's caller:
   the count, -1 (untrusted), -2 (a fault, caught) or -3 (*ts was NULL and no attached
   thread state was found; otherwise *ts is set to the one found). */
static __attribute__((noinline)) int
guarded_walk(thread_entry *e, int tid, PyThreadState **ts, int from_caller, uint64_t *out,
             uint64_t pos, int limit, int *truncated)
{
    sigjmp_buf jb;
    e->walk_jb = &jb;
    if (sigsetjmp(jb, 0) != 0) {
        return -2;
    }
    STORE(&e->walk_tid, tid);
    if (*ts == NULL) {
        *ts = attached_tstate_of(tid);
        if (*ts == NULL) {
            STORE(&e->walk_tid, 0);
            return -3;
        }
    }
    /* Both: gc_now goes stale if the "stop" call never comes (a program that empties
       gc.callbacks during a collection, a stop() inside one). */
    int gc_on = LOAD(&gc_now.tid) == tid && (*ts)->interp->gc.collecting;
    int n = walk_frames(*ts, walk_start(*ts, from_caller), out, pos, limit, truncated, gc_on,
                        gc_on ? LOAD(&gc_now.frame) : NULL);
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

    PyThreadState *ts = e != NULL ? LOAD(&e->tstate) : NULL;
    int truncated = 0;
    int depth = 0;
    int walk_from_caller = 0;
    if (ts == NULL && !(e != NULL && e->c_thread)) {
        flags |= F_NO_TSTATE;
    }
    else {
        if (!guard_in_front(SIGSEGV) || !guard_in_front(SIGBUS)) {
            /* a handler installed after start() would see a walk fault first (see
               "the fault guard"): no walk until the reader's drain restores the guard */
            INC(&g.c.stacks_unguarded, 1);
            flags |= F_UNTRUSTED;
        }
        else {
            int looked_up = ts == NULL;
            depth = guarded_walk(e, tid, &ts, 0, NULL, 0, g.max_depth, &truncated);
            if ((depth == -1 || depth == -2) && entry_window_possible(ts)) {
                int from_caller = guarded_walk(e, tid, &ts, 1, NULL, 0, g.max_depth,
                                               &truncated);
                if (from_caller >= 0) {
                    depth = from_caller;
                    walk_from_caller = 1;
                    INC(&g.c.stacks_entry_window, 1);
                }
            }
            if (depth == -3) {
                flags |= F_NO_TSTATE;   /* a C thread between two calls into Python */
                depth = 0;
            }
            else if (depth < 0) {
                INC(depth == -2 ? &g.c.stack_walk_faults : &g.c.stacks_untrusted, 1);
                flags |= F_UNTRUSTED;
                depth = 0;
                truncated = 0;
            }
            if (looked_up && ts != NULL) {
                INC(&g.c.gilstate_lookups, 1);   /* found attached: it runs Python */
            }
        }
        if (!(flags & F_NO_TSTATE) && ts != NULL) {
            flags |= tstate_attached(ts) ? F_PYTHON : F_NATIVE;
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
    if (LOAD(&stall_tid) == tid && __atomic_exchange_n(&stall_tid, 0, __ATOMIC_ACQ_REL) == tid) {
        /* test hook: a writer stalled between reserving and publishing */
        struct timespec nap = {stall_ns / 1000000000LL, stall_ns % 1000000000LL};
        while (nanosleep(&nap, &nap) != 0 && errno == EINTR) {
        }
    }
    if (depth > 0) {
        int ignored = 0;   /* pass one decided `truncated`; this pass stops at depth */
        int n2 = guarded_walk(e, tid, &ts, walk_from_caller, buf, w + HDR_WORDS, depth,
                              &ignored);
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
 * The graveyard: the dealloc hook's guarantee when the ring cannot be emptied.
 *
 * Before a code object is freed, every record that may name it must leave the ring
 * (ring_collect below). Records are taken in order, and one reserved but not yet
 * published blocks those after it: its writer is a signal handler on another thread,
 * which takes no lock and normally finishes within microseconds, but a stalled thread
 * (CPU quota, a debugger, SIGSTOP of one thread by ptrace) can sit there for good, and
 * the hook must not hang the program waiting. So the hook waits a bounded time
 * (STALL_WAIT_NS, and not at all again for the same stuck record), and then buries the
 * dying object: a grave holds its address, the ring position `before` which a record
 * may name it, and strong references to its name and file. Records reserved after that
 * position cannot name it: a handler writes only code objects of the frames of the
 * thread it interrupted, which hold strong references to them, and the one thread whose
 * frame may be clearing this object is the one running this hook (frames are unlinked
 * before they are cleared, GH-99729, and a handler on this thread runs to completion
 * before the hook goes on). A later collect names a code word that matches a grave
 * (address and position) from the grave, never from the freed memory. Graves are
 * released once the reader has passed their position. If the graveyard is full, every
 * code word reserved before the newest burial is recorded as unknown: still never read.
 * The same applies when staging cannot grow (out of memory).
 */
#define STALL_WAIT_NS 1000000000LL
#define GRAVE_SLOTS 256

typedef struct {
    PyObject *addr;
    uint64_t before;
    PyObject *name, *file;
    int firstline;
} grave_t;

static struct {
    grave_t e[GRAVE_SLOTS];
    int n;
    uint64_t stuck_at;        /* a record known not to publish, or UINT64_MAX */
    uint64_t unread_before;   /* graveyard full: code words before this stay unread */
} yard = {.stuck_at = UINT64_MAX};

static void
bury(PyCodeObject *dying, uint64_t before)
{
    if (yard.n < GRAVE_SLOTS) {
        grave_t *gr = &yard.e[yard.n++];
        gr->addr = (PyObject *)dying;
        gr->before = before;
        gr->name = Py_NewRef(dying->co_qualname);
        gr->file = Py_NewRef(dying->co_filename);
        gr->firstline = dying->co_firstlineno;
    }
    else if (before > yard.unread_before) {
        yard.unread_before = before;
    }
    INC(&g.c.code_buried, 1);
}

/* Releases the graves no record left in the ring can match. */
static void
yard_release(uint64_t r)
{
    int k = 0;
    for (int i = 0; i < yard.n; i++) {
        if (yard.e[i].before <= r) {
            Py_DECREF(yard.e[i].name);   /* strings: no code can run */
            Py_DECREF(yard.e[i].file);
        }
        else {
            yard.e[k++] = yard.e[i];
        }
    }
    yard.n = k;
    if (yard.stuck_at != UINT64_MAX && yard.stuck_at < r) {
        yard.stuck_at = UINT64_MAX;
    }
}

static const grave_t *
grave_of(PyObject *co, uint64_t pos)
{
    for (int i = 0; i < yard.n; i++) {
        if (yard.e[i].addr == co && pos < yard.e[i].before) {
            return &yard.e[i];
        }
    }
    return NULL;
}

/*
 * Moves every reserved record from the ring into staging. `dying` is a code object
 * inside its tp_dealloc (refcount 0, fields intact) or NULL. Only Py_INCREF and
 * PyMem_Raw*: no Python code can run, so this cannot re-enter itself.
 * Waits a bounded time for a record reserved but not yet published; if `dying` is
 * set and the ring could not be emptied, buries it (see "The graveyard").
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
    int emptied = 1;
    while (p < wend) {
        uint64_t h = LOAD(&buf[p % cap]);
        uint64_t len = h & 0xFFFF;
        /* Published iff the header names this position and a sane length: at p == 0
           an all-zero slot would otherwise pass the position test. */
        if ((h >> 16) != (p & SEQ_MASK) || len < HDR_WORDS || len > wend - p) {
            /* reserved, not yet published */
            long long now = clock_ns(CLOCK_MONOTONIC);
            if (spin_deadline < 0) {
                spin_deadline = now + (p == yard.stuck_at ? 0 : STALL_WAIT_NS);
            }
            if (now >= spin_deadline) {
                if (p != yard.stuck_at) {
                    INC(&g.c.reader_stalls, 1);
                }
                yard.stuck_at = p;
                emptied = 0;
                break;
            }
            sched_yield();
            continue;
        }
        spin_deadline = -1;
        uint64_t w1 = buf[(p + 1) % cap];
        int depth = (int)((len - HDR_WORDS) / 2); /* == the depth field, by construction */
        if (stg_reserve((size_t)depth) < 0) {
            /* out of memory: the record stays for a later collect */
            INC(&g.c.reader_stalls, 1);
            emptied = 0;
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
            const grave_t *gr =
                co != NULL && cw != GC_MARK && yard.n > 0 ? grave_of(co, p) : NULL;
            if (co == NULL) {
                sf->kind = SF_UNKNOWN; /* already counted by the handler */
            }
            else if (cw == GC_MARK) {
                sf->kind = SF_GC;
            }
            else if (gr != NULL) {
                /* freed while this record waited behind a stalled one */
                sf->kind = SF_DEAD;
                sf->name = Py_NewRef(gr->name);
                sf->file = Py_NewRef(gr->file);
                sf->firstline = gr->firstline;
                sf->line = gr->firstline;   /* the line table went with the object */
                INC(&g.c.dead_code_frames, 1);
                INC(&g.c.dead_code_after_stall, 1);
            }
            else if (p < yard.unread_before) {
                sf->kind = SF_UNKNOWN;   /* the graveyard overflowed: never dereferenced */
                INC(&g.c.unknown_frames, 1);
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
    if (yard.n > 0 || yard.stuck_at != UINT64_MAX) {
        yard_release(p);
    }
    if (!emptied && dying != NULL) {
        /* every record that may name `dying` was reserved before now */
        bury(dying, LOAD(&g.w));
    }
}

static void
hooked_code_dealloc(PyObject *op)
{
    /* Before the memory goes: take every record that may name this code object (or
       bury it, see "The graveyard"). No frame of the chain holds it any more (see
       "Trusting the frame chain"), so no handler can record it from now on. */
    /* Only the main interpreter's threads are sampled, so only its code objects are
       named in records; a subinterpreter (3.12+ may have its own GIL and run at the
       same time as the reader) must not touch the ring or staging. */
    if (g.ring != NULL && LOAD(&g.r) != LOAD(&g.w)
        && PyInterpreterState_Get() == PyInterpreterState_Main()) {
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

static void detach_slot(unsigned slot, uint32_t gen, uint32_t epoch);

static void
sentinel_dealloc(PyObject *self)
{
    SentinelObject *s = (SentinelObject *)self;
    detach_slot(s->slot, s->gen, s->epoch);
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

/* A tomb followed by an empty slot ends no probe chain (linear probing: every chain
   through it would run on into the empty slot): it becomes empty again, and so may the
   tombs before it. Without this, after TABLE_SIZE thread lifetimes every miss (a
   signal on an unregistered thread) would probe the whole table in the handler.
   GIL held (the only writer); handlers probing meanwhile see the same answers. */
static void
table_reclaim(unsigned slot)
{
    for (unsigned k = 0; k < TABLE_SIZE; k++, slot = (slot - 1) & (TABLE_SIZE - 1)) {
        if (LOAD(&table[slot].tid) != TID_TOMB
            || LOAD(&table[(slot + 1) & (TABLE_SIZE - 1)].tid) != TID_EMPTY) {
            return;
        }
        STORE(&table[slot].tid, TID_EMPTY);
    }
}

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
    /* Unpublish first: from here no handler finds the entry (one already inside it
       finishes with the thread state, which is still valid: see the callers). */
    STORE(&e->tid, TID_TOMB);
    thread_timer_delete(e);
    if (e->profiled && e->cpu_start_ns >= 0) {
        long long now = thread_cpu_of(tid);
        if (now < 0) {
            now = e->cpu_last_ns;   /* exited: its CPU as of the last scan */
        }
        if (now >= e->cpu_start_ns) {
            g.cpu_done_ns += now - e->cpu_start_ns;
        }
    }
    e->tstate = NULL;
    INC(&g.c.threads_unregistered, 1);
    table_reclaim(slot);
}

/*
 * A thread state is being cleared. A thread Python started ends with it: unregistered,
 * timer deleted. A thread C code runs Python on (PyGILState_Ensure/Release around each
 * call, as ctypes callbacks and many C libraries do) gets a new thread state per call,
 * and a scan every reader period would find each one too late to sample it: its entry
 * stays, with its timer, detached (no thread state); the handler then finds the thread
 * state attached at that moment through the GIL's last holder (attached_tstate_of), and
 * the next scan attaches the current one, or unregisters the entry once the thread has
 * exited (tgkill(tid, 0) says ESRCH).
 */
static void
detach_slot(unsigned slot, uint32_t gen, uint32_t epoch)
{
    if (slot < TABLE_SIZE && epoch == g.epoch && LOAD(&table[slot].tid) > 0
        && table[slot].gen == gen && table[slot].c_thread) {
        STORE(&table[slot].tstate, NULL);
        return;
    }
    unregister_slot(slot, gen, epoch);
}

/* The runtime's lock on the interpreters' thread lists (HEAD_LOCK in Python/pystate.c):
   thread states are linked and unlinked under it, by threads that may not hold the GIL
   (PyThreadState_New from PyGILState_Ensure, PyThreadState_Delete). */
static void
head_lock(void)
{
#if PY313
    /* Never PyMutex_Lock here: it releases the GIL while it waits, and then owns the
       head lock while it waits for the GIL, while the GIL's holder may need the head
       lock without releasing the GIL, as CPython's own HEAD_LOCK takes it
       (_Py_LOCK_DONT_DETACH, Python/pystate.c): a deadlock. So: take the lock bit with
       a compare-and-swap, keeping the GIL; the holder never waits for the GIL. */
    uint8_t *bits = &_PyRuntime.interpreters.mutex._bits;
    for (;;) {
        uint8_t v = __atomic_load_n(bits, __ATOMIC_RELAXED);
        if (!(v & _Py_LOCKED)
            && __atomic_compare_exchange_n(bits, &v, (uint8_t)(v | _Py_LOCKED), 0,
                                           __ATOMIC_ACQUIRE, __ATOMIC_RELAXED)) {
            return;
        }
        sched_yield();
    }
#else
    PyThread_acquire_lock(_PyRuntime.interpreters.mutex, WAIT_LOCK);
#endif
}

static void
head_unlock(void)
{
#if PY313
    PyMutex_Unlock(&_PyRuntime.interpreters.mutex);
#else
    PyThread_release_lock(_PyRuntime.interpreters.mutex);
#endif
}

static inline int
tstate_cleared(PyThreadState *ts)
{
#if PY312
    return ts->_status.cleared;
#else
    (void)ts;
    return 0;   /* 3.11 keeps no flag; see scan_threads_impl */
#endif
}

/* Head lock held. 1 if ts is linked in the interpreter's list, bound to tid, not
   cleared. Compares pointers only: ts itself is not read unless it is linked. */
static int
tstate_live_locked(PyInterpreterState *interp, PyThreadState *ts, int tid)
{
    for (PyThreadState *t = interp->threads.head; t != NULL; t = t->next) {
        if (t == ts) {
            return (int)t->native_thread_id == tid && !tstate_cleared(t);
        }
    }
    return 0;
}

/* Test hook (registration_window): a callable run inside the registration window that
   Python may use (see register_tstate), as a finalizer could. */
static PyObject *registration_probe;

/*
 * GIL held. Registers (tid, ts); returns 1 if added, 0 if not (already there, or given
 * up: sampling stopped meanwhile, ts gone), -1 with an exception set on error.
 * `own`: the call comes from the thread itself (start(), the thread hook), whose word
 * on which thread state is current is final; a scan's is not (a second live thread
 * state with the same native id, like 3.11's preallocated one that still carries its
 * creator's id, or PyThreadState_New on a thread that has one, never displaces a
 * registered one that is still linked).
 *
 * Registration needs Python (the sentinel goes into the thread state's dict), and any
 * allocation may run the GC and so finalizers, which may stop the sampler, register
 * threads, or (releasing the GIL) let threads exit. So the Python part comes first and
 * nothing is published until it is over; then, with no Python call until the timer is
 * armed, everything it may have changed is checked again: the sampler still sampling
 * in the same epoch, the tid still unregistered, and (for a scan) ts still linked,
 * bound to tid, not cleared, and holding the dict the sentinel went into. From there
 * on the GIL is held without a break, so ts cannot be cleared (that needs the GIL)
 * before the sentinel is live.
 */
static int
register_tstate(PyThreadState *ts, int tid, int profiled, int own)
{
    PyInterpreterState *interp = PyInterpreterState_Get();
    thread_entry *old = table_find(tid);
    if (old != NULL && old->tstate == ts) {
        if (own) {
            old->c_thread = 0;   /* a scan found it first; it is a thread Python runs */
        }
        return 0;
    }
    uint32_t epoch = g.epoch;

    /* Allocations first (they may run finalizers, which may let a thread exit and free
       its thread state); then, for a thread state that is not the caller's, ts is
       read only under the head lock after checking it is still linked. */
    SentinelObject *s = PyObject_New(SentinelObject, &SentinelType);
    if (s == NULL) {
        return -1;
    }
    s->epoch = 0;   /* inert until published below: epochs start at 1 */
    s->gen = 0;
    s->slot = 0;
    PyObject *spare = PyDict_New();
    if (spare == NULL) {
        Py_DECREF(s);
        return -1;
    }
    PyObject *dict = NULL;
    if (!own) {
        head_lock();
    }
    if (own || tstate_live_locked(interp, ts, tid)) {
        if (ts->dict == NULL) {
            ts->dict = spare;   /* the thread state's reference */
            spare = NULL;
        }
        dict = Py_NewRef(ts->dict);
    }
    if (!own) {
        head_unlock();
    }
    Py_XDECREF(spare);   /* an empty dict: nothing runs */
    if (dict == NULL) {
        Py_DECREF(s);
        return 0;   /* gone before it could be registered */
    }
    int rc = PyDict_SetItem(dict, sentinel_key, (PyObject *)s);
    if (rc == 0 && registration_probe != NULL) {
        PyObject *r = PyObject_CallNoArgs(registration_probe);
        if (r == NULL) {
            PyErr_WriteUnraisable(registration_probe);
        }
        Py_XDECREF(r);
    }
    /* ---- no Python from here on ---- */
    Py_DECREF(dict);   /* the thread state's reference keeps it */
    if (rc < 0) {
        Py_DECREF(s);
        return -1;
    }
    if (LOAD(&g.mode) != MODE_SAMPLE || g.epoch != epoch) {
        Py_DECREF(s);   /* stays inert in the dict */
        return 0;
    }
    if (!own) {
        head_lock();
        int live = tstate_live_locked(interp, ts, tid) && ts->dict == dict;
        head_unlock();
        if (!live) {
            Py_DECREF(s);
            return 0;
        }
    }
    old = table_find(tid);
    if (old != NULL && !own && old->c_thread && LOAD(&old->tstate) == NULL) {
        /* a detached C thread's next thread state: same entry, same timer */
        old->gen++;
        s->epoch = epoch;
        s->gen = old->gen;
        s->slot = (unsigned)(old - table);
        Py_DECREF(s);
        STORE(&old->tstate, ts);
        return 1;
    }
    if (old != NULL) {
        int keep_old = 0;
        if (!own && old->tstate != ts) {
            head_lock();
            keep_old = tstate_live_locked(interp, old->tstate, tid);
            head_unlock();
        }
        if (keep_old) {
            Py_DECREF(s);
            return 0;
        }
        /* the same thread state registered meanwhile (its sentinel was just replaced
           by ours), or the tid's previous thread state is gone */
        unregister_slot((unsigned)(old - table), old->gen, g.epoch);
    }
    unsigned slot = 0;
    thread_entry *e = table_free_slot(tid, &slot);
    if (e == NULL) {
        INC(&g.c.table_full, 1);
        Py_DECREF(s);
        return 0;
    }
    e->gen++;
    e->tstate = ts;
    e->c_thread = !own;
    e->profiled = profiled;
    e->has_timer = 0;
    e->perf_fd = -1;
    e->cpu_start_ns = thread_cpu_of(tid);
    e->cpu_last_ns = e->cpu_start_ns;
    e->native = 0;
    e->comm[0] = 0;
    s->epoch = epoch;
    s->gen = e->gen;
    s->slot = slot;
    Py_DECREF(s);   /* the dict holds it */
    STORE(&e->tid, tid); /* publish */
    INC(&g.c.threads_registered, 1);
    if (profiled && (g.timer_kinds & TIMER_THREAD)) {
        thread_timer_create(e, slot);
    }
    else if (profiled && (g.timer_kinds & TIMER_PERF)) {
        thread_perf_create(e);
    }
    return 1;
}

/*
 * Registers thread states the sampler does not know (threads created by C code), and
 * drops entries whose thread state has left the list. The list is read under the
 * runtime's head lock, with no Python call and no allocation; registration (Python)
 * happens after, and checks each candidate again under the lock (register_tstate).
 */
#define SCAN_BATCH 256

/*
 * Threads the interpreter did not create (an OpenBLAS pool, a C library's workers) have
 * no thread state, so neither start(), the thread hook nor the scan above registers
 * them, and without an entry they get no per-thread timer: their CPU went unsampled and
 * uncounted. Every scan (GIL held, never in the handler) lists /proc/self/task and
 * registers each unknown tid as a native entry: no thread state, c_thread (so the
 * handler looks for an attached thread state through the GIL's last holder, and a later
 * PyGILState_Ensure on it attaches its thread state to the same entry and timer, see
 * register_tstate), profiled (its CPU counts, and it gets its own timer: a per-thread
 * CPU clock or perf event can target any thread of the process, MAKE_THREAD_CPUCLOCK
 * and perf_event_open(pid = tid)). Its samples have no Python stack (F_NO_TSTATE); the
 * reader labels them with the thread's name, read here from /proc/self/task/TID/comm.
 * An exited one is unregistered by the backstop in scan_threads_impl (tgkill(tid, 0)
 * says ESRCH), deleting its timer; its CPU counts up to the last scan that saw it alive
 * (cpu_last_ns), so up to one reader period of a dying thread's CPU is not counted.
 * With the process timer, the entry stops "both" from accepting SI_KERNEL samples on a
 * thread that has its own timer, and puts the thread's CPU in cpu_ns: before, those
 * samples counted with no CPU behind them (capture above 100%).
 */
/* Leaves `out` as it was if the thread is gone (a name read before stays). */
static void
read_comm(int tid, char *out, size_t size)
{
    char path[64], name[64];
    PyOS_snprintf(path, sizeof(path), "/proc/self/task/%d/comm", tid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return;
    }
    ssize_t n = read(fd, name, sizeof(name) - 1);
    close(fd);
    if (n <= 0) {
        return;
    }
    name[n] = 0;
    if (name[n - 1] == '\n') {
        name[n - 1] = 0;
    }
    PyOS_snprintf(out, size, "%s", name);
}

static void
scan_native_threads(void)
{
    if (LOAD(&g.mode) != MODE_SAMPLE) {
        return;
    }
    DIR *d = opendir("/proc/self/task");
    if (d == NULL) {
        return;
    }
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        char *end = NULL;
        long v = strtol(de->d_name, &end, 10);
        if (end == de->d_name || *end != 0 || v <= 0 || v > INT32_MAX) {
            continue;
        }
        int tid = (int)v;
        thread_entry *known = table_find(tid);
        if (known != NULL) {
            if (known->native) {
                /* read again: a thread names itself after it starts, and the watch
                   (py_watch_threads) may have had it registered before that */
                read_comm(tid, known->comm, sizeof(known->comm));
            }
            continue;
        }
        unsigned slot = 0;
        thread_entry *e = table_free_slot(tid, &slot);
        if (e == NULL) {
            INC(&g.c.table_full, 1);
            break;
        }
        e->gen++;
        e->tstate = NULL;
        e->c_thread = 1;
        e->native = 1;
        e->profiled = 1;
        e->has_timer = 0;
        e->perf_fd = -1;
        e->cpu_start_ns = thread_cpu_of(tid);
        e->cpu_last_ns = e->cpu_start_ns;
        if (e->cpu_start_ns < 0) {
            continue;   /* exited since the listing: slot left unpublished */
        }
        read_comm(tid, e->comm, sizeof(e->comm));
        STORE(&e->tid, tid); /* publish */
        INC(&g.c.threads_registered, 1);
        INC(&g.c.native_threads, 1);
        if (g.timer_kinds & TIMER_THREAD) {
            thread_timer_create(e, slot);
        }
        else if (g.timer_kinds & TIMER_PERF) {
            thread_perf_create(e);
        }
    }
    closedir(d);
}

static int
scan_threads_impl(void)
{
    PyInterpreterState *interp = PyInterpreterState_Get();
    /* on the stack: a registration may run a nested scan (a finalizer) */
    PyThreadState *cand_ts[SCAN_BATCH];
    int cand_tid[SCAN_BATCH];
    unsigned char listed[TABLE_SIZE];
    int ncand = 0;
    int unbound = 0;   /* thread states not (yet) bound to their own thread */
    memset(listed, 0, sizeof(listed));
    head_lock();
    for (PyThreadState *ts = interp->threads.head; ts != NULL; ts = ts->next) {
        int tid = (int)ts->native_thread_id;
        thread_entry *e = tid > 0 ? table_find(tid) : NULL;
        if (e != NULL && e->tstate == ts) {
            listed[e - table] = 1;
        }
        else if (tid <= 0 && !tstate_cleared(ts)) {
            unbound++;   /* 3.12+: a new thread's state before _PyThreadState_Bind */
        }
        else if (tid > 0 && !tstate_cleared(ts) && ncand < SCAN_BATCH) {
            cand_ts[ncand] = ts;
            cand_tid[ncand] = tid;
            ncand++;
        }
    }
    head_unlock();
    /* perf events the program closed (os.closerange): that thread's sampling stopped.
       Counted, never touched again (the number may be the program's file now). */
    if (g.timer_kinds & TIMER_PERF) {
        for (unsigned i = 0; i < TABLE_SIZE; i++) {
            thread_entry *e = &table[i];
            if (LOAD(&e->tid) > 0 && LOAD(&e->has_timer) && !perf_fd_ours(e)) {
                STORE(&e->has_timer, 0);
                e->perf_fd = -1;
                INC(&g.c.perf_events_closed, 1);
                INC(&g.c.timers_deleted, 1);
            }
        }
    }
    /* Backstop: entries whose thread state left the list without clearing its dict. */
    for (unsigned i = 0; i < TABLE_SIZE; i++) {
        int tid = LOAD(&table[i].tid);
        if (tid > 0 && table[i].profiled) {
            long long now = thread_cpu_of(tid);
            if (now >= 0) {
                table[i].cpu_last_ns = now;
            }
        }
        if (tid <= 0 || listed[i]) {
            continue;
        }
        if (table[i].c_thread && LOAD(&table[i].tstate) == NULL
            && !(syscall(SYS_tgkill, (long)getpid(), (long)tid, 0L) != 0 && errno == ESRCH)) {
            continue;   /* detached, and the thread lives on */
        }
        unregister_slot(i, table[i].gen, g.epoch);
    }
    int added = 0;
    for (int k = 0; k < ncand; k++) {
        /* Two unregistered thread states with one tid: one of them carries its
           creator's id (3.11 preallocates a new thread's state in its parent). Neither
           is taken until the new thread has bound its own. */
        int twins = 0;
        for (int j = 0; j < ncand; j++) {
            twins += j != k && cand_tid[j] == cand_tid[k];
        }
        if (twins) {
            unbound++;
            continue;
        }
        int rc = register_tstate(cand_ts[k], cand_tid[k], 1, 0);
        if (rc < 0) {
            return -1;
        }
        unbound += rc == 0;   /* 3.11: still carrying its creator's tid, among others */
        added += rc;
    }
    /* A new Python thread is listed in /proc/self/task before its thread state is bound
       to it: registered now, it would pass for a native thread. The next scan (or the
       thread's own registration) settles it. */
    if (unbound == 0) {
        scan_native_threads();
    }
    return added;
}

/* ---- fork -------------------------------------------------------------------- */

/*
 * fork() with profiling on. A signal pending and unblocked on the forking thread makes
 * the kernel abandon a clone() and restart it (kernel/fork.c, copy_process:
 * -ERESTARTNOINTR); kernels that checked after the copy restarted a large process's
 * fork for ever under a timer faster than the copy (gperftools issue 278), current ones
 * check before it. So the prepare handler blocks SIGPROF on the forking thread, and
 * the parent and child handlers unblock it again, each on its own thread and only if
 * it blocked it (the child starts with no pending signal and no
 * timer: fork(2), timer_create(2), setitimer(2)). Nothing is disarmed: the process
 * timer's expiries go to the other threads or wait, pending, until the unblock, and the
 * forking thread's own timer likewise (further expiries of a blocked timer signal are
 * counted as overruns). Disarming and re-arming instead would lose samples on every
 * fork: setitimer adds a tick to the value it is given (kernel/time/itimer.c,
 * set_cpu_itimer) and an expiry that waits for its tick is skipped by timer_settime
 * (posix-cpu-timers.c, bump_cpu_timer); a program forking every 5 ms lost a fifth of
 * its samples that way, and a third with the full period re-armed.
 */
/* Per thread: C code may fork on several threads at once (glibc runs the handlers
   without a lock), and each must undo only its own block. Not a signal handler, so the
   thread-local may be allocated on first use. */
static __thread int fork_blocked_sigprof;

static void
atfork_prepare(void)
{
    fork_blocked_sigprof = 0;
    if (LOAD(&g.mode) == MODE_OFF) {
        return;
    }
    sigset_t prof, old;
    sigemptyset(&prof);
    sigaddset(&prof, SIGPROF);
    if (pthread_sigmask(SIG_BLOCK, &prof, &old) == 0 && !sigismember(&old, SIGPROF)) {
        fork_blocked_sigprof = 1;
    }
}

static void
fork_unblock_sigprof(void)
{
    if (fork_blocked_sigprof) {
        fork_blocked_sigprof = 0;
        sigset_t prof;
        sigemptyset(&prof);
        sigaddset(&prof, SIGPROF);
        pthread_sigmask(SIG_UNBLOCK, &prof, NULL);
    }
}

static void
atfork_parent(void)
{
    fork_unblock_sigprof();
}

static void
atfork_child(void)
{
    fork_unblock_sigprof();
    /* The child has no timers (timer_create(2), setitimer(2)) and one thread. It does
       hold copies of the perf event fds: closed here, if they are still ours (the
       events belong to the parent's threads and go on there). */
    if (g.timer_kinds & TIMER_PERF) {
        for (unsigned i = 0; i < TABLE_SIZE; i++) {
            if (table[i].tid > 0 && table[i].has_timer && perf_fd_ours(&table[i])) {
                close(table[i].perf_fd);
            }
        }
    }
    g.mode = MODE_OFF;
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
    yard.n = 0;   /* the graves' references stay with the parent's objects: leaked here */
    yard.stuck_at = UINT64_MAX;
    yard.unread_before = 0;
}

/* ---- signal disposition ------------------------------------------------------ */

static struct sigaction sigprof_original;

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
    struct sigaction before;
    if (sigaction(SIGPROF, &sa, &before) != 0) {
        PyErr_SetFromErrno(PyExc_OSError);
        return -1;
    }
    if (!g.handler_installed) {
        sigprof_original = before;   /* what an exec'd program must find (exec_prepare) */
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

/* Waits for handlers in flight to leave; a handler takes no lock and finishes within
   microseconds, but one on a stalled thread (see "The graveyard") may not, and stop()
   or an exec must not hang on it: after QUIESCE_WAIT_NS the wait is given up and
   counted (quiesce_abandoned). Such a handler can still publish a record later; the
   next start() resets the ring, whose positions its record no longer matches. */
#define QUIESCE_WAIT_NS 2000000000LL

static void
wait_quiescent(void)
{
    long long deadline = -1;
    while (__atomic_load_n(&g.in_flight, __ATOMIC_SEQ_CST) != 0) {
        long long now = clock_ns(CLOCK_MONOTONIC);
        if (deadline < 0) {
            deadline = now + QUIESCE_WAIT_NS;
        }
        else if (now > deadline) {
            INC(&g.c.quiesce_abandoned, 1);
            return;
        }
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
    STORE(&gc_now.tid, 0);
    memset(watch_reported, 0, sizeof(watch_reported));
    memset(&g.c, 0, sizeof(g.c));
    g.taken_over = 0;
    exec_saved.active = 0;
    yard_release(UINT64_MAX);   /* positions restart at 0 */
    yard.stuck_at = UINT64_MAX;
    yard.unread_before = 0;
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
        max_depth > MAX_DEPTH_CAP) {
        PyErr_SetString(PyExc_ValueError, "bad sampler parameters");
        return NULL;
    }
    if (words < HDR_WORDS + 2LL * max_depth) {
        PyErr_Format(PyExc_ValueError,
                     "buffer_words must hold one record of max_depth frames: at least %d "
                     "words for max_depth=%d (4 header words + 2 per frame), got %lld",
                     HDR_WORDS + 2 * max_depth, max_depth, words);
        return NULL;
    }
    if (kinds == TIMER_PERF && period_ns < PERF_MIN_PERIOD_NS) {
        PyErr_Format(PyExc_ValueError,
                     "the perf timer's period must be at least %d ns (the kernel raises "
                     "shorter task-clock periods to that floor), got %lld ns: rate_hz at "
                     "most 100000", PERF_MIN_PERIOD_NS, period_ns);
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
    if (register_tstate(PyThreadState_Get(), gettid_(), 1, 1) < 0 || scan_threads_impl() < 0) {
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
    if (exec_saved.active) {
        /* stopped between exec_prepare and a failed exec: tear down what was paused,
           and exec_resume has nothing left to bring back */
        exec_saved.active = 0;
        mode = exec_saved.mode;
        if (mode != MODE_OFF) {
            sigaction(SIGPROF, &exec_saved.disposition, NULL);
        }
    }
    if (mode == MODE_OFF) {
        Py_RETURN_NONE;
    }
    __atomic_store_n(&g.mode, MODE_OFF, __ATOMIC_SEQ_CST);
    STORE(&gc_now.tid, 0);
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
                if (now < 0) {
                    now = e->cpu_last_ns;
                }
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

/*
 * Another user of SIGPROF while profiling: the program (or a library) installs its own
 * SIGPROF handler, or arms ITIMER_PROF when the sampler did not (or with another
 * interval). Both are one per process, so the two cannot share them: the sampler stops
 * sampling, leaves the handler and the timer as the program set them, and says so
 * (stats sigprof_taken_over, a report note). Checked by every drain. Returns the
 * reasons (1 handler, 2 ITIMER_PROF) and records them.
 */
static int
sigprof_taken_over(void)
{
    int why = 0;
    struct sigaction cur;
    if (sigaction(SIGPROF, NULL, &cur) == 0
        && !((cur.sa_flags & SA_SIGINFO) && cur.sa_sigaction == sigprof_handler)) {
        why |= 1;
    }
    struct itimerval it;
    if (getitimer(ITIMER_PROF, &it) == 0) {
        long long interval_us = (long long)it.it_interval.tv_sec * 1000000LL
                                + it.it_interval.tv_usec;
        int armed = interval_us != 0 || it.it_value.tv_sec != 0 || it.it_value.tv_usec != 0;
        long long ours_us = g.period_ns / 1000 > 0 ? g.period_ns / 1000 : 1;
        if ((!g.itimer_armed && armed) || (g.itimer_armed && interval_us != ours_us)) {
            why |= 2;
            g.itimer_armed = 0;   /* the program's now: stop() must not disarm it */
        }
    }
    if (why) {
        g.taken_over |= why;
    }
    return why;
}

/*
 * exec while profiling. ITIMER_PROF survives execve, and so do pending signals
 * (execve(2), sigpending(2)); our handler does not, so the new program would die of
 * SIGPROF ("Profiling timer expired") after one period of CPU. Before an exec the
 * Python layer (realprof.sampler wraps os.execv and os.execve, through which every
 * os.exec* goes) calls exec_prepare: sampling off, every timer disarmed (process timer,
 * per-thread timers, perf events), handlers in flight finished, then SIGPROF set to
 * SIG_IGN, which discards it wherever it is pending, process-wide or on any thread
 * (POSIX; Linux kernel/signal.c do_sigaction), and then to the disposition found before
 * the sampler first installed its handler. Nothing can raise SIGPROF after that but
 * another kill(). If the exec fails, exec_resume puts everything back. Works for the
 * C handler and for handler="python" (whose ITIMER_PROF is armed from Python).
 */

static void
thread_timers_set(int armed)
{
    struct itimerspec zero;
    memset(&zero, 0, sizeof(zero));
    for (unsigned i = 0; i < TABLE_SIZE; i++) {
        thread_entry *e = &table[i];
        if (LOAD(&e->tid) <= 0 || !LOAD(&e->has_timer)) {
            continue;
        }
        if (g.timer_kinds & TIMER_PERF) {
            if (perf_fd_ours(e)) {
                ioctl(e->perf_fd, armed ? PERF_EVENT_IOC_ENABLE : PERF_EVENT_IOC_DISABLE, 0);
            }
        }
        else if (armed) {
            struct itimerspec its = thread_timer_spec();
            timer_settime(e->timer, 0, &its, NULL);
        }
        else {
            timer_settime(e->timer, 0, &zero, NULL);
        }
    }
}

static PyObject *
py_exec_prepare(PyObject *Py_UNUSED(self), PyObject *Py_UNUSED(unused))
{
    if (exec_saved.active || LOAD(&g.mode) == MODE_OFF) {
        /* already prepared, or not sampling (stopped, or SIGPROF taken over by the
           program: its handler and timer are its own business) */
        Py_RETURN_NONE;
    }
    exec_saved.mode = LOAD(&g.mode);
    __atomic_store_n(&g.mode, MODE_OFF, __ATOMIC_SEQ_CST);
    struct itimerval zero;
    memset(&zero, 0, sizeof(zero));
    setitimer(ITIMER_PROF, &zero, &exec_saved.itimer);
    if (exec_saved.mode == MODE_SAMPLE) {
        thread_timers_set(0);
    }
    wait_quiescent();
    sigaction(SIGPROF, NULL, &exec_saved.disposition);
    struct sigaction ign;
    memset(&ign, 0, sizeof(ign));
    ign.sa_handler = SIG_IGN;
    sigemptyset(&ign.sa_mask);
    sigaction(SIGPROF, &ign, NULL);
    if (g.handler_installed) {
        sigaction(SIGPROF, &sigprof_original, NULL);
    }
    else {
        sigaction(SIGPROF, &exec_saved.disposition, NULL);
    }
    exec_saved.active = 1;
    Py_RETURN_NONE;
}

static PyObject *
py_exec_resume(PyObject *Py_UNUSED(self), PyObject *Py_UNUSED(unused))
{
    if (!exec_saved.active) {
        Py_RETURN_NONE;
    }
    exec_saved.active = 0;
    sigaction(SIGPROF, &exec_saved.disposition, NULL);
    if (exec_saved.mode == MODE_SAMPLE) {
        thread_timers_set(1);
    }
    __atomic_store_n(&g.mode, exec_saved.mode, __ATOMIC_SEQ_CST);
    setitimer(ITIMER_PROF, &exec_saved.itimer, NULL);
    Py_RETURN_NONE;
}

/* Test hook: a thread created in C that runs `callable` `calls` times, each call inside
   its own PyGILState_Ensure/Release, so each gets a new thread state (as ctypes
   callbacks from a C thread do). The caller waits, GIL released. */
typedef struct {
    PyObject *callable;
    long calls;
    int tid;
    int failed;
} gilstate_job;

static void *
gilstate_thread_main(void *arg)
{
    gilstate_job *job = arg;
    job->tid = gettid_();
    for (long i = 0; i < job->calls; i++) {
        PyGILState_STATE st = PyGILState_Ensure();
        PyObject *r = PyObject_CallNoArgs(job->callable);
        if (r == NULL) {
            PyErr_Print();
            job->failed = 1;
        }
        Py_XDECREF(r);
        PyGILState_Release(st);
        if (job->failed) {
            break;
        }
    }
    return NULL;
}

static PyObject *
py_gilstate_calls(PyObject *Py_UNUSED(self), PyObject *args)
{
    gilstate_job job = {NULL, 0, 0, 0};
    if (!PyArg_ParseTuple(args, "Ol", &job.callable, &job.calls)) {
        return NULL;
    }
    pthread_t thread;
    int err;
    Py_BEGIN_ALLOW_THREADS
    err = pthread_create(&thread, NULL, gilstate_thread_main, &job);
    if (err == 0) {
        pthread_join(thread, NULL);
    }
    Py_END_ALLOW_THREADS
    if (err != 0) {
        errno = err;
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    if (job.failed) {
        PyErr_SetString(PyExc_RuntimeError, "the callable raised in the C thread");
        return NULL;
    }
    return PyLong_FromLong(job.tid);
}

static PyObject *
py_stall_next_record(PyObject *Py_UNUSED(self), PyObject *args)
{
    int tid;
    long long ns;
    if (!PyArg_ParseTuple(args, "iL", &tid, &ns)) {
        return NULL;
    }
    stall_ns = ns;
    STORE(&stall_tid, tid);
    Py_RETURN_NONE;
}

static PyObject *
py_registration_window(PyObject *Py_UNUSED(self), PyObject *probe)
{
    Py_XDECREF(registration_probe);
    registration_probe = probe == Py_None ? NULL : Py_NewRef(probe);
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
    int rc = register_tstate(ts, tid, profiled, 1);
    if (rc < 0) {
        return NULL;
    }
    return PyBool_FromLong(rc);
}

/* {tid: comm} of the native entries registered now (see scan_native_threads). */
static PyObject *
py_native_threads(PyObject *Py_UNUSED(self), PyObject *Py_UNUSED(unused))
{
    PyObject *out = PyDict_New();
    if (out == NULL) {
        return NULL;
    }
    for (unsigned i = 0; i < TABLE_SIZE; i++) {
        thread_entry *e = &table[i];
        int tid = LOAD(&e->tid);
        if (tid <= 0 || !e->native) {
            continue;
        }
        PyObject *k = PyLong_FromLong(tid);
        PyObject *v = PyUnicode_DecodeFSDefault(e->comm);
        if (k == NULL || v == NULL || PyDict_SetItem(out, k, v) < 0) {
            Py_XDECREF(k);
            Py_XDECREF(v);
            Py_DECREF(out);
            return NULL;
        }
        Py_DECREF(k);
        Py_DECREF(v);
    }
    return out;
}

/*
 * Watching for new threads between scans. A C library's thread burns CPU unsampled
 * until a scan registers it and gives it a timer, and the reader scans once a period
 * (100 ms): an OpenBLAS pool created at `import numpy` and put to work at once lost up
 * to a period per thread, 2-3 % of a short numpy run. Registration needs the GIL (see
 * register_tstate: the table has one writer), so the watch does not register: with the
 * GIL released, it lists /proc/self/task every `every` seconds and returns as soon as
 * a tid has no entry, and the reader (GIL taken again) scans at once. A tid it reported
 * is not reported again, and once the table has been full the watch only waits (a tid
 * that cannot be registered must not make the reader spin). The scan it triggers does
 * not register native threads while a Python thread state is still unbound (see
 * scan_threads_impl): a new Python thread is in /proc/self/task before it binds. Returns True
 * (an unknown thread), False (the time is up) or None (not sampling: the reader then
 * waits as before). Reads only: lock-free table lookups, no Python.
 */

static int
watch_unknown_tid(void)
{
    DIR *d = opendir("/proc/self/task");
    if (d == NULL) {
        return 0;
    }
    int found = 0;
    struct dirent *de;
    while (!found && (de = readdir(d)) != NULL) {
        char *end = NULL;
        long v = strtol(de->d_name, &end, 10);
        if (end == de->d_name || *end != 0 || v <= 0 || v > INT32_MAX
            || table_find((int)v) != NULL) {
            continue;
        }
        found = 1;
        for (unsigned k = 0; k < WATCH_REPORTED; k++) {
            found &= watch_reported[k] != (int)v;
        }
        if (found) {
            watch_reported[watch_reported_next++ % WATCH_REPORTED] = (int)v;
        }
    }
    closedir(d);
    return found;
}

static PyObject *
py_watch_threads(PyObject *Py_UNUSED(self), PyObject *args)
{
    double timeout_s, every_s;
    if (!PyArg_ParseTuple(args, "dd", &timeout_s, &every_s)) {
        return NULL;
    }
    if (!(every_s > 0) || !(timeout_s >= 0)) {
        PyErr_SetString(PyExc_ValueError, "watch_threads: timeout >= 0 and every > 0");
        return NULL;
    }
    int result = 0;
    Py_BEGIN_ALLOW_THREADS
    long long deadline = clock_ns(CLOCK_MONOTONIC) + (long long)(timeout_s * 1e9);
    for (;;) {
        if (LOAD(&g.mode) != MODE_SAMPLE) {
            result = -1;
            break;
        }
        /* A full table leaves tids unknown for good: more than WATCH_REPORTED of them
           would make every call return at once. Then only the periodic scan looks. */
        if (LOAD(&g.c.table_full) == 0 && watch_unknown_tid()) {
            result = 1;
            break;
        }
        long long left = deadline - clock_ns(CLOCK_MONOTONIC);
        if (left <= 0) {
            break;
        }
        long long nap_ns = (long long)(every_s * 1e9);
        if (nap_ns > left) {
            nap_ns = left;
        }
        struct timespec nap = {nap_ns / 1000000000LL, nap_ns % 1000000000LL};
        nanosleep(&nap, NULL);   /* an EINTR only shortens one nap */
    }
    Py_END_ALLOW_THREADS
    if (result < 0) {
        Py_RETURN_NONE;
    }
    return PyBool_FromLong(result);
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
        if (sigprof_taken_over() != 0) {
            Py_XDECREF(py_stop(NULL, NULL));
        }
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
            else if (f.kind == SF_GC) {
                item = Py_BuildValue("(ssii)", GC_FRAME_NAME, "", 0, 0);
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
    c.code_buried = LOAD(&g.c.code_buried);
    c.dead_code_after_stall = LOAD(&g.c.dead_code_after_stall);
    c.stacks_unguarded = LOAD(&g.c.stacks_unguarded);
    c.signals_forwarded = LOAD(&g.c.signals_forwarded);
    c.perf_events_closed = LOAD(&g.c.perf_events_closed);
    c.gilstate_lookups = LOAD(&g.c.gilstate_lookups);
    c.quiesce_abandoned = LOAD(&g.c.quiesce_abandoned);
    c.stacks_entry_window = LOAD(&g.c.stacks_entry_window);
    c.native_threads = LOAD(&g.c.native_threads);
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
        "{sKsKsKsKsKsKsKsKsKsKsKsKsKsKsKsKsKsKsKsKsKsKsKsKsKsisLsKsKsKsKsKsKsKsKsKsKsi}",
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
        "timers_live", (unsigned long long)(c.timers_created - c.timers_deleted),
        "code_buried", (unsigned long long)c.code_buried,
        "dead_code_after_stall", (unsigned long long)c.dead_code_after_stall,
        "stacks_unguarded", (unsigned long long)c.stacks_unguarded,
        "signals_forwarded", (unsigned long long)c.signals_forwarded,
        "perf_events_closed", (unsigned long long)c.perf_events_closed,
        "gilstate_lookups", (unsigned long long)c.gilstate_lookups,
        "quiesce_abandoned", (unsigned long long)c.quiesce_abandoned,
        "stacks_entry_window", (unsigned long long)c.stacks_entry_window,
        "native_threads", (unsigned long long)c.native_threads,
        "sigprof_taken_over", g.taken_over);
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
 * frames lie), "misaligned" (8 bytes into the current frame), "suspended_generator"
 * (the frame of `gen`, a suspended generator, as the 3.12 window finds it). With
 * in_place (3.11/3.12) the garbage replaces the current cframe's current_frame instead,
 * a state with no entry window. The fake cframe's `previous` is the true caller's
 * cframe: the case where the stale slot still names it ("The entry window").
 */
static PyObject *
py_walk_selftest(PyObject *Py_UNUSED(self), PyObject *args)
{
    const char *kind;
    int in_place = 0;
    PyObject *gen = NULL;
    if (!PyArg_ParseTuple(args, "s|pO", &kind, &in_place, &gen)) {
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
    else if (strcmp(kind, "suspended_generator") == 0) {
        /* what the entry window's stale slot held in the soak (see "The entry window") */
#if PY313
        int suspended = gen != NULL && PyGen_CheckExact(gen)
                        && FRAME_STATE_SUSPENDED(((PyGenObject *)gen)->gi_frame_state);
#else
        int suspended = gen != NULL && PyGen_CheckExact(gen)
                        && ((PyGenObject *)gen)->gi_frame_state == FRAME_SUSPENDED;
#endif
        if (!suspended) {
            PyErr_SetString(PyExc_ValueError,
                            "suspended_generator needs a suspended generator as third argument");
            return NULL;
        }
        garbage = (_PyInterpreterFrame *)&((PyGenObject *)gen)->gi_iframe;
    }
    else {
        PyErr_Format(PyExc_ValueError,
                     "unknown kind %s (allowed: unreadable, stale, misaligned, "
                     "suspended_generator)", kind);
        return NULL;
    }
#if !PY313
    if (in_place) {
        /* the thread's own cframe, no entry window: its caller's chain cannot explain
           the data stack either */
        _PyInterpreterFrame *saved = ts->cframe->current_frame;
        ts->cframe->current_frame = garbage;
        __atomic_signal_fence(__ATOMIC_SEQ_CST);
        syscall(SYS_tgkill, (long)getpid(), (long)gettid_(), (long)SIGPROF);
        __atomic_signal_fence(__ATOMIC_SEQ_CST);
        ts->cframe->current_frame = saved;
        if (none_page != NULL) {
            munmap(none_page, (size_t)page);
        }
        Py_RETURN_NONE;
    }
#endif
#if PY313
    (void)in_place;
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
    {"watch_threads", py_watch_threads, METH_VARARGS,
     "watch_threads(timeout, every): GIL released, poll /proc/self/task every `every` s "
     "for a thread with no entry; True when one appears, False at the timeout, None if "
     "not sampling."},
    {"gc_phase", py_gc_phase, METH_VARARGS,
     "gc_phase(phase, info): a gc.callbacks entry; marks the collecting thread's samples "
     "with a [garbage collection] frame above the frame that started the collection."},
    {"stop", py_stop, METH_NOARGS,
     "Disarm and delete every timer, wait for handlers in flight; handler stays, inactive."},
    {"register_thread", (PyCFunction)(void (*)(void))py_register_thread,
     METH_VARARGS | METH_KEYWORDS,
     "register_thread(profiled=True): register the calling thread (and its timer)."},
    {"native_threads", py_native_threads, METH_NOARGS,
     "{tid: name} of the threads without a thread state registered now (native threads)."},
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
    {"exec_prepare", py_exec_prepare, METH_NOARGS,
     "Before an exec: sampling off, every timer disarmed, pending SIGPROF discarded, "
     "SIGPROF's original disposition back (see the comment in _sampler.c)."},
    {"exec_resume", py_exec_resume, METH_NOARGS,
     "After a failed exec: undo exec_prepare."},
    {"gilstate_calls", py_gilstate_calls, METH_VARARGS,
     "gilstate_calls(callable, calls): test hook, a C thread calls `callable` `calls` "
     "times, each in its own PyGILState_Ensure/Release; returns that thread's tid."},
    {"stall_next_record", py_stall_next_record, METH_VARARGS,
     "stall_next_record(tid, ns): test hook, the next record reserved by a handler on "
     "thread tid waits ns nanoseconds before it is published (a stalled writer)."},
    {"registration_window", py_registration_window, METH_O,
     "registration_window(callable or None): test hook, called inside the part of a "
     "thread's registration where Python code may run (as a finalizer could)."},
    {"walk_selftest", py_walk_selftest, METH_VARARGS,
     "walk_selftest(kind, in_place=False, generator=None): test hook, SIGPROF to self "
     "with a garbage newest frame (unreadable, stale, misaligned, suspended_generator): in "
     "a new cframe, the 3.11/3.12 entry window, or in_place in the current one."},
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
#if PY315
    const char *layout = "3.15";
#elif PY314
    const char *layout = "3.14";
#elif PY313
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
        PyModule_AddStringConstant(m, "GC_FRAME_NAME", GC_FRAME_NAME) < 0 ||
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
