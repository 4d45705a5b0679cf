"""Block geometry of a 3D assembly spread over processes: which z-slices each rank assembles, and the few collective
steps between its passes.

A volume's z-slabs (``slab`` slices each) are cut into one contiguous z-block per rank, as even as whole slabs
allow (:func:`z_block`). A rank links or fuses its block alone, slab by slab, giving block-local ids; what crosses
block faces (links of linking, seed joins of fusion, contact faces) is computed from the slices on either side of
a face, after a barrier, and the resulting graph of ids is gathered and solved once by every rank
(:func:`connected_groups`): it has one node per particle piece, far fewer than the voxels.

Tables keyed by 2D instances or particle sections, which sum over all z (the overlaps and areas of xz and yz
instances, the voxel counts of sections), grow with the volume, so they are not gathered: each rank writes its
block's table to the shared work folder and totals, from the other ranks' files read one at a time, only the
entries its own block needs (:meth:`Ranks.sum_tables`). Memory per rank thus grows with its block, not the volume.
"""
import os
import os.path as osp

import numpy as np
from mmengine.dist import all_gather_object, barrier, get_dist_info
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components


def z_block(depth, slab, rank, world_size):
    """The z-range ``(start, stop)`` of the block of ``rank``: whole slabs, ranks in z order, as even as possible
    (a rank gets an empty block when there are fewer slabs than ranks)."""
    n_slabs = -(-depth // slab)
    first, last = n_slabs * rank // world_size, n_slabs * (rank + 1) // world_size
    return min(first * slab, depth), min(last * slab, depth)


class Ranks:
    """The processes of one assembly: ``rank`` of ``world_size``, with :meth:`gather` and :meth:`barrier`.

    ``Ranks()`` is a single process (nothing to wait for); :meth:`current` is the torch.distributed process group
    when one is initialised (every rank must then take part in every collective step), exchanging tables through
    ``shared_dir``, a folder every rank sees.
    """

    def __init__(self, rank=0, world_size=1, distributed=False, shared_dir=None):
        self.rank, self.world_size, self._distributed = rank, world_size, distributed
        self.shared_dir = shared_dir

    @classmethod
    def current(cls, shared_dir=None):
        """The ranks of the initialised process group (tables exchanged in ``shared_dir``), or a single process."""
        rank, world_size = get_dist_info()
        return cls(rank, world_size, world_size > 1, shared_dir)

    def sharing(self, shared_dir):
        """The same ranks, exchanging tables in ``shared_dir``."""
        return Ranks(self.rank, self.world_size, self._distributed, shared_dir)

    def block(self, depth, slab):
        """This rank's z-block of a volume of ``depth`` slices (:func:`z_block`)."""
        return z_block(depth, slab, self.rank, self.world_size)

    def rank_above(self, depth, slab):
        """The rank whose block ends where this rank's (non-empty) block starts."""
        start = self.block(depth, slab)[0]
        return next(rank for rank in range(self.world_size)
                    if z_block(depth, slab, rank, self.world_size)[1] == start)

    def id_offsets(self, n_ids):
        """Gathers every rank's number of block-local ids (1..``n_ids``); returns the int64 offsets that make them
        one global id space (rank r's id i is ``offsets[r] + i``; ``offsets[-1]``: all ids). Also a barrier."""
        return np.concatenate([[0], np.cumsum(self.gather(int(n_ids)))]).astype(np.int64)

    def gather(self, obj):
        """Every rank's ``obj`` (picklable), in rank order, on every rank."""
        return all_gather_object(obj) if self._distributed else [obj]

    def barrier(self):
        """Wait until every rank is here."""
        if self._distributed:
            barrier()

    def sum_tables(self, name, keys, counts, needed=None, shift=0):
        """Totals over every rank of a table each rank holds for its block, for the entries this rank needs.

        Args:
            name (str): the table's name, unique per call (its files in ``shared_dir``).
            keys (np.ndarray): sorted distinct int64 keys of this rank's table.
            counts (np.ndarray): float64 counts of each key.
            needed (np.ndarray | None): int64 groups (``key >> shift``) this rank needs besides its own keys'.
            shift (int): entries are needed by group ``key >> shift``: every rank's entries of a needed group
                are totalled, also keys this rank does not hold.

        Returns:
            tuple: ``(keys, counts)``, sorted distinct keys of the needed groups and their totals over the ranks.
        """
        if not self._distributed:
            return keys, counts
        groups = np.unique(keys >> shift) if needed is None else np.union1d(keys >> shift, needed)
        os.makedirs(self.shared_dir, exist_ok=True)
        path = osp.join(self.shared_dir, f'{name}_{self.rank}.npz')
        np.savez(path + '.tmp.npz', keys=keys, counts=counts)
        os.replace(path + '.tmp.npz', path)
        self.barrier()
        parts_keys, parts_counts = [keys], [counts]
        for rank in range(self.world_size):
            if rank != self.rank:
                with np.load(osp.join(self.shared_dir, f'{name}_{rank}.npz')) as table:
                    other_keys, other_counts = table['keys'], table['counts']
                wanted = np.isin(other_keys >> shift, groups)
                parts_keys.append(other_keys[wanted])
                parts_counts.append(other_counts[wanted])
        self.barrier()  # every rank has read every file
        os.remove(path)
        unique, inverse = np.unique(np.concatenate(parts_keys), return_inverse=True)
        return unique, np.bincount(inverse, weights=np.concatenate(parts_counts), minlength=unique.size)


def connected_groups(n_ids, edges):
    """Groups of ids joined by ``edges``, numbered 0, 1, ... in order of their smallest id
    (:func:`scipy.sparse.csgraph.connected_components` numbers components in order of their first node).

    Args:
        n_ids (int): ids are 0..n_ids - 1; 0 is background and stays 0 (give it no edge).
        edges (np.ndarray): (E, 2) integer pairs of joined ids.

    Returns:
        np.ndarray: int64 lookup table, id -> group number (0 -> 0).
    """
    edges = np.asarray(edges, np.int64).reshape(-1, 2)
    graph = coo_matrix((np.ones(len(edges), np.int8), (edges[:, 0], edges[:, 1])), shape=(n_ids, n_ids))
    return connected_components(graph, directed=False)[1].astype(np.int64)
