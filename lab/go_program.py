"""The Go world's program: a scenario's workload written as Go (and C) source.

`go_source` turns a scenario into one deterministic `main.go` from its plan
(`lab.go_plan`). Rate, duration and the profile's path are command-line flags, so one
build serves every rate and duration of the same workload. What the program does:

* GOMAXPROCS is the number of `go` threads. Each is a goroutine that calls
  `runtime.LockOSThread`, so goroutine and OS thread are one for the whole run (an M
  running one busy goroutine, as the model has it), and carries the pprof label
  `thread=<name>` (`runtime/pprof.SetGoroutineLabels`). A CPU sample's tag is the
  interrupted goroutine's label set (`sigprof` in src/runtime/proc.go; taken from
  `m.curg` since Go 1.18, golang/go #48577), so labels attribute samples to threads even
  when the 64-frame cut (`maxCPUProfStack`, src/runtime/cpuprof.go) removed the root,
  and `contract.profile_files.read_profile` reads the label `thread` as the sample's thread.
* A `run` step spins in a Go function named after the step, marked `//go:noinline` and
  called under `depth - 2` generated callers below the group's entry function. It spins
  until this thread's CPU time has advanced by `cpu_ms`, or the run's deadline has
  passed, checking every ~60 µs of arithmetic with `getrusage(RUSAGE_THREAD)`.
  The ground truth is the exact thread CPU clock (`clock_gettime(CLOCK_THREAD_CPUTIME_ID)`,
  a raw system call), read once per step boundary and never inside the spin. [inference]
  Reading a running thread's own clock runs the scheduler's `update_curr()`
  (`task_sched_runtime`, kernel/sched/core.c), which can end a used-up slice between two
  ticks; CPU timers are checked only at ticks where their thread is current, so missed
  intervals fold into `si_overrun`, which Go ignores. `getrusage(RUSAGE_THREAD)` does not
  update the accounting; what reading the clock inside the spin cost is measured in
  docs/walkthrough/11-sim-versus-reality.md.
* A `native` step is a cgo call into a C function that spins the same way in C. Without
  `runtime.SetCgoTraceback` Go cannot unwind C frames, so its samples show the Go
  stack that made the call, with leaf `runtime.cgocall` (`sigprof`'s cgo branch starts
  at the goroutine's `syscallpc`). `sleep_ms` is `time.Sleep`, and so is `syscall_ms`
  (on Linux no timer counts a thread off the CPU either way).
* An `external` group is made of threads C creates with `pthread_create`: Go has no M
  for them. They run each step in C (`run` steps too, as in the simulator, where an
  external thread's stack is always C), in one spin function per thread and step, so
  that the sampled PC alone tells thread and step apart.
* All threads wait behind a barrier. The program calls `runtime.SetCPUProfileRate(rate)`
  and then `pprof.StartCPUProfile` (the only way to choose a rate: StartCPUProfile
  hard-codes 100 Hz and only warns when a rate is already set, golang/go #40094,
  proposal #42502), reads `getrusage(RUSAGE_SELF)`, releases the threads, waits for
  them to pass the deadline, reads `getrusage` again and stops the profile. It prints
  one JSON line: the interval's wall time, rusage user + system CPU, each thread's
  thread-clock CPU and each step function's (the ground truth), and `runtime.Version()`.
"""

from __future__ import annotations

from contract.scenario import Scenario
from lab.go_plan import Group, Plan, make_plan

# Iterations of the spin arithmetic between two reads of the thread CPU clock (~60 µs).
_SPIN_CHUNK = 1 << 16


def _go_quote(text: str) -> str:
    """A Go interpreted string literal for any Python string (ASCII source)."""
    out = []
    for char in text:
        code = ord(char)
        if char in '"\\':
            out.append("\\" + char)
        elif 0x20 <= code < 0x7F:
            out.append(char)
        elif 0xD800 <= code <= 0xDFFF:  # a lone surrogate has no UTF-8 form
            out.append("\\uFFFD")
        else:
            out.append(f"\\U{code:08X}")
    return '"' + "".join(out) + '"'


