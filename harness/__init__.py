"""kharness: boot kernels under QEMU, drive DMA stress, measure slab and swiotlb."""

from pathlib import Path

__version__ = "0.1.0"

SHIPPED = ("guest_scripts", "configs")


def data_dir(name: str) -> Path:
    """A folder kharness ships beside its code: `guest_scripts` or `configs`.

    A checkout (and so an editable install) has them at the top of the
    repository; a wheel carries them as `harness/_data/<name>` (setup.py's
    build step copies them there), so an installed kharness finds them too.
    """
    if name not in SHIPPED:
        raise ValueError(f"{name!r} is not shipped data; one of {', '.join(SHIPPED)}")
    package = Path(__file__).resolve().parent
    wheel = package / "_data" / name
    return wheel if wheel.is_dir() else package.parent / name
