"""The simulator: a SimPy model of Go's CPU profiler and the kernel under it."""
