"""Actor placement for the Chasseray test protocol (arXiv 2404.04428, §4.1.4 and §5.1).

Actors are placed in a square region whose area gives the requested global density
(``n / side**2`` actors per km²), in planar km coordinates with the origin at the
region's south-west corner:

* ``uniform``: every actor uniform over the square (the paper's "combination of
  uniform distributions along latitudes and longitudes");
* ``clustered``: the actors are split into clusters of 4 to 6 actors (sizes drawn at
  random among the feasible partitions), the cluster centres are uniform in the
  square and the members of a cluster uniform in a disc of ``radius_km`` around its
  centre ("clusters formed having between 4 and 6 actors each ... randomly sampling
  clusters across a square area, ensuring that the overall actor density is
  maintained", §5.1). Centres are kept ``radius_km`` away from the border so every
  actor lies inside the square.

Solar geometry is shared per square tile of ``tile_area_km2`` (10 km² in the paper,
§4.1.2); :func:`tile_index` maps actors to tiles and :func:`km_to_latlon` gives the
tile centres' coordinates for pvlib.
"""

from __future__ import annotations

import math

import numpy as np

from recopt.errors import RecoptError

__all__ = [
    "GeneratorError",
    "region_side_km",
    "cluster_sizes",
    "place_uniform",
    "place_clustered",
    "tile_index",
    "km_to_latlon",
]

#: km per degree of latitude (WGS84 mean, good to 0.5 % for a local projection).
KM_PER_DEG_LAT = 110.574
#: km per degree of longitude at the equator (times cos(latitude)).
KM_PER_DEG_LON = 111.320


class GeneratorError(RecoptError, ValueError):
    """A generator setting is invalid (unknown preset or override, impossible size)."""


def region_side_km(n: int, density: float) -> float:
    """Side (km) of the square holding ``n`` actors at ``density`` actors per km²."""
    if not density > 0:
        raise GeneratorError(f"density must be > 0 actors/km², got {density!r}")
    return math.sqrt(n / density)


def _representable(m: int, lo: int, hi: int) -> bool:
    """Whether ``m`` is a sum of parts in ``[lo, hi]`` (0 is the empty sum)."""
    if m == 0:
        return True
    k_min = math.ceil(m / hi)
    return k_min * lo <= m


def cluster_sizes(n: int, rng: np.random.Generator, size_range=(4, 6)) -> list[int]:
    """A random partition of ``n`` actors into clusters of ``size_range`` actors.

    Sizes are drawn one after the other, uniformly among the sizes that leave a
    remainder still splittable into allowed sizes.

    Raises
    ------
    GeneratorError
        When ``n`` cannot be split (e.g. 7 actors into clusters of 4-6).
    """
    lo, hi = (int(v) for v in size_range)
    if not 1 <= lo <= hi:
        raise GeneratorError(f"cluster_size must be (min, max) with 1 <= min <= max, "
                             f"got {size_range!r}")
    if not _representable(n, lo, hi):
        raise GeneratorError(
            f"{n} actors cannot be split into clusters of {lo} to {hi} actors; "
            "change the number of actors, cluster_size, or use placement='uniform'"
        )
    sizes: list[int] = []
    left = n
    while left > 0:
        ok = [s for s in range(lo, hi + 1) if s <= left and _representable(left - s, lo, hi)]
        s = int(ok[rng.integers(len(ok))])
        sizes.append(s)
        left -= s
    return sizes


def place_uniform(n: int, side_km: float, rng: np.random.Generator):
    """``n`` positions uniform over ``[0, side]²`` (km); returns ``x, y``."""
    xy = rng.uniform(0.0, side_km, size=(2, n))
    return xy[0], xy[1]


def place_clustered(n: int, side_km: float, rng: np.random.Generator, *,
                    size_range=(4, 6), radius_km: float = 0.5):
    """``n`` positions in clusters of ``size_range`` actors inside ``[0, side]²`` (km).

    Returns
    -------
    x, y : numpy.ndarray
        Coordinates (km), actors of one cluster contiguous.
    labels : numpy.ndarray of int
        Cluster of each actor (0, 1, ...).
    """
    sizes = cluster_sizes(n, rng, size_range)
    r = min(float(radius_km), side_km / 2.0)
    centres = rng.uniform(r, side_km - r, size=(len(sizes), 2))
    labels = np.repeat(np.arange(len(sizes)), sizes)
    # uniform in a disc: radius ~ r sqrt(U), angle ~ U(0, 2 pi)
    rad = r * np.sqrt(rng.random(n))
    ang = 2.0 * np.pi * rng.random(n)
    x = np.clip(centres[labels, 0] + rad * np.cos(ang), 0.0, side_km)
    y = np.clip(centres[labels, 1] + rad * np.sin(ang), 0.0, side_km)
    return x, y, labels


def tile_index(x_km, y_km, tile_area_km2: float = 10.0) -> np.ndarray:
    """Square tile of ``tile_area_km2`` holding each actor, as integer pairs ``(ix, iy)``.

    Tiles are anchored at the region's origin; shape ``(n, 2)``.
    """
    side = math.sqrt(tile_area_km2)
    return np.stack([np.floor(np.asarray(x_km) / side), np.floor(np.asarray(y_km) / side)],
                    axis=1).astype(np.int64)


def km_to_latlon(x_km, y_km, lat0: float, lon0: float):
    """Local equirectangular projection: km east/north of ``(lat0, lon0)`` to degrees."""
    lat = lat0 + np.asarray(y_km) / KM_PER_DEG_LAT
    lon = lon0 + np.asarray(x_km) / (KM_PER_DEG_LON * math.cos(math.radians(lat0)))
    return lat, lon
