"""Debian resolution caching (TTL, refresh, offline fallback), download and unpacking.

apt itself is replaced by fakes here; tests/test_kernel_boot.py talks to the
real archive.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from harness import cache
from harness.errors import InfraError, UsageError
from harness.kernel import debian
from harness.kernel.apt import PrivateApt
from harness.kernel.debian import Resolution
from harness.model import DebianSource
from tests.fakes import kernels as fake

SRC = DebianSource(suite="trixie", package="linux-image-cloud-arm64", arch="arm64")


@pytest.fixture(autouse=True)
def _private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KHARNESS_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("KHARNESS_RESOLVE_TTL", raising=False)


def _resolution(version: str = "6.12.0-1", sha256: str = "a" * 64, **kw: object) -> Resolution:
    values: dict[str, object] = dict(
        mirror=SRC.mirror, suite=SRC.suite, package=SRC.package, arch="arm64",
        image_package="linux-image-6.12.0-fake-arm64", version=version,
        url=f"{SRC.mirror}/pool/x.deb", filename="x.deb", size=1, sha256=sha256,
        resolved_at=time.time(),
    )
    values.update(kw)
    return Resolution(**values)  # type: ignore[arg-type]


class FakeApt:
    """Stands in for _resolve_with_apt: counts calls, can fail like a dead mirror."""

    def __init__(self) -> None:
        self.calls = 0
        self.fail = False

    def __call__(self, apt: PrivateApt, src: DebianSource, progress: debian.Progress) -> Resolution:
        self.calls += 1
        if self.fail:
            raise InfraError(f"cannot reach the mirror {src.mirror}", "check the network")
        return _resolution(version=f"6.12.{self.calls}-1")


@pytest.fixture
def fake_apt(monkeypatch: pytest.MonkeyPatch) -> FakeApt:
    fake_apt = FakeApt()
    monkeypatch.setattr(debian, "_resolve_with_apt", fake_apt)
    return fake_apt


def test_resolution_is_reused_within_the_ttl(fake_apt: FakeApt) -> None:
    first = debian.resolve_package(SRC)
    second = debian.resolve_package(SRC)
    assert fake_apt.calls == 1
    assert second == first


def test_refresh_asks_again(fake_apt: FakeApt) -> None:
    debian.resolve_package(SRC)
    again = debian.resolve_package(SRC, refresh=True)
    assert fake_apt.calls == 2
    assert again.version == "6.12.2-1"


def test_expired_ttl_asks_again(fake_apt: FakeApt, monkeypatch: pytest.MonkeyPatch) -> None:
    debian.resolve_package(SRC)
    monkeypatch.setenv("KHARNESS_RESOLVE_TTL", "0")
    debian.resolve_package(SRC)
    assert fake_apt.calls == 2


def test_other_suite_is_another_resolution(fake_apt: FakeApt) -> None:
    debian.resolve_package(SRC)
    debian.resolve_package(DebianSource(suite="bookworm", package=SRC.package, arch="arm64"))
    assert fake_apt.calls == 2


def test_expired_and_offline_uses_the_last_resolution(
    fake_apt: FakeApt, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = debian.resolve_package(SRC)
    monkeypatch.setenv("KHARNESS_RESOLVE_TTL", "0")
    fake_apt.fail = True
    said: list[str] = []
    assert debian.resolve_package(SRC, progress=said.append) == first
    assert "warning: cannot reach the mirror" in said[0]


def test_refresh_offline_is_an_infra_error(fake_apt: FakeApt) -> None:
    debian.resolve_package(SRC)
    fake_apt.fail = True
    with pytest.raises(InfraError, match="cannot reach the mirror"):
        debian.resolve_package(SRC, refresh=True)


def test_first_resolution_offline_is_an_infra_error(fake_apt: FakeApt) -> None:
    fake_apt.fail = True
    with pytest.raises(InfraError):
        debian.resolve_package(SRC)


def test_unreadable_resolution_is_resolved_again(fake_apt: FakeApt) -> None:
    debian.resolve_package(SRC)
    [stored] = (cache.cache_root() / "resolutions").glob("*.json")
    stored.write_text('{"mirror": "x"}')
    debian.resolve_package(SRC)
    assert fake_apt.calls == 2


def test_bad_ttl_is_a_usage_error(fake_apt: FakeApt, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KHARNESS_RESOLVE_TTL", "a day")
    with pytest.raises(UsageError, match="KHARNESS_RESOLVE_TTL"):
        debian.resolve_package(SRC)


# --- download ---------------------------------------------------------------


def _fake_download(monkeypatch: pytest.MonkeyPatch, content: bytes) -> list[str]:
    calls: list[str] = []

    def download(self: PrivateApt, package: str, version: str, dest_dir: Path) -> Path:
        calls.append(f"{package}={version}")
        out = dest_dir / f"{package}_{version}_arm64.deb"
        out.write_bytes(content)
        return out

    monkeypatch.setattr(PrivateApt, "download", download)
    monkeypatch.setattr(PrivateApt, "has_lists", lambda self: True)
    return calls


def test_deb_is_downloaded_once_and_checked(monkeypatch: pytest.MonkeyPatch,
                                            tmp_path: Path) -> None:
    content = b"not really a deb"
    calls = _fake_download(monkeypatch, content)
    res = _resolution(sha256=cache.sha256_file(_tmp(tmp_path, content)), filename="k.deb")
    first = debian.fetch_deb(res)
    assert debian.fetch_deb(res) == first
    assert calls == ["linux-image-6.12.0-fake-arm64=6.12.0-1"]
    assert first.name == "k.deb" and first.read_bytes() == content


def test_apt_package_cache_is_dropped_after_download(monkeypatch: pytest.MonkeyPatch,
                                                     tmp_path: Path) -> None:
    content = b"deb"
    _fake_download(monkeypatch, content)
    apt = debian.apt_for(SRC)
    apt.prepare()
    pkgcache = apt.root / "cache/pkgcache.bin"
    pkgcache.write_bytes(b"40 MB of apt's own cache")
    debian.fetch_deb(_resolution(sha256=cache.sha256_file(_tmp(tmp_path, content))))
    assert not pkgcache.exists()
    assert (apt.root / "etc/sources.list").exists()  # the rest of the private apt stays


def test_deb_with_wrong_sha256_leaves_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_download(monkeypatch, b"tampered")
    with pytest.raises(InfraError, match="the index says"):
        debian.fetch_deb(_resolution(sha256="b" * 64))
    assert not (cache.cache_root() / "debs" / ("b" * 64)).exists()


def _tmp(tmp_path: Path, content: bytes) -> Path:
    path = tmp_path / "expected"
    path.write_bytes(content)
    return path


# --- unpacking ----------------------------------------------------------------


@pytest.mark.parametrize("merged_usr", [True, False])
def test_unpack_synthetic_package(tmp_path: Path, merged_usr: bool) -> None:
    deb = fake.image_package(tmp_path, "6.12.0-t", merged_usr=merged_usr)
    dest = tmp_path / "out"
    dest.mkdir()
    files = debian.unpack(deb, dest)
    assert files.release == "6.12.0-t"
    assert files.image == dest / "boot/vmlinuz-6.12.0-t"
    assert files.config == dest / "boot/config-6.12.0-t"
    assert files.modules_dir == dest / "lib/modules/6.12.0-t"
    assert (files.modules_dir / "kernel/drivers/net/virtio_net.ko").exists()
    assert (files.modules_dir / "modules.dep").exists()  # depmod ran, as installing would
    assert sorted(p.name for p in dest.iterdir()) == ["boot", "lib"]  # no dtbs, no usr/


def test_package_without_image_is_refused(tmp_path: Path) -> None:
    deb = fake.image_package(tmp_path, "6.12.0-t", with_image=False)
    with pytest.raises(UsageError, match="holds no boot/vmlinuz"):
        debian.unpack(deb, tmp_path)
