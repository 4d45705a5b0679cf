"""3D NMC electrode microstructure: packed rough particles, internal damage (hollow cores, cracks, many small
voids), carbon-binder, pores.

The particles are placed by random sequential addition, largest first, with their nominal spheres allowed to
interpenetrate by ``overlap_tolerance``; every voxel covered by several particles goes to the one with the
smallest power distance, which splits an overlap along a flat facet the way calendering flattens contacts. Shapes
are rotated ellipsoids with a low-frequency radial perturbation. All work is vectorised inside each particle's
bounding box.
"""
import warnings
from dataclasses import dataclass

import numpy as np
from scipy import ndimage
from scipy.spatial import cKDTree

from ..analysis import CARBON_BINDER, NMC, PORE

_N_BUMPS = 4  # sine terms of the radial surface perturbation
_CANDIDATES_PER_BATCH = 128
_MAX_BATCHES = 24  # candidate batches tried per particle before it is skipped
_MAX_CONSECUTIVE_SKIPS = 200  # packing stops when this many particles in a row found no room
_REINDEX_EVERY = 128  # placed centres are added to the k-d tree in batches of this size
_MIN_DAMAGE_RADIUS_VOX = 4.0  # smaller particles cannot host a core or cracks with a closed shell
_CRACK_EXTENT = 0.75  # cracks stop at this fraction of the local radius, so the outline stays closed
_VOID_EXTENT = 0.8  # internal voids are centred inside this fraction of the local radius
_VOID_SIZE_SPREAD = (0.6, 1.4)  # internal void diameters are drawn uniformly in this range x the mean diameter
_MAX_VOID_DENSITY = 0.35  # voids fill at most this share of the volume where their centres may lie
_VOID_POINTS_PER_CHUNK = 2 ** 20  # voxel tests per chunk of voids (bounds the memory of a porous particle)


@dataclass
class _Particle:
    """Shape of one placed particle (internal): centre (z, y, x) and radius in voxels, orientation, surface."""

    centre: np.ndarray
    radius: float
    rotation: np.ndarray  # (3, 3), columns are the particle axes in (z, y, x)
    semi_axes: np.ndarray  # (3,), product 1
    bump_dirs: np.ndarray  # (_N_BUMPS, 3) unit vectors
    bump_freq: np.ndarray
    bump_phase: np.ndarray
    bump_amp: np.ndarray  # sums to 1, so the perturbation lies in [-1, 1]
    roughness: float
    hollow_radius: float = 0.0  # core radius relative to the local radius, 0 = dense
    cracks: tuple = ()  # (normal, point, wave_dir, wave_amp, wave_len) per crack, voxels

    def half_extent(self):
        """Half size of a cube that contains the particle (voxels)."""
        return self.radius * float(self.semi_axes.max()) * (1 + self.roughness) + 1.5


def _random_unit_vectors(rng, n):
    vectors = rng.standard_normal((n, 3))
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def _random_rotation(rng):
    q, r = np.linalg.qr(rng.standard_normal((3, 3)))
    return q * np.sign(np.diag(r))  # Haar-uniform orthogonal matrix


def draw_diameters(rng, n, params):
    """``n`` log-normal particle diameters (voxels, float64) with the mean and CV of ``params``.

    Draws below ``params.min_diameter_vox`` are redrawn, so the realised mean is slightly above the nominal one
    when the minimum cuts into the distribution.
    """
    sigma2 = np.log1p(params.diameter_cv ** 2)
    mu = np.log(params.mean_diameter_vox) - sigma2 / 2
    diameters = np.empty(0)
    while diameters.size < n:
        draw = rng.lognormal(mu, np.sqrt(sigma2), size=2 * (n - diameters.size) + 8)
        if params.diameter_cv == 0:  # exp(log(mean)) can round below a minimum equal to the mean: redrawn forever
            draw[:] = params.mean_diameter_vox
        diameters = np.concatenate([diameters, draw[draw >= params.min_diameter_vox]])
    return diameters[:n]


