"""resolve(): local images and modules, Debian packages (with fake apt), and refusals."""

from __future__ import annotations

import tarfile
import time
from pathlib import Path

import pytest

from harness import cache
from harness.errors import UsageError
from harness.kernel import debian
from harness.kernel import resolve as resolve_mod
from harness.kernel.apt import PackageGone
from harness.kernel.debian import Resolution
from harness.kernel.resolve import resolve
from harness.lava.cli import board_image
from harness.model import DebianSource, KernelSource
from harness.run.boot import kernel_facts
from tests.fakes import kernels as fake

RELEASE = "6.12.0-fake-arm64"


@pytest.fixture(autouse=True)
def _private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KHARNESS_CACHE", str(tmp_path / "cache"))


def _image(tmp_path: Path, data: bytes | None = None, name: str = "Image") -> Path:
    path = tmp_path / name
    path.write_bytes(data if data is not None else fake.arm64_image(RELEASE))
    return path


def _local(image: Path, arch: str = "arm64", **kw: object) -> KernelSource:
    return KernelSource(name="mine", arch=arch, image=image, **kw)  # type: ignore[arg-type]


# --- local ----------------------------------------------------------------------


def test_fake_local_image_used_in_place(tmp_path: Path) -> None:
    image = _image(tmp_path)
    kernel = resolve(_local(image))
    assert (kernel.name, kernel.arch, kernel.release) == ("mine", "arm64", RELEASE)
    assert kernel.image == kernel.original_image == image
    assert kernel.entry == "as shipped"
    assert kernel.image_sha256 == cache.sha256_file(image)
    assert kernel.compression == "none"
    assert kernel.origin == {"path": str(image)}
    assert kernel.modules_dir is None and kernel.config is None


def test_fake_local_zboot_gets_a_raw_image_in_the_cache(tmp_path: Path) -> None:
    raw = fake.arm64_image(RELEASE)
    image = _image(tmp_path, fake.zboot(raw, "gzip"), "vmlinuz.efi")
    kernel = resolve(_local(image))
    assert kernel.original_image == image
    assert kernel.image.is_relative_to(cache.cache_root()) and kernel.image.read_bytes() == raw
    assert kernel.compression == "gzip"
    assert kernel.entry == "unpacked" and board_image(kernel) == kernel.image



@pytest.mark.parametrize("pvh", [True, False])
def test_fake_local_bzimage_boots_its_pvh_vmlinux_where_it_has_one(tmp_path: Path, pvh: bool) -> None:
    """QEMU gets the vmlinux (kept in the cache) when it has a PVH entry point, else the
    bzImage in place; cell.json's kernel facts say which, and LAVA gets the bzImage."""
    elf = fake.vmlinux(pvh=pvh)
    image = _image(tmp_path, fake.bzimage_around(elf, "xz", "6.12.0-fake-amd64"), "bzImage")
    kernel = resolve(_local(image, arch="x86_64"))
    assert kernel.original_image == image
    if pvh:
        assert kernel.image.is_relative_to(cache.cache_root()) and kernel.image.read_bytes() == elf
    else:
        assert kernel.image == image
    assert kernel.entry == kernel_facts(kernel)["entry"] == ("pvh" if pvh else "as shipped")
    assert board_image(kernel) == image

def test_wrong_arch_is_refused_naming_both(tmp_path: Path) -> None:
    image = _image(tmp_path)
    with pytest.raises(UsageError) as err:
        resolve(_local(image, arch="x86_64"))
    assert str(err.value) == (f"image {image} is arm64 but kernel mine says x86_64; "
                              "fix arch: or the path")


def test_second_resolution_reads_the_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    image = _image(tmp_path)
    first = resolve(_local(image))
    monkeypatch.setattr(resolve_mod, "identify", _forbidden)
    assert resolve(_local(image)) == first


def test_changed_image_is_identified_again(tmp_path: Path) -> None:
    image = _image(tmp_path)
    resolve(_local(image))
    image.write_bytes(fake.arm64_image("6.12.1-rebuilt"))
    assert resolve(_local(image)).release == "6.12.1-rebuilt"


def test_missing_image_and_config(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="does not exist"):
        resolve(_local(tmp_path / "nope"))
    with pytest.raises(UsageError, match=r"kernel config .* does not exist"):
        resolve(_local(_image(tmp_path), config=tmp_path / "nope.config"))