_C_PREAMBLE = """\
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/resource.h>
#include <time.h>

static volatile uint64_t lab_c_sink;
static int64_t lab_deadline_ns;

static int64_t lab_clock_ns(clockid_t clock) {
	struct timespec ts;
	clock_gettime(clock, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int64_t lab_mono_ns(void) { return lab_clock_ns(CLOCK_MONOTONIC); }
static int64_t lab_thread_ns(void) { return lab_clock_ns(CLOCK_THREAD_CPUTIME_ID); }
static int lab_past(void) { return lab_mono_ns() >= lab_deadline_ns; }

// This thread's CPU time as of its last accounting update (tick or switch): unlike the
// CPU clock, reading it does not update the scheduler's accounting (see labBusyNs).
static int64_t lab_busy_ns(void) {
	struct rusage ru;
	getrusage(RUSAGE_THREAD, &ru);
	return ((int64_t)ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000000LL
		+ ((int64_t)ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000LL;
}
static void lab_set_deadline(int64_t ns) { lab_deadline_ns = ns; }

// Burn `budget` ns of this thread's CPU clock, or stop at the deadline. Inlined into
// every spin function, so a sampled PC names the function, not this helper.
static inline __attribute__((always_inline)) void lab_spin(int64_t budget) {
	int64_t start = lab_busy_ns();
	uint64_t x = lab_c_sink | 1;
	for (;;) {
		for (int i = 0; i < LAB_SPIN_CHUNK; i++) {
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
		}
		if (lab_busy_ns() - start >= budget || lab_past()) {
			break;
		}
	}
	lab_c_sink += x;
}
"""

_C_EXTERNAL = """\
static int64_t lab_ext_thread_cpu[LAB_EXT_THREADS];
static int64_t lab_ext_func_cpu[LAB_EXT_THREADS][LAB_FUNCTIONS];
static pthread_t lab_ext_tid[LAB_EXT_THREADS];
static pthread_mutex_t lab_ext_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t lab_ext_cv = PTHREAD_COND_INITIALIZER;
static int lab_ext_go;

static void lab_sleep(int64_t ns) {
	int64_t until = lab_mono_ns() + ns;
	if (until > lab_deadline_ns) {
		until = lab_deadline_ns;
	}
	struct timespec ts = {until / 1000000000LL, until % 1000000000LL};
	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR) {
	}
}

static void *lab_ext_thread(void *arg) {
	int t = (int)(intptr_t)arg;
	pthread_mutex_lock(&lab_ext_mu);
	while (!lab_ext_go) {
		pthread_cond_wait(&lab_ext_cv, &lab_ext_mu);
	}
	pthread_mutex_unlock(&lab_ext_mu);
	const lab_step_t *program = lab_ext_program[t];
	int steps = lab_ext_steps[t];
	int64_t t0 = lab_thread_ns(), s = t0;
	for (;;) {
		for (int i = 0; i < steps; i++) {
			if (lab_past()) {
				goto done;
			}
			if (program[i].spin) {
				lab_ext_spin[t][i](program[i].ns);
				int64_t e = lab_thread_ns();
				lab_ext_func_cpu[t][program[i].fid] += e - s;
				s = e;
			} else {
				lab_sleep(program[i].ns);
				s = lab_thread_ns();
			}
		}
	}
done:
	lab_ext_thread_cpu[t] = lab_thread_ns() - t0;
	return NULL;
}

static int lab_ext_create(void) {
	for (int t = 0; t < LAB_EXT_THREADS; t++) {
		int rc = pthread_create(&lab_ext_tid[t], NULL, lab_ext_thread, (void *)(intptr_t)t);
		if (rc != 0) {
			return rc;
		}
	}
	return 0;
}

static void lab_ext_start(void) {
	pthread_mutex_lock(&lab_ext_mu);
	lab_ext_go = 1;
	pthread_cond_broadcast(&lab_ext_cv);
	pthread_mutex_unlock(&lab_ext_mu);
}

static void lab_ext_join(void) {
	for (int t = 0; t < LAB_EXT_THREADS; t++) {
		pthread_join(lab_ext_tid[t], NULL);
	}
}

static int64_t lab_ext_thread_ns(int t) { return lab_ext_thread_cpu[t]; }
static int64_t lab_ext_func_ns(int t, int f) { return lab_ext_func_cpu[t][f]; }
"""


