"""The laboratory: scenarios run for real and held against the model.

Above the model (`sim`), the real sampler (`realprof`) and the figures; its commands are
reached through `python -m realprof` (`scenario`, `compare`, `calibrate`, `grid`):

* `lab.machine`: this machine's facts (CPUs, CONFIG_HZ, tick alignment) and the machine
  its simulated twins run on;
* `lab.real_settings`, `lab.workload`, `lab.real_report`: the real Python world, a
  scenario's threads run under realprof and reported like the simulator;
  `lab.scenario_command` is its command;
* `lab.go_toolchain`, `lab.go_plan`, `lab.go_program`, `lab.go_world`, `lab.go_report`:
  the Go world, the same workload written as Go, built and profiled by runtime/pprof;
* `lab.compare`: one scenario in every world, side by side;
* `lab.calibrate`: the kernel model's parameters measured on this machine;
  `lab.survival_fit` turns survival runs into the values a model runs on;
* `lab.grid_cells`, `lab.grid`, `lab.grid_results`, `lab.grid_shares`, `lab.medians`,
  `lab.grid_figure`: the validation grid, the model against every real world, cell by
  cell; `lab.cprobe` (with
  `lab/cprobe.c`) is its independent check of the process timer, a C program with a
  trivial handler;
* `lab.go_samples`, `lab.go_samples_program`, `lab.go_samples_figure`: the walkthrough's
  real Go measurement (labels, the execution trace's CPU samples, cgo threads).
"""
