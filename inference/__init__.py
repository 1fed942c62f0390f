"""Slide and image I/O, tiling, the inference engine, stitching, label stores, quantification,
NAS, exports and the CLI back ends. No Qt is imported here."""