def _c_source(plan: Plan) -> str:
    lines = [f"#define LAB_SPIN_CHUNK {_SPIN_CHUNK}", _C_PREAMBLE]
    for _ident, (_fid, cname) in plan.native_leaves.items():
        lines.append(
            f"static __attribute__((noinline)) void {cname}(int64_t budget) {{ lab_spin(budget); }}"
        )
    if plan.ext_threads:
        lines.append("")
        lines.append(f"#define LAB_EXT_THREADS {len(plan.ext_threads)}")
        lines.append(f"#define LAB_FUNCTIONS {max(len(plan.functions), 1)}")
        lines.append("typedef void (*lab_spin_fn)(int64_t);")
        lines.append("typedef struct { int spin; int fid; int64_t ns; } lab_step_t;")
        program_of: list[str] = []
        spins_of: list[str] = []
        steps_of: list[int] = []
        for group in plan.groups:
            if group.kind != "external":
                continue
            prog = f"lab_prog_{group.first}"
            items = ", ".join(
                f"{{{int(s.kind == 'spin')}, {max(s.fid, 0)}, {s.ns}LL}}" for s in group.steps
            )
            lines.append(f"static const lab_step_t {prog}[] = {{{items}}};")
            for k in range(len(group.threads)):
                t = group.first + k
                table = []
                for i, step in enumerate(group.steps):
                    if step.kind == "spin":
                        name = plan.ext_spin_name(t, i)
                        lines.append(
                            f"static __attribute__((noinline, used)) void {name}(int64_t b) "
                            "{ lab_spin(b); }"
                        )
                        table.append(name)
                    else:
                        table.append("0")
                lines.append(f"static const lab_spin_fn lab_spins_{t}[] = {{{', '.join(table)}}};")
                program_of.append(prog)
                spins_of.append(f"lab_spins_{t}")
                steps_of.append(len(group.steps))
        lines.append(
            f"static const lab_step_t *const lab_ext_program[] = {{{', '.join(program_of)}}};"
        )
        lines.append(f"static const lab_spin_fn *const lab_ext_spin[] = {{{', '.join(spins_of)}}};")
        lines.append(f"static const int lab_ext_steps[] = {{{', '.join(map(str, steps_of))}}};")
        lines.append(_C_EXTERNAL)
    return "\n".join(lines)


def go_source(scenario: Scenario) -> str:
    """The Go program that runs `scenario`'s workload (deterministic text).

    Rate, duration and the profile's path are command-line flags, so one build serves
    every rate and duration of the same workload.
    """
    plan = make_plan(scenario)
    out: list[str] = []
    w = out.append
    w("// Code generated by sigprof-lab (lab/go_program.py) from a scenario's workload.")
    w("// DO NOT EDIT. Functions named after the scenario's:")
    for ident, fid in plan.run_leaves.items():
        w(f"//   {ident} <- run {_go_quote(plan.functions[fid])}")
    for ident, (fid, cname) in plan.native_leaves.items():
        w(f"//   {ident} <- native {_go_quote(plan.functions[fid])} (C {cname})")
    for group in plan.groups:
        label = group.entry or "C threads"
        w(f"//   {label} <- {group.kind} group {_go_quote(group.name)} x{len(group.threads)}")
    w("")
    w("package main")
    w("")
    if plan.cgo:
        w("/*")
        w(_c_source(plan))
        w("*/")
        w('import "C"')
        w("")
    w("import (")
    packages = ["encoding/json", "flag", "fmt", "os", "runtime", "runtime/pprof", "sync"]
    packages += ["syscall", "time", "unsafe"]
    if plan.go_threads:
        packages.append("context")  # goroutine labels
    if plan.run_leaves:
        packages.append("sync/atomic")  # the spin loops' sink
    for package in sorted(packages):
        w(f"\t{_go_quote(package)}")
    w(")")
    w("")
    n_go, n_ext, n_fn = len(plan.go_threads), len(plan.ext_threads), max(len(plan.functions), 1)
    w(f"const labSpinChunk = {_SPIN_CHUNK}")
    w("")
    w("var (")
    w("\tlabStart    = make(chan struct{})")
    w("\tlabReady    sync.WaitGroup")
    w("\tlabDone     sync.WaitGroup")
    w("\tlabT0       time.Time")
    w("\tlabDuration time.Duration")
    w("\tlabSink     uint64")
    w(f"\tlabThreadNs [{max(n_go, 1)}]int64")
    w(f"\tlabFuncNs   [{max(n_go, 1)}][{n_fn}]int64")
    names = ", ".join(_go_quote(name) for name in plan.go_threads)
    w(f"\tlabThreadNames = []string{{{names}}}")
    w(")")
    w("")
    w(_GO_HELPERS)
    for ident in plan.run_leaves:
        w(_GO_SPIN.replace("NAME", ident))
    for ident, (_fid, cname) in plan.native_leaves.items():
        w("//go:noinline")
        w(f"func {ident}(budgetNs int64) {{ C.{cname}(C.int64_t(budgetNs)) }}")
        w("")
    for group in plan.groups:
        if group.kind == "go":
            _go_group(group, w)
    _go_main(plan, n_go, n_ext, n_fn, w)
    return "\n".join(out) + "\n"