def _new_particle(rng, centre, radius, params):
    log_axes = rng.normal(0.0, params.ellipticity, size=3)
    amp = rng.random(_N_BUMPS) + 0.2
    particle = _Particle(
        centre=np.asarray(centre, dtype=np.float64), radius=float(radius), rotation=_random_rotation(rng),
        semi_axes=np.exp(log_axes - log_axes.mean()), bump_dirs=_random_unit_vectors(rng, _N_BUMPS),
        bump_freq=rng.uniform(1.0, 3.5, _N_BUMPS), bump_phase=rng.uniform(0, 2 * np.pi, _N_BUMPS),
        bump_amp=amp / amp.sum(), roughness=params.roughness)
    hollow = rng.random() < params.hollow_fraction
    cracked = rng.random() < params.crack_fraction
    if radius < _MIN_DAMAGE_RADIUS_VOX:
        return particle
    if hollow:
        particle.hollow_radius = float(rng.uniform(*params.hollow_radius_range))
    if cracked:
        n_cracks = int(rng.integers(1, params.max_cracks + 1))
        normals, wave_dirs = _random_unit_vectors(rng, n_cracks), _random_unit_vectors(rng, n_cracks)
        points = rng.uniform(-0.15, 0.15, (n_cracks, 3)) * radius  # crack planes pass near the centre
        wave_amps, wave_lens = rng.uniform(0.3, 1.0, n_cracks), radius * rng.uniform(0.6, 1.5, n_cracks)
        particle.cracks = tuple(zip(normals, points, wave_dirs, wave_amps, wave_lens))
    return particle


def _box(particle, shape, margin=0.0):
    """Slices of the particle's bounding box grown by ``margin`` voxels, clipped to the volume; None if outside."""
    half = particle.half_extent() + margin
    lo = np.maximum(np.floor(particle.centre - half).astype(int), 0)
    hi = np.minimum(np.ceil(particle.centre + half).astype(int) + 1, shape)
    if np.any(hi <= lo):
        return None
    return tuple(slice(a, b) for a, b in zip(lo, hi))


def _shape_field(particle, box):
    """Normalised radius ``f`` (< 1 inside), power distance ``g`` and offsets ``v`` on the voxels of ``box``.

    Returns:
        tuple: ``f`` and ``g`` float32 arrays of the box shape, ``v`` a list of three broadcastable float32
        offset arrays (z, y, x) from the particle centre in voxels.
    """
    v = [(np.arange(s.start, s.stop, dtype=np.float32) - np.float32(c)).reshape([-1 if k == axis else 1
                                                                                  for k in range(3)])
         for axis, (s, c) in enumerate(zip(box, particle.centre))]
    frame = [sum(v[j] * np.float32(particle.rotation[j, k]) for j in range(3)) / np.float32(particle.semi_axes[k])
             for k in range(3)]  # ellipsoid-normalised coordinates in the particle's own axes
    rho = np.sqrt(frame[0] ** 2 + frame[1] ** 2 + frame[2] ** 2) + np.float32(1e-6)
    bumps = sum(np.float32(a) * np.sin(np.float32(w) * (frame[0] * np.float32(d[0]) + frame[1] * np.float32(d[1])
                                                          + frame[2] * np.float32(d[2])) / rho + np.float32(p))
                for a, w, d, p in zip(particle.bump_amp, particle.bump_freq, particle.bump_dirs, particle.bump_phase))
    f = rho / (np.float32(particle.radius) * (1 + np.float32(particle.roughness) * bumps))
    g = np.float32(particle.radius ** 2) * (f * f - 1)
    return f, g, v