def test_image_and_debian_together_are_refused(tmp_path: Path) -> None:
    deb = DebianSource(suite="trixie", package="linux-image-cloud-arm64", arch="arm64")
    with pytest.raises(UsageError, match="exactly one of image:, debian: or tree:"):
        resolve(_local(_image(tmp_path), debian=deb))
    with pytest.raises(UsageError, match="exactly one of image:, debian: or tree:"):
        resolve(KernelSource(name="none", arch="arm64"))


@pytest.mark.parametrize("given", ["root", "lib/modules", f"lib/modules/{RELEASE}"])
def test_fake_modules_tree_of_the_same_release(tmp_path: Path, given: str) -> None:
    fake.modules_tree(tmp_path / "install", RELEASE, {"drivers/net/virtio_net": "module"})
    modules = tmp_path / "install" if given == "root" else tmp_path / "install" / given
    kernel = resolve(_local(_image(tmp_path), modules=modules))
    assert kernel.modules_dir == tmp_path / "install/lib/modules" / RELEASE


def test_fake_modules_of_another_release_are_refused(tmp_path: Path) -> None:
    fake.modules_tree(tmp_path / "install", "6.1.0-other", {"drivers/net/virtio_net": "module"})
    image = _image(tmp_path)
    with pytest.raises(UsageError, match=f"are for 6.1.0-other but image {image} is {RELEASE}"):
        resolve(_local(image, modules=tmp_path / "install"))


