"""Capture and parse guest sources (slabinfo, swiotlb, meminfo, vmstat, console) into metrics."""