class _CentreIndex:
    """Centres and radii of the placed particles, with a k-d tree for the overlap test (rebuilt in batches)."""

    def __init__(self):
        self.centres, self.radii = np.empty((64, 3)), np.empty(64)
        self.count, self.n_indexed, self.tree = 0, 0, None

    def add(self, centre, radius):
        if self.count == len(self.radii):
            self.centres = np.concatenate([self.centres, np.empty_like(self.centres)])
            self.radii = np.concatenate([self.radii, np.empty_like(self.radii)])
        self.centres[self.count], self.radii[self.count] = centre, radius
        self.count += 1
        if self.count - self.n_indexed >= _REINDEX_EVERY:
            self.tree, self.n_indexed = cKDTree(self.centres[:self.count]), self.count

    def room(self, candidates, radius, keep_out):
        """Bool per candidate centre: no placed nominal sphere is closer than ``keep_out`` x (sum of radii)."""
        ok = np.ones(len(candidates), dtype=bool)
        if self.count == 0:
            return ok
        max_radius = self.radii[:self.count].max()
        if self.tree is not None:
            near = self.tree.query_ball_point(candidates, keep_out * (radius + max_radius))
            lengths = np.fromiter(map(len, near), dtype=np.int64, count=len(candidates))
            if lengths.any():
                which = np.repeat(np.arange(len(candidates)), lengths)
                others = np.concatenate([np.asarray(n, dtype=np.int64) for n in near if n])
                d2 = ((candidates[which] - self.centres[others]) ** 2).sum(axis=1)
                clash = d2 < (keep_out * (radius + self.radii[others])) ** 2
                ok &= np.bincount(which[clash], minlength=len(candidates)) == 0
        recent = slice(self.n_indexed, self.count)
        d2 = ((candidates[:, None, :] - self.centres[None, recent]) ** 2).sum(axis=-1)
        return ok & np.all(d2 >= (keep_out * (radius + self.radii[recent])) ** 2, axis=1)


def _place_particles(shape, params, rng):
    """Random sequential addition of particles until the covered fraction reaches ``params.solid_fraction``.

    Returns:
        tuple: ``(labels_zyx, particles)``: uint32 labels (id = 1 + index in ``particles``, not yet compacted)
        and the list of placed :class:`_Particle`.
    """
    shape = np.asarray(shape)
    n_voxels = int(np.prod(shape))
    labels = np.zeros(tuple(shape), dtype=np.uint32)
    power = np.full(tuple(shape), np.inf, dtype=np.float32)
    particles, placed = [], _CentreIndex()
    covered, skips = 0, 0
    keep_out = 1.0 - params.overlap_tolerance
    mean_volume = np.pi / 6 * params.mean_diameter_vox ** 3 * (1 + params.diameter_cv ** 2) ** 3
    extended_volume = np.prod(shape + params.mean_diameter_vox / 2)
    while covered < params.solid_fraction * n_voxels and skips < _MAX_CONSECUTIVE_SKIPS:
        # a batch of sizes worth the missing volume (+8 % for the overlaps), placed largest first
        missing = (params.solid_fraction - covered / n_voxels) * extended_volume * 1.08
        batch = np.sort(draw_diameters(rng, max(8, int(np.ceil(missing / mean_volume))), params))[::-1] / 2
        for radius in batch:
            if covered >= params.solid_fraction * n_voxels or skips >= _MAX_CONSECUTIVE_SKIPS:
                break
            centre = _find_room(rng, shape, power, placed, radius, keep_out)
            if centre is None:
                skips += 1
                continue
            skips = 0
            particle = _new_particle(rng, centre, radius, params)
            box = _box(particle, shape)
            if box is None:
                continue
            f, g, _ = _shape_field(particle, box)
            inside = f < 1
            covered += int(np.count_nonzero(inside & np.isinf(power[box])))
            wins = inside & (g < power[box])
            power[box][wins] = g[wins]
            labels[box][wins] = len(particles) + 1
            particles.append(particle)
            placed.add(particle.centre, radius)
    return labels, particles


def _find_room(rng, shape, power, placed, radius, keep_out):
    """A centre (z, y, x) where the particle overlaps no nominal sphere by more than allowed, or None.

    Candidates are drawn in the volume grown by half a radius on each side (border particles are cut, as in
    real data); a candidate whose voxel is already covered is rejected before the distance test.
    """
    lo, hi = -radius / 2, shape - 1 + radius / 2
    for _ in range(_MAX_BATCHES):
        candidates = rng.uniform(lo, hi, size=(_CANDIDATES_PER_BATCH, 3))
        voxel = np.rint(candidates).astype(int)
        inside = np.all((voxel >= 0) & (voxel < shape), axis=1)
        free = ~inside
        free[inside] = np.isinf(power[tuple(voxel[inside].T)])
        candidates = candidates[free]
        if not len(candidates):
            continue
        ok = placed.room(candidates, radius, keep_out)
        if ok.any():
            return candidates[np.argmax(ok)]
    return None


