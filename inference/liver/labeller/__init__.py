"""The classical colour-phase labeller (no learning): seven liver classes from H&E colour
deconvolution and morphology. Named ``classical`` everywhere it appears (``--model classical``).
"""
from lobule.inference.liver.labeller.colour_phase import PhaseReference, label_colour_phase, measure_reference
from lobule.inference.liver.labeller.nuclei import classify_nuclei
from lobule.inference.liver.labeller.settings import ColourPhaseSettings
from lobule.inference.liver.labeller.stain import stain_phases

#: the engine's name on the command line, in cards and in exports
CLASSICAL = "classical"

__all__ = ["CLASSICAL", "ColourPhaseSettings", "PhaseReference", "classify_nuclei", "label_colour_phase",
           "measure_reference", "stain_phases"]
