"""The shared contract: what every world (the simulator, the real sampler, real Go) reads
and writes, so that one table can hold a prediction beside a measurement.

Standard library only, so the model core (and its browser build) can use it:

* `contract.runtimes`: the runtime table, every profiler the project models, once;
* `contract.fields`: declared fields, from which validation and the JSON Schema come;
* `contract.scenario`: a scenario (machine, profiler, workload) and its validation;
* `contract.report`: the report every world writes, its funnel and its text table;
* `contract.profile`: the profile type, counts by stack and thread;
* `contract.values`: how sweeps compare field values;
* `contract.cli`: one-line errors, exit status 2 and the option block the commands share.

The edges, files read and written:

* `contract.scenario_file`: scenario files and `--set` text (PyYAML);
* `contract.pprof` (protobuf), `contract.folded`, `contract.speedscope` (standard
  library): the profile formats, each reader beside its writer;
  `contract.profile_files` picks one by name or content (and so loads protobuf).
"""