_GO_HELPERS = """\
// labThreadCPU reads this thread's CPU clock, CLOCK_THREAD_CPUTIME_ID (3): exact, a
// real system call (the vDSO serves only wall clocks), raw (no scheduler round trip).
// Read once per step boundary only: reading its own CPU clock makes the kernel update
// the thread's accounting, which can end its time slice between two ticks, and CPU
// timers are checked only at ticks (see the module docstring of lab/go_program.py).
func labThreadCPU() int64 {
	var ts syscall.Timespec
	syscall.RawSyscall(syscall.SYS_CLOCK_GETTIME, 3, uintptr(unsafe.Pointer(&ts)), 0)
	return ts.Nano()
}

// labCharge adds the thread CPU time since *mark to *slot and moves the mark.
func labCharge(slot, mark *int64) {
	now := labThreadCPU()
	*slot += now - *mark
	*mark = now
}

// labBusyNs is this thread's CPU time from getrusage(RUSAGE_THREAD = 1): as of the last
// accounting update (at most a tick old), and harmless to read often.
func labBusyNs() int64 {
	var ru syscall.Rusage
	syscall.RawSyscall(syscall.SYS_GETRUSAGE, 1, uintptr(unsafe.Pointer(&ru)), 0)
	return ru.Utime.Nano() + ru.Stime.Nano()
}

func labPast() bool { return time.Since(labT0) >= labDuration }

func labSleep(ns int64) {
	d := time.Duration(ns)
	if left := labDuration - time.Since(labT0); left < d {
		d = left
	}
	if d > 0 {
		time.Sleep(d)
	}
}
"""

# A run step's leaf: the spin loop lives in the function itself, so samples land in it.
_GO_SPIN = """\
//go:noinline
func NAME(budgetNs int64) {
	start := labBusyNs()
	x := atomic.LoadUint64(&labSink) | 1
	for {
		for i := 0; i < labSpinChunk; i++ {
			x ^= x << 13
			x ^= x >> 7
			x ^= x << 17
		}
		if labBusyNs()-start >= budgetNs || labPast() {
			break
		}
	}
	atomic.AddUint64(&labSink, x)
}
"""


def _go_group(group: Group, w) -> None:
    spins = [(i, s) for i, s in enumerate(group.steps) if s.kind == "spin"]
    # caller1 dispatches to the leaf of the step it was called for; callerK calls K-1.
    for k, caller in enumerate(group.callers, start=1):
        w("//go:noinline")
        w(f"func {caller}(step int, budgetNs int64) {{")
        if k > 1:
            w(f"\t{group.callers[k - 2]}(step, budgetNs)")
        else:
            w("\tswitch step {")
            for i, step in spins:
                if step.depth >= 3:
                    w(f"\tcase {i}:")
                    w(f"\t\t{step.leaf}(budgetNs)")
            w("\t}")
        w("}")
        w("")
    w("//go:noinline")
    w(f"func {group.entry}(tid int) {{")
    w("\truntime.LockOSThread()")
    w('\tlabels := pprof.Labels("thread", labThreadNames[tid])')
    w("\tpprof.SetGoroutineLabels(pprof.WithLabels(context.Background(), labels))")
    w("\tlabReady.Done()")
    w("\t<-labStart")
    w("\tt0 := labThreadCPU()")
    w("\ts := t0")
    w("\tcpu := &labFuncNs[tid]")
    w("\tfor {")
    for i, step in enumerate(group.steps):
        w("\t\tif labPast() {")
        w("\t\t\tbreak")
        w("\t\t}")
        if step.kind == "sleep":
            w(f"\t\tlabSleep({step.ns})")
            w("\t\ts = labThreadCPU()")
            continue
        call = (
            f"{group.callers[step.depth - 3]}({i}, {step.ns})"
            if step.depth >= 3
            else f"{step.leaf}({step.ns})"
        )
        w(f"\t\t{call}")
        w(f"\t\tlabCharge(&cpu[{step.fid}], &s)")
    w("\t}")
    w("\tlabThreadNs[tid] = labThreadCPU() - t0")
    w("\tlabDone.Done()")
    w("}")
    w("")


