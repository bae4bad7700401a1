"""A batch command's process keeps the memory it frees for its next allocation.

Building features, training, scoring a book and monitoring allocate and free column buffers of
megabytes to gigabytes, over and over. By default glibc gives a freed large block straight back to
the operating system (``munmap``, or trimming the heap), so the next buffer of the same size is
faulted in and zeroed again page by page. On a virtual machine that reports freed memory to its host
(virtio-balloon free page reporting, as some cloud VMs do) each of those faults costs a fault in the host
too. On the 1M-borrower world this was half of ``monitor``'s kernel time.

So a batch process keeps freed blocks of up to 32 MiB in its heap, and does not give its heap back, and
NumPy does not ask for transparent huge pages for its arrays (with them, each first touch zeroes 2 MiB;
the measured gain needs both settings: either alone left most of the kernel time).

Keeping freed blocks in the process costs no extra peak: the process keeps only what its peak already
needed. A long-running service (``creditmodel serve``) does not do this, so that it gives back what
a burst took.
"""

from __future__ import annotations

import ctypes
import sys

__all__ = ["KEPT", "keep_freed_memory"]

# mallopt's parameters (glibc's malloc.h)
M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_THRESHOLD = -1, -2, -3

KEPT = {
    # blocks up to 32 MiB (glibc's largest threshold) come from the heap, where a freed one is reused,
    # instead of each being mapped and unmapped
    M_MMAP_THRESHOLD: 32 << 20,
    # the heap is given back only when more than 2 GiB at its top is free (default 128 KiB)
    M_TRIM_THRESHOLD: (1 << 31) - 1,
    # the heap grows 256 MiB at a time, not by what one allocation needs
    M_TOP_PAD: 256 << 20,
}


def keep_freed_memory() -> bool:
    """Have glibc's allocator keep freed memory in this process (the settings in ``KEPT``). Returns
    whether it did: False where the C library is not glibc (macOS, musl), which is left as it is."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # a C library without mallopt
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    if not all(mallopt(param, value) == 1 for param, value in KEPT.items()):
        return False
    try:  # NumPy's switch for the madvise(MADV_HUGEPAGE) of its large arrays
        from numpy._core import multiarray
    except ImportError:  # NumPy 1
        from numpy.core import multiarray  # type: ignore[no-redef]

    setter = getattr(multiarray, "_set_madvise_hugepage", None)
    if setter is not None:
        setter(False)
    return True
