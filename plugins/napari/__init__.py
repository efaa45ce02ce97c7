"""satdelta's napari plugin: reader, writer, sample data and the Change annotator widget.

The npe2 manifest is ``napari.yaml`` beside this file (package data).  Importing
this package does not import napari; only the widget, swipe and status modules do.
"""

__all__: list[str] = []
