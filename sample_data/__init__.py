"""satdelta.sample_data: the synthetic offline demo (two sites, before/after, a sample report)."""