def _go_main(plan: Plan, n_go: int, n_ext: int, n_fn: int, w) -> None:
    w("type labResult struct {")
    w('\tGoVersion  string    `json:"go_version"`')
    w('\tGoMaxProcs int       `json:"gomaxprocs"`')
    w('\tWallNs     int64     `json:"wall_ns"`')
    w('\tUserNs     int64     `json:"rusage_user_ns"`')
    w('\tSysNs      int64     `json:"rusage_sys_ns"`')
    w('\tThreadNs   []int64   `json:"thread_cpu_ns"`')
    w('\tFuncNs     [][]int64 `json:"function_cpu_ns"`')
    w("}")
    w("")
    w("func labRusage() (user, sys int64) {")
    w("\tvar ru syscall.Rusage")
    w("\tif err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {")
    w('\t\tlabFail("getrusage", err)')
    w("\t}")
    w("\treturn ru.Utime.Nano(), ru.Stime.Nano()")
    w("}")
    w("")
    w("func labFail(what string, err error) {")
    w('\tfmt.Fprintf(os.Stderr, "goworld: %s: %v\\n", what, err)')
    w("\tos.Exit(1)")
    w("}")
    w("")
    w("func main() {")
    w('\trate := flag.Int("rate", 100, "CPU profile rate (Hz)")')
    w('\tseconds := flag.Float64("duration", 1, "workload duration (s)")')
    w('\tout := flag.String("o", "cpu.pprof", "profile path")')
    w("\tflag.Parse()")
    w(f"\truntime.GOMAXPROCS({max(n_go, 1)})")
    w("\tlabDuration = time.Duration(*seconds * 1e9)")
    w(f"\tlabReady.Add({n_go})")
    w(f"\tlabDone.Add({n_go})")
    for group in plan.groups:
        if group.kind == "go":
            w(f"\tfor i := 0; i < {len(group.threads)}; i++ {{")
            w(f"\t\tgo {group.entry}({group.first} + i)")
            w("\t}")
    w("\tlabReady.Wait()")
    if n_ext:
        w("\tif rc := C.lab_ext_create(); rc != 0 {")
        w('\t\tlabFail("pthread_create", syscall.Errno(rc))')
        w("\t}")
    w("\tf, err := os.Create(*out)")
    w("\tif err != nil {")
    w('\t\tlabFail("create profile", err)')
    w("\t}")
    w("\t// StartCPUProfile always asks for 100 Hz; a rate set first wins (golang/go #40094).")
    w("\truntime.SetCPUProfileRate(*rate)")
    w("\tif err := pprof.StartCPUProfile(f); err != nil {")
    w('\t\tlabFail("StartCPUProfile", err)')
    w("\t}")
    w("\tu0, s0 := labRusage()")
    w("\tlabT0 = time.Now()")
    if plan.cgo:
        w("\tC.lab_set_deadline(C.lab_mono_ns() + C.int64_t(labDuration))")
    if n_ext:
        w("\tC.lab_ext_start()")
    w("\tclose(labStart)")
    w("\tlabDone.Wait()")
    if n_ext:
        w("\tC.lab_ext_join()")
    w("\twall := time.Since(labT0)")
    w("\tu1, s1 := labRusage()")
    w("\tpprof.StopCPUProfile()")
    w("\tif err := f.Close(); err != nil {")
    w('\t\tlabFail("write profile", err)')
    w("\t}")
    w("\tres := labResult{")
    w("\t\tGoVersion:  runtime.Version(),")
    w("\t\tGoMaxProcs: runtime.GOMAXPROCS(0),")
    w("\t\tWallNs:     wall.Nanoseconds(),")
    w("\t\tUserNs:     u1 - u0,")
    w("\t\tSysNs:      s1 - s0,")
    w("\t}")
    w(f"\tfor t := 0; t < {n_go}; t++ {{")
    w("\t\tres.ThreadNs = append(res.ThreadNs, labThreadNs[t])")
    w("\t\tres.FuncNs = append(res.FuncNs, labFuncNs[t][:])")
    w("\t}")
    if n_ext:
        w(f"\tfor t := 0; t < {n_ext}; t++ {{")
        w("\t\tres.ThreadNs = append(res.ThreadNs, int64(C.lab_ext_thread_ns(C.int(t))))")
        w(f"\t\trow := make([]int64, {n_fn})")
        w("\t\tfor f := range row {")
        w("\t\t\trow[f] = int64(C.lab_ext_func_ns(C.int(t), C.int(f)))")
        w("\t\t}")
        w("\t\tres.FuncNs = append(res.FuncNs, row)")
        w("\t}")
    w("\tline, err := json.Marshal(res)")
    w("\tif err != nil {")
    w('\t\tlabFail("json", err)')
    w("\t}")
    w("\tfmt.Println(string(line))")
    w("}")
