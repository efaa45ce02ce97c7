"""satdelta.annotations: reports, claims and the analyst's evidence polygons, stored so nothing is lost."""

__all__: list[str] = []
