"""Settings of the classical colour-phase labeller; lengths in micrometres, areas in um^2.

Every threshold that decides a class lives here with the reason for its default, so a user (or a
test) can change it and an export can state it. Defaults were set by looking at real H&E tiles
(steatosis_isbi2019, steatosis_delineate, nuclei_miccai2015 in ``../shared/data``) and measured
against their real masks (see ``resources/models/liver-hne.json``, ``metrics.classical``).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class ColourPhaseSettings:
    """Thresholds of :func:`lobule.inference.liver.labeller.label_colour_phase`.

    White phase (class 0 background / class 1 lipid droplets)
    ---------------------------------------------------------
    white_min, white_max : bounds (0-255) of the white threshold on the darkest RGB channel
        (glass and droplets are near 200-230 on the tiles we have; stained tissue mostly below).
    white_peak_fraction : the threshold is the foot of the white histogram peak, where the
        histogram falls below this share of the peak height (:func:`stain.white_threshold`).
    white_hysteresis : white areas seeded above the threshold extend over connected pixels down
        to this many levels below it (the greyer rims of droplets).
    white_max_chroma : max(RGB) - min(RGB) above which a bright pixel is tinted, not white.
    droplet_min_diameter_um, droplet_max_diameter_um : equivalent-diameter range of a droplet.
        Lower bound 3 um (the smallest droplets drawn in the real masks; below that, white specks
        of rarefied cytoplasm); upper bound 70 um (the largest drawn are about 50 um; larger white
        areas are vessels or the space outside the tissue).
    droplet_min_solidity : area / convex-hull area; droplets are convex (0.85).
    droplet_min_circularity : 4 pi area / perimeter^2 (1 for a disc); 0.55 tolerates pixelated
        outlines of small droplets and slightly oval ones.
    droplet_min_tissue_ring : share of a 1.5 um ring around the candidate that must be tissue
        (non-white): droplets are closed and surrounded by tissue; lumens open into each other.
    droplet_split_um : h of the h-maxima of the distance transform that seed the watershed
        splitting touching droplets: a droplet's centre must lie this far above the neck to the
        next one.
    lumen_min_area_um2 : white regions that are not droplets and smaller than this are holes of
        rarefied cytoplasm inside tissue, not lumen: they join the red phase (and usually become
        hydropic).
    droplet_border_min_solidity : a candidate touching the image border is accepted only with at
        least this solidity (its outline is cut, so the circularity test cannot be used).

    Blue phase (class 2 normal nuclei / class 3 inflammatory, hyperchromatic nuclei)
    -------------------------------------------------------------------------------
    nuclear_stain_min, nuclear_stain_max : bounds of the threshold on the nuclear stain
        (haematoxylin + residual optical density, :func:`nuclei.nuclear_stain`; Otsu within the
        tissue, clipped to these bounds).
    nucleus_opening_um : radius of the disc opening that removes membranes and fibres (1 um).
    nucleus_min_diameter_um : smaller haematoxylin specks are noise (2.5 um).
    nucleus_smoothing_um : Gaussian sigma applied to the haematoxylin channel before thresholding.
    inflammatory_max_diameter_um : lymphocytes and other inflammatory cells have small round
        nuclei, about 5-7 um; hepatocyte nuclei are larger (7-10 um).
    inflammatory_min_solidity : round, compact nuclei.
    inflammatory_darkness_quantile : a nucleus is hyperchromatic when its mean haematoxylin is
        above this quantile of all nuclei of the image (0.6) ...
    inflammatory_min_darkness : ... and above this absolute optical density.
    cluster_radius_um, cluster_min_neighbours : "clustered": at least this many other nuclei
        centres within the radius (inflammatory foci; docs/nas.md uses 20 um for foci).

    Red phase (class 4 parenchyma / class 5 hydropic, ballooning-like)
    ------------------------------------------------------------------
    pale_smoothing_um : Gaussian sigma of the stain-density map used to find pale areas.
    pale_ratio : a tissue pixel is pale where its smoothed optical density is below this share of
        the median tissue optical density of the image.
    hydropic_min_area_um2 : pale areas smaller than a hepatocyte are not ballooning (100 um^2,
        docs/nas.md's default minimum for a ballooned cell).

    Other (class 6 heterochromatic, off-colour)
    -------------------------------------------
    offcolour_min_residual : the third ``rgb2hed`` channel (DAB; the residual colour that is
        neither haematoxylin nor eosin: brown pigment, bile, formalin pigment) above which a pixel
        is off-colour.
    offcolour_min_area_um2 : smaller off-colour specks are ignored.
    """

    white_min: float = 150.0
    white_max: float = 215.0
    white_peak_fraction: float = 0.1
    white_hysteresis: float = 30.0
    white_max_chroma: float = 60.0
    droplet_min_diameter_um: float = 5.0
    droplet_max_diameter_um: float = 70.0
    droplet_min_solidity: float = 0.85
    droplet_min_circularity: float = 0.45
    droplet_min_tissue_ring: float = 0.6
    droplet_split_um: float = 1.0
    lumen_min_area_um2: float = 30.0
    droplet_border_min_solidity: float = 0.9
    nuclear_stain_min: float = 0.03
    nuclear_stain_max: float = 0.2
    nucleus_opening_um: float = 1.0
    nucleus_min_diameter_um: float = 3.5
    nucleus_smoothing_um: float = 1.0
    inflammatory_max_diameter_um: float = 7.0
    inflammatory_min_solidity: float = 0.9
    inflammatory_darkness_quantile: float = 0.6
    inflammatory_min_darkness: float = 0.08
    cluster_radius_um: float = 20.0
    cluster_min_neighbours: int = 2
    pale_smoothing_um: float = 2.0
    pale_ratio: float = 0.75
    hydropic_min_area_um2: float = 100.0
    offcolour_min_residual: float = 0.06
    offcolour_min_area_um2: float = 20.0

    def as_dict(self) -> dict:
        """The settings as a JSON-ready dict (for cards and exports)."""
        return asdict(self)
