"""The shared contract every world reads and writes: scenarios, reports, profiles."""
