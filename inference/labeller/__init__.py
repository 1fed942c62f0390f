"""The classical colour-phase labeller (no learning): seven liver classes from H&E colour
deconvolution and morphology. Named ``classical`` everywhere it appears (``--model classical``).
"""
from lobule.inference.labeller.colour_phase import label_colour_phase
from lobule.inference.labeller.nuclei import classify_nuclei
from lobule.inference.labeller.settings import ColourPhaseSettings
from lobule.inference.labeller.stain import stain_phases

#: the engine's name on the command line, in cards and in exports
CLASSICAL = "classical"

__all__ = ["CLASSICAL", "ColourPhaseSettings", "classify_nuclei", "label_colour_phase", "stain_phases"]
