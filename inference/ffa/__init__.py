"""FFA capillary non-perfusion (CNP) segmentation without a GUI (docs/models.md, section 2).

Modules, each about one thing:

* :mod:`.io` reads angiograms (JPEG, PNG, TIFF 8/16 bit, DICOM) and checks they look like one;
* :mod:`.preprocess` is the paper's grayscale -> CLAHE -> gamma 0.8 and the field-of-view mask;
* :mod:`.patches` stitches 96x96 tile predictions into a full-size probability map;
* :mod:`.predictor` runs a LadderNet checkpoint over an image (imports torch lazily);
* :mod:`.labels` reads ground truth (palette PNG class, LabelMe JSON polygons, binary masks);
* :mod:`.metrics` pixel accuracy, sensitivity, specificity, F1, AUC-ROC and the ROC curve;
* :mod:`.quantify` CNP area in px and mm^2; :mod:`.export` mask PNG, overlay, CSV / JSON;
* :mod:`.dataset` pairs images with labels and splits by patient; :mod:`.training` glues the
  data to :mod:`lobule.models.train_ffa` for ``lobule train ffa``.

Nothing here imports torch at module level except :mod:`.training`, so the CLI and the app
start without it.
"""
