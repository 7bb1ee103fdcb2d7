"""Solid primitives in a local frame (a = lateral, b = posterior, c = superior; mm).

Each shape gives its local bounding box and an approximate depth in mm below its surface
(positive inside), evaluated on broadcastable float32 coordinate arrays. Depth lets a material
draw a cortical rim of given thickness. Parameters are plain Python floats so that float32
arrays stay float32.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

Bounds = tuple[tuple[float, float, float], tuple[float, float, float]]


def _superellipse_radius(u, v, exponent: float):
    """((|u|^p + |v|^p))^(1/p): 1 on the boundary of the unit superellipse."""
    if exponent == 2.0:
        return np.sqrt(u * u + v * v)
    return (np.abs(u) ** exponent + np.abs(v) ** exponent) ** (1.0 / exponent)


@dataclass(frozen=True)
class VertebralBody:
    """A rounded-box cylinder along c with a waist and concave endplates; flatter posterior wall."""

    half_width: float
    half_depth_anterior: float
    half_depth_posterior: float
    height: float
    concavity: float = 1.2  # endplate dip at the centre (mm)
    waist: float = 0.06  # relative narrowing at mid-height
    exponent: float = 2.4

    def bounds(self) -> Bounds:
        return (
            (-self.half_width, -self.half_depth_anterior, -self.height / 2),
            (self.half_width, self.half_depth_posterior, self.height / 2),
        )

    def normalized_radius(self, a, b, c):
        depth_radius = np.where(b < 0, self.half_depth_anterior, self.half_depth_posterior).astype(np.float32)
        rho = _superellipse_radius(a / self.half_width, b / depth_radius, self.exponent)
        t = np.minimum(np.abs(c) * (2.0 / self.height), 1.0)
        return rho / (1.0 - self.waist * (1.0 - t * t))

    def depth(self, a, b, c):
        return self.depths(a, b, c)[0]

    def depths(self, a, b, c):
        """(depth, depth below the side wall only): the second ignores the endplates."""
        rho = self.normalized_radius(a, b, c)
        radial = (1.0 - rho) * min(self.half_width, self.half_depth_posterior)
        r2 = np.minimum(rho, 1.0) ** 2
        vertical = (self.height / 2 - self.concavity * (1.0 - r2)) - np.abs(c)
        return np.minimum(radial, vertical), radial


@dataclass(frozen=True)
class Rod:
    """An elliptic rod along local axis `axis` (0 = a, 1 = b, 2 = c) from `start` to `end`.

    The cross-section is centred at `center` (the two coordinates other than `axis`, in axis
    order) plus `slope` times the distance along the axis, with radii `radii`; it shrinks
    linearly to `taper` times its size at `end`, and both ends are rounded over `round_mm`.
    """

    axis: int
    start: float
    end: float
    center: tuple[float, float]
    radii: tuple[float, float]
    slope: tuple[float, float] = (0.0, 0.0)
    taper: float = 1.0
    round_mm: float = 0.0

    def _others(self) -> tuple[int, int]:
        return tuple(k for k in range(3) if k != self.axis)  # type: ignore[return-value]

    def bounds(self) -> Bounds:
        lo, hi = [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]
        lo[self.axis], hi[self.axis] = min(self.start, self.end), max(self.start, self.end)
        length = self.end - self.start
        for slot, other in enumerate(self._others()):
            ends = (self.center[slot], self.center[slot] + self.slope[slot] * length)
            lo[other] = min(ends) - self.radii[slot]
            hi[other] = max(ends) + self.radii[slot]
        return tuple(lo), tuple(hi)  # type: ignore[return-value]

    def depth(self, a, b, c):
        coords = (a, b, c)
        length = self.end - self.start
        along = (coords[self.axis] - self.start) * (1.0 / length)  # 0 at start, 1 at end
        t = np.clip(along, 0.0, 1.0)
        scale = 1.0 + (self.taper - 1.0) * t
        first, second = self._others()
        u = (coords[first] - (self.center[0] + self.slope[0] * length * t)) / (self.radii[0] * scale)
        v = (coords[second] - (self.center[1] + self.slope[1] * length * t)) / (self.radii[1] * scale)
        radial = (1.0 - np.sqrt(u * u + v * v)) * (min(self.radii) * scale)
        ends = np.minimum(along, 1.0 - along) * abs(length)
        if self.round_mm > 0:
            # Round the ends: close to an end the cross-section shrinks like a half ellipse.
            near = np.clip(ends / self.round_mm, 0.0, 1.0)
            radial = radial - (1.0 - np.sqrt(1.0 - (1.0 - near) ** 2)) * (min(self.radii) * scale)
        return np.minimum(radial, ends)


@dataclass(frozen=True)
class Ellipsoid:
    center: tuple[float, float, float]
    radii: tuple[float, float, float]

    def bounds(self) -> Bounds:
        lo = tuple(c - r for c, r in zip(self.center, self.radii, strict=True))
        hi = tuple(c + r for c, r in zip(self.center, self.radii, strict=True))
        return lo, hi  # type: ignore[return-value]

    def depth(self, a, b, c):
        u = (a - self.center[0]) / self.radii[0]
        v = (b - self.center[1]) / self.radii[1]
        w = (c - self.center[2]) / self.radii[2]
        return (1.0 - np.sqrt(u * u + v * v + w * w)) * min(self.radii)


@dataclass(frozen=True)
class Lamina:
    """The posterior half-ring of the neural arch around the canal (centre at b = canal_b).

    It slopes downwards posteriorly by `slope` mm per mm and spans `height` along c.
    """

    canal_b: float
    inner_half_width: float
    inner_half_depth: float
    thickness: float
    center_c: float
    height: float
    slope: float

    def bounds(self) -> Bounds:
        outer_w = self.inner_half_width + self.thickness
        outer_d = self.inner_half_depth + self.thickness
        lowest = self.center_c - self.slope * outer_d - self.height / 2
        return (
            (-outer_w, self.canal_b - 0.35 * self.inner_half_depth, lowest),
            (
                outer_w,
                self.canal_b + outer_d,
                self.center_c + self.slope * 0.35 * self.inner_half_depth + self.height / 2,
            ),
        )

    def depth(self, a, b, c):
        rel_b = b - self.canal_b
        inner = np.sqrt((a / self.inner_half_width) ** 2 + (rel_b / self.inner_half_depth) ** 2)
        outer_w = self.inner_half_width + self.thickness
        outer_d = self.inner_half_depth + self.thickness
        outer = np.sqrt((a / outer_w) ** 2 + (rel_b / outer_d) ** 2)
        ring = np.minimum((inner - 1.0) * self.inner_half_depth, (1.0 - outer) * outer_d)
        vertical = self.height / 2 - np.abs(c - (self.center_c - self.slope * rel_b))
        front = rel_b + 0.35 * self.inner_half_depth
        return np.minimum(np.minimum(ring, vertical), front)


@dataclass(frozen=True)
class DiscSpace:
    """The disc between two endplates, in a frame midway between the two vertebrae.

    `upper_point`/`upper_normal` give the lower endplate plane of the vertebra above in this
    frame (normal pointing up), `lower_point`/`lower_normal` the upper endplate of the one
    below. The disc fills the endplate concavities (`concavity` mm at the centre).
    """

    half_width: float
    half_depth_anterior: float
    half_depth_posterior: float
    upper_point: tuple[float, float, float]
    upper_normal: tuple[float, float, float]
    lower_point: tuple[float, float, float]
    lower_normal: tuple[float, float, float]
    concavity: float = 1.2
    exponent: float = 2.4

    def bounds(self) -> Bounds:
        reach = (
            max(abs(self.upper_point[2]), abs(self.lower_point[2]))
            + self.concavity
            + 0.6
            * max(self.half_width, self.half_depth_anterior)
            * max(abs(self.upper_normal[1]), abs(self.lower_normal[1]))
        )
        return (
            (-self.half_width, -self.half_depth_anterior, -reach),
            (self.half_width, self.half_depth_posterior, reach),
        )

    def evaluate(self, a, b, c):
        """(depth, height fraction 0 at the lower endplate .. 1 at the upper, normalised radius)."""
        depth_radius = np.where(b < 0, self.half_depth_anterior, self.half_depth_posterior).astype(np.float32)
        rho = _superellipse_radius(a / self.half_width, b / depth_radius, self.exponent)
        dip = self.concavity * (1.0 - np.minimum(rho, 1.0) ** 2)
        up = _plane_distance(a, b, c, self.upper_point, self.upper_normal)  # > 0 above the upper plane
        low = _plane_distance(a, b, c, self.lower_point, self.lower_normal)  # < 0 below the lower plane
        below_top = dip - up
        above_bottom = low + dip
        radial = (1.0 - rho) * min(self.half_width, self.half_depth_posterior)
        depth = np.minimum(np.minimum(below_top, above_bottom), radial)
        fraction = above_bottom / np.maximum(above_bottom + below_top, 1e-3)
        return depth, fraction, rho

    def depth(self, a, b, c):
        return self.evaluate(a, b, c)[0]


def _plane_distance(a, b, c, point, normal):
    return (a - point[0]) * normal[0] + (b - point[1]) * normal[1] + (c - point[2]) * normal[2]
