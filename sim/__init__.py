"""The simulator: a SimPy model of Go's CPU profiler and the kernel under it.

The model core, in the order a sample travels; each module is one mechanism and imports
only SimPy, the standard library and the pure contract (`contract.runtimes`,
`contract.scenario`, `contract.profile`, `contract.report`):

* `sim.workload`: the threads' programs, built from a scenario's workload;
* `sim.machine`: CPUs, the scheduler, exact CPU-time accounting, the GIL;
* `sim.cputimers`: the process timer (ITIMER_PROF) and the per-thread timers;
* `sim.perfevents` and `sim.perfsignals`: perf_event task-clock events, and their
  hrtimers and signals in virtual time;
* `sim.signals`: SIGPROF generation, coalescing and the receiver;
* `sim.suspend`: Windows' sampler thread, which suspends threads instead;
* `sim.runtimes`: what each profiler does with a delivered signal (the policy table);
* `sim.handler`: the handler that applies it, and the sample's way into profBuf;
* `sim.profbuf`: the ring buffer between the handler and the reader;
* `sim.reader`: the reader thread that drains it into the profile;
* `sim.trace`: the timeline of a short window;
* `sim.results`: the report, its funnel and notes;
* `sim.events`: the one SimPy idiom the mechanisms schedule with;
* `sim.context`: what the mechanisms of one run share (clock, machine, runtime, counts);
* `sim.model`: the loop that runs them together (`simulate`, `Simulation`).

Above the core: `sim.sweep` (runs over a grid of parameters), `python -m sim`
(`sim.__main__`, the command line) and `sim.playground` (the same run, driven from the
docs site's playground page in the browser's Pyodide).
"""
