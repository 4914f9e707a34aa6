"""Running a config: cells, boots, workloads, results, reports."""
