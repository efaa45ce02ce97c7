"""satdelta.plugins: front-ends that plug the library into an analyst's tools (CLI, napari)."""