def _keep_main_fragments(labels, particles):
    """Keep each particle's largest 6-connected piece, drop particles left empty, relabel 1..N in placement order.

    Returns:
        tuple: ``(labels_zyx, kept_particles)``.
    """
    lookup = np.zeros(len(particles) + 1, dtype=np.uint32)
    kept = []
    for index, box in enumerate(ndimage.find_objects(labels, max_label=len(particles))):
        if box is None:
            continue
        own = labels[box] == index + 1
        pieces, n_pieces = ndimage.label(own)
        if n_pieces > 1:
            largest = 1 + np.argmax(np.bincount(pieces.ravel())[1:])
            labels[box][own & (pieces != largest)] = 0
        kept.append(particles[index])
        lookup[index + 1] = len(kept)
    return lookup[labels], kept


def _internal_voids(own, f, params, rng):
    """Many small spherical voids (internal porosity) inside one particle.

    The voids are centred at random voxels inside :data:`_VOID_EXTENT` of the local radius and far enough inside
    the particle's own voxels that no void touches the outside (flat contact facets included); their
    diameters are uniform in :data:`_VOID_SIZE_SPREAD` x ``internal_void_diameter_vox``, and their number gives a
    void volume of ``internal_void_fraction`` x the particle volume before overlaps (at most
    :data:`_MAX_VOID_DENSITY` of the volume where centres may lie, which small particles reach).

    Args:
        own (np.ndarray): bool box array, the particle's voxels.
        f (np.ndarray): float32 box array, normalised radius of the particle's shape (< 1 inside).

    Returns:
        np.ndarray: bool array of ``own``'s shape, True in a void.
    """
    voids = np.zeros(own.shape, dtype=bool)
    low, high = _VOID_SIZE_SPREAD
    max_radius = params.internal_void_diameter_vox / 2 * high
    # a void voxel lies within max_radius + sqrt(3) / 2 of its centre voxel: 2 voxels more keep it off the outside
    candidates = np.argwhere(own & (f < _VOID_EXTENT) & (ndimage.distance_transform_edt(own) > max_radius + 2))
    mean_volume = np.pi / 6 * params.internal_void_diameter_vox ** 3 * (high ** 4 - low ** 4) / (4 * (high - low))
    void_volume = min(params.internal_void_fraction * np.count_nonzero(own), _MAX_VOID_DENSITY * len(candidates))
    n_voids = int(round(void_volume / mean_volume))
    if not n_voids:
        return voids
    centres = candidates[rng.integers(len(candidates), size=n_voids)] + rng.uniform(-0.5, 0.5, (n_voids, 3))
    radii = params.internal_void_diameter_vox / 2 * rng.uniform(low, high, n_voids)
    reach = int(np.ceil(max_radius))
    offsets = np.stack(np.meshgrid(*[np.arange(-reach, reach + 1)] * 3, indexing='ij'), axis=-1).reshape(-1, 3)
    per_chunk = max(1, _VOID_POINTS_PER_CHUNK // len(offsets))
    for start in range(0, n_voids, per_chunk):
        chunk = slice(start, start + per_chunk)
        points = np.rint(centres[chunk])[:, None, :].astype(np.int64) + offsets[None]  # (n, K, 3)
        hit = ((points - centres[chunk, None, :]) ** 2).sum(axis=-1) <= radii[chunk, None] ** 2
        points = points[hit & np.all((points >= 0) & (points < own.shape), axis=-1)]  # the volume border cuts
        voids[tuple(points.T)] = True
    return voids & own


def _carve_damage(labels, phases, particles, params, void_rng):
    """Open the hollow cores, cracks and internal voids of the damaged particles: their voxels become pore, labels
    stay.

    Void voxels connected to the outside of their particle are left solid, so that every void is enclosed and the
    filled particle is recovered from the solid by hole filling; the volume border counts as a wall (a void cut by
    it stays pore, open at the border, inside the filled label: hole filling does not recover such a particle).
    Which particles are porous, and their voids, are drawn from ``void_rng`` (None when ``porous_fraction`` is 0),
    so that porosity changes neither the particles nor the coats (bulk carbon-binder domains, drawn after, do
    change: their generator follows the void one).

    Returns:
        tuple: int64 arrays ``(hollow_voxels, crack_voxels, porous_voxels)``, the void voxels of each particle (a
        voxel counts once: core first, then crack, then internal void).
    """
    voxels = np.zeros((3, len(particles)), dtype=np.int64)
    porous = np.zeros(len(particles), dtype=bool)
    if void_rng is not None:
        porous = ((void_rng.random(len(particles)) < params.porous_fraction)
                  & (np.array([p.radius for p in particles]) >= _MIN_DAMAGE_RADIUS_VOX))
    for index, box in enumerate(ndimage.find_objects(labels)):
        particle = particles[index]
        if box is None or (not particle.hollow_radius and not particle.cracks and not porous[index]):
            continue
        box = tuple(slice(max(s.start - 1, 0), min(s.stop + 1, n)) for s, n in zip(box, labels.shape))
        own = labels[box] == index + 1
        f, _, v = _shape_field(particle, box)
        core = own & (f < particle.hollow_radius)
        crack = np.zeros_like(own)
        half_width = np.float32(params.crack_width_vox / 2) * (1 - np.float32(0.6 / _CRACK_EXTENT) * f)
        for normal, point, wave_dir, wave_amp, wave_len in particle.cracks:
            along_wave = sum(v[k] * np.float32(wave_dir[k]) for k in range(3))
            distance = (sum((v[k] - np.float32(point[k])) * np.float32(normal[k]) for k in range(3))
                        + np.float32(wave_amp) * np.sin(np.float32(2 * np.pi / wave_len) * along_wave))
            crack |= (np.abs(distance) < half_width) & (f < _CRACK_EXTENT)
        crack &= own & ~core
        pores = np.zeros_like(own)
        if porous[index]:
            pores = _internal_voids(own, f, params, void_rng) & ~core & ~crack
        void = core | crack | pores
        pieces, _ = ndimage.label(void | ~own)
        enclosed = void & ~np.isin(pieces, np.unique(pieces[~own]))
        phases[box][enclosed] = PORE
        voxels[:, index] = [np.count_nonzero(kind & enclosed) for kind in (core, crack, pores)]
    return tuple(voxels)


def _smooth_noise(shape, correlation_vox, rng):
    """Gaussian random field (float32, ``shape``) with correlation length about ``correlation_vox`` voxels."""
    step = max(1.0, correlation_vox / 2)
    coarse_shape = tuple(int(np.ceil(n / step)) + 2 for n in shape)
    coarse = ndimage.gaussian_filter(rng.standard_normal(coarse_shape).astype(np.float32), 1.0)
    fine = ndimage.zoom(coarse, step, order=1, grid_mode=False)
    return fine[tuple(slice(0, n) for n in shape)]


def _add_carbon_binder(labels, phases, particles, params, rng, domain_rng):
    """Put carbon-binder in the pore space: a patchy coat on the particles, bridges across narrow necks and bulk
    domains.

    The coat is the pore shell within ``cb_thickness_vox`` of a particle's surface, kept where a smooth random
    field exceeds its ``1 - cb_coverage`` quantile; a bridge is a pore voxel within ``cb_bridge_radius_vox`` of
    two particles or more (the neck around a contact, or a gap narrower than twice the radius). Distances to a
    surface are measured along the particle's own shape function, so no global distance transform is needed.
    The domains are the pore voxels outside particles where a second smooth field (drawn from ``domain_rng``,
    correlation length about half ``mean_diameter_vox``; None when ``cb_domain_fraction`` is 0) exceeds its
    ``1 - cb_domain_fraction`` quantile: blobs of carbon-binder that fill whole gaps, next to particles or not.
    """
    thickness, bridge = params.cb_thickness_vox, params.cb_bridge_radius_vox
    coat = np.zeros(labels.shape, dtype=bool)
    near = np.zeros(labels.shape, dtype=np.uint8)  # particles within the bridge radius of each voxel
    for particle in particles:
        box = _box(particle, labels.shape, margin=max(thickness, bridge))
        if box is None:
            continue
        f, _, _ = _shape_field(particle, box)
        outside_distance = (f - 1) * np.float32(particle.radius)  # ~ distance to the surface, voxels
        coat[box] |= outside_distance <= thickness
        near[box] += outside_distance <= bridge
    pore = labels == 0
    binder = pore & (near >= 2) if bridge > 0 else np.zeros(labels.shape, dtype=bool)
    shell = pore & coat
    if thickness > 0 and params.cb_coverage > 0 and shell.any():
        noise = _smooth_noise(labels.shape, params.mean_diameter_vox / 3, rng)
        binder |= shell & (noise >= np.quantile(noise[shell], 1 - params.cb_coverage))
    if domain_rng is not None and pore.any():
        field = _smooth_noise(labels.shape, params.mean_diameter_vox / 2, domain_rng)
        binder |= pore & (field >= np.quantile(field[pore], 1 - params.cb_domain_fraction))
    phases[binder] = CARBON_BINDER


def make_microstructure(shape_zyx, params, rng):
    """Generate the particle instances and the three phases of an NMC electrode volume.

    Args:
        shape_zyx (tuple[int, int, int]): volume shape (Z, Y, X) in voxels.
        params (SynthParams): generator parameters (microstructure fields are used).
        rng (np.random.Generator): random source; the result is a pure function of its state.

    Returns:
        tuple: ``(labels_zyx, phases_zyx, info)``. ``labels_zyx``: (Z, Y, X) uint16 (uint32 beyond 65535
        particles) filled-particle instance ids 1..N, 0 = background, ids in placement order (largest first).
        ``phases_zyx``: (Z, Y, X) uint8, 0 pore (internal voids included), 1 NMC, 2 carbon-binder.
        ``info``: dict with per-particle arrays (index = id - 1) ``nominal_diameter_vox``, ``hollow_voxels``,
        ``crack_voxels``, ``porous_voxels`` and the scalar ``particle_fraction`` reached.
    """
    labels, particles = _place_particles(shape_zyx, params, rng)
    labels, particles = _keep_main_fragments(labels, particles)
    particle_fraction = float(np.count_nonzero(labels)) / labels.size
    if particle_fraction < params.solid_fraction - 0.02:
        warnings.warn(f'particle packing stopped at a volume fraction of {particle_fraction:.3f}, below '
                      f'solid_fraction={params.solid_fraction}: no room was found for more particles; raise '
                      f'overlap_tolerance or diameter_cv, or lower solid_fraction', RuntimeWarning, stacklevel=2)
    labels = labels.astype(np.uint16 if len(particles) <= np.iinfo(np.uint16).max else np.uint32)
    phases = np.where(labels > 0, NMC, PORE).astype(np.uint8)
    void_rng = rng.spawn(1)[0] if params.porous_fraction > 0 else None  # spawning leaves rng's draws unchanged
    domain_rng = rng.spawn(1)[0] if params.cb_domain_fraction > 0 else None  # ... and spawns after it
    hollow_voxels, crack_voxels, porous_voxels = _carve_damage(labels, phases, particles, params, void_rng)
    _add_carbon_binder(labels, phases, particles, params, rng, domain_rng)
    info = dict(nominal_diameter_vox=np.array([2 * p.radius for p in particles]), hollow_voxels=hollow_voxels,
                crack_voxels=crack_voxels, porous_voxels=porous_voxels, particle_fraction=particle_fraction)
    return labels, phases, info