def test_empty_modules_dir_is_refused(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(UsageError, match="holds no lib/modules/<release> tree"):
        resolve(_local(_image(tmp_path), modules=tmp_path / "empty"))


def test_fake_modules_tarball_is_unpacked_once(tmp_path: Path) -> None:
    fake.modules_tree(tmp_path / "install", RELEASE, {"drivers/net/virtio_net": "module"})
    (tmp_path / "install/lib/modules" / RELEASE / "build").symlink_to("/usr/src/linux")
    tarball = tmp_path / "modules.tar.xz"
    with tarfile.open(tarball, "w:xz") as tar:
        tar.add(tmp_path / "install/lib", arcname="lib")
    kernel = resolve(_local(_image(tmp_path), modules=tarball))
    assert kernel.modules_dir is not None
    assert kernel.modules_dir.is_relative_to(cache.cache_root() / "modules")
    assert (kernel.modules_dir / "kernel/drivers/net/virtio_net.ko").exists()
    assert (kernel.modules_dir / "modules.dep").exists()
    assert not (kernel.modules_dir / "build").exists()  # a link out of the tree is dropped
    assert resolve(_local(_image(tmp_path), modules=tarball)).modules_dir == kernel.modules_dir


def test_unreadable_modules_tarball(tmp_path: Path) -> None:
    bad = tmp_path / "modules.tar.gz"
    bad.write_bytes(b"\x1f\x8bnot really")
    with pytest.raises(UsageError, match="cannot read modules tarball"):
        resolve(_local(_image(tmp_path), modules=bad))


# --- Debian, apt replaced by fakes ------------------------------------------------

DEB_SRC = KernelSource(name="trixie-arm64", arch="arm64", debian=DebianSource(
    suite="trixie", package="linux-image-cloud-arm64", arch="arm64"))


def _resolution(deb: Path, version: str = "6.12.0-1") -> Resolution:
    return Resolution(
        mirror="http://deb.debian.org/debian", suite="trixie", package="linux-image-cloud-arm64",
        arch="arm64", image_package=f"linux-image-{RELEASE}", version=version,
        url=f"http://deb.debian.org/debian/pool/{deb.name}", filename=deb.name,
        size=deb.stat().st_size, sha256=cache.sha256_file(deb), resolved_at=time.time(),
    )


class FakeArchive:
    """resolve_package and fetch_deb over synthetic packages; counts what is fetched."""

    def __init__(self, tmp_path: Path) -> None:
        self.debs = {"6.12.0-1": fake.image_package(tmp_path / "a", RELEASE, "6.12.0-1"),
                     "6.12.0-2": fake.image_package(tmp_path / "b", RELEASE, "6.12.0-2",
                                                    image=fake.arm64_image(RELEASE, 16384))}
        self.current = "6.12.0-1"
        self.gone: set[str] = set()
        self.fetched: list[str] = []
        self.resolved: dict[str, Resolution] = {}

    def resolve_package(self, src: DebianSource, refresh: bool = False,
                        progress: debian.Progress = debian.log_progress) -> Resolution:
        # Like the real one, a version is resolved once and then read from the cache, so
        # it keeps the time it was first resolved (a fresh clock here once put the two
        # resolutions of one version a second apart).
        if self.current not in self.resolved:
            self.resolved[self.current] = _resolution(self.debs[self.current], self.current)
        return self.resolved[self.current]

    def fetch_deb(self, res: Resolution, progress: debian.Progress) -> Path:
        if res.version in self.gone:
            raise PackageGone("gone", "refresh")
        self.fetched.append(res.version)
        return self.debs[res.version]


@pytest.fixture
def archive(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeArchive:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    archive = FakeArchive(tmp_path)
    monkeypatch.setattr(debian, "resolve_package", archive.resolve_package)
    monkeypatch.setattr(debian, "fetch_deb", archive.fetch_deb)
    return archive


def test_fake_debian_kernel(archive: FakeArchive) -> None:
    kernel = resolve(DEB_SRC)
    entry = kernel.original_image.parent.parent
    assert kernel.release == RELEASE and kernel.arch == "arm64"
    assert kernel.image == kernel.original_image == entry / f"boot/vmlinuz-{RELEASE}"
    assert kernel.config == entry / f"boot/config-{RELEASE}"
    assert kernel.modules_dir == entry / "lib/modules" / RELEASE
    assert kernel.origin["version"] == "6.12.0-1"
    assert kernel.origin["image_package"] == f"linux-image-{RELEASE}"
    assert kernel.origin["deb_sha256"] == cache.sha256_file(archive.debs["6.12.0-1"])
    assert kernel.origin["url"].endswith(".deb")
    assert resolve(DEB_SRC) == kernel
    assert archive.fetched == ["6.12.0-1"]  # the second resolution downloaded nothing


def test_new_version_is_a_new_entry(archive: FakeArchive) -> None:
    old = resolve(DEB_SRC)
    archive.current = "6.12.0-2"
    new = resolve(DEB_SRC)
    assert new.image_sha256 != old.image_sha256 and old.image.exists()


def test_version_gone_from_the_mirror_resolves_again(archive: FakeArchive,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    archive.gone = {"6.12.0-1"}
    refreshed: list[bool] = []

    def resolve_package(src: DebianSource, refresh: bool = False,
                        progress: debian.Progress = debian.log_progress) -> Resolution:
        refreshed.append(refresh)
        version = "6.12.0-2" if refresh else "6.12.0-1"
        return _resolution(archive.debs[version], version)

    monkeypatch.setattr(debian, "resolve_package", resolve_package)
    assert resolve(DEB_SRC).origin["version"] == "6.12.0-2"
    assert refreshed == [False, True]


def test_debian_arch_must_match(archive: FakeArchive) -> None:
    src = KernelSource(name="k", arch="x86_64", debian=DEB_SRC.debian)
    with pytest.raises(UsageError, match="is x86_64 but its Debian package is arm64"):
        resolve(src)


def _forbidden(*args: object, **kwargs: object) -> None:
    raise AssertionError("a cached kernel was identified again")


def test_config_of_a_build_tree_is_found(tmp_path: Path) -> None:
    boot = tmp_path / "linux/arch/arm64/boot"
    boot.mkdir(parents=True)
    (tmp_path / "linux/.config").write_text("CONFIG_VIRTIO_NET=y\n")
    kernel = resolve(_local(_image(boot)))
    assert kernel.config == tmp_path / "linux/.config"
    assert kernel.origin["config"] == str(tmp_path / "linux/.config")


def test_named_config_wins_over_the_tree(tmp_path: Path) -> None:
    boot = tmp_path / "linux/arch/arm64/boot"
    boot.mkdir(parents=True)
    (tmp_path / "linux/.config").write_text("CONFIG_VIRTIO_NET=y\n")
    mine = tmp_path / "my.config"
    mine.write_text("CONFIG_VIRTIO_NET=m\n")
    assert resolve(_local(_image(boot), config=mine)).config == mine


def test_modules_tarball_without_a_tree_is_refused_and_not_cached(tmp_path: Path) -> None:
    (tmp_path / "readme").write_text("no modules here\n")
    tarball = tmp_path / "modules.tar.gz"
    with tarfile.open(tarball, "w:gz") as tar:
        tar.add(tmp_path / "readme", arcname="readme")
    with pytest.raises(UsageError, match="holds no lib/modules/<release> tree"):
        resolve(_local(_image(tmp_path), modules=tarball))
    assert not [p for p in (cache.cache_root() / "modules").iterdir() if p.is_dir()]
