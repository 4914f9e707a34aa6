"""The private apt: its isolation from the host, and reading apt's output."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.errors import InfraError, UsageError
from harness.kernel import apt
from harness.kernel.apt import PrivateApt, parse_depends, parse_stanzas, update_failure
from harness.kernel.debian import image_dependency

DATA = Path(__file__).parent / "data" / "kernel"
MIRROR = "http://deb.debian.org/debian"


def _captured(name: str) -> str:
    return (DATA / name).read_text()


def test_config_keeps_away_from_the_host(tmp_path: Path) -> None:
    a = PrivateApt.at(MIRROR, "trixie", "arm64", base=tmp_path)
    a.prepare()
    conf = (a.root / "apt.conf").read_text()
    assert 'Dir::Etc::main "/dev/null";' in conf  # /etc/apt/apt.conf is not read
    assert f'Dir::Etc::parts "{a.root}/etc/apt.conf.d";' in conf  # nor apt.conf.d
    assert f'Dir::State::status "{a.root}/state/status";' in conf  # nor dpkg's status
    assert 'APT::Architecture "arm64";' in conf
    paths = [line.split('"')[1] for line in conf.splitlines() if '"/' in line]
    assert paths and all(p == "/dev/null" or p.startswith(f"{a.root}/") for p in paths)
    sources = (a.root / "etc/sources.list").read_text()
    assert sources == (f"deb [signed-by={apt.KEYRING}] {MIRROR} trixie main\n")
    assert (a.root / "state/status").read_text() == ""


def test_roots_differ_per_suite_and_arch(tmp_path: Path) -> None:
    roots = {PrivateApt.at(MIRROR, s, arch, base=tmp_path).root
             for s in ("bookworm", "trixie") for arch in ("arm64", "amd64")}
    assert len(roots) == 4


@pytest.mark.parametrize(("capture", "error", "message"), [
    ("apt-update-unknown-suite.txt", UsageError, "suite trixxie not found on"),
    ("apt-update-refused.txt", InfraError, f"cannot reach the mirror {MIRROR}"),
    ("apt-update-dns.txt", InfraError, f"cannot reach the mirror {MIRROR}"),
    ("apt-update-bad-mirror.txt", UsageError, "is not a URL apt accepts"),
])
def test_update_failures_say_whose_fault(capture: str, error: type[Exception],
                                         message: str) -> None:
    problem = update_failure(_captured(capture), MIRROR, "trixxie" if "suite" in capture
                             else "trixie")
    assert type(problem) is error
    assert message in str(problem)
    assert "; " in str(problem)  # problem; fix


def test_successful_update_is_no_failure() -> None:
    assert update_failure(_captured("apt-update-ok.txt"), MIRROR, "trixie") is None


def test_unreachable_mirror_for_real(tmp_path: Path) -> None:
    """Runs apt-get against a closed local port: fast, and no network needed."""
    a = PrivateApt.at("http://127.0.0.1:9/debian", "trixie", "amd64", base=tmp_path)
    with pytest.raises(InfraError, match=r"cannot reach the mirror http://127\.0\.0\.1:9/debian"):
        a.update()
    assert not a.has_lists()


def test_stanza_and_depends_of_a_real_meta_package() -> None:
    [stanza] = parse_stanzas(_captured("apt-cache-show-meta.txt"))
    assert stanza["Package"] == "linux-image-cloud-amd64"
    assert image_dependency(stanza["Depends"]) == ("linux-image-6.12.107+deb13-cloud-amd64",
                                                   "6.12.107-1")


def test_image_package_ends_the_chain() -> None:
    [stanza] = parse_stanzas(_captured("apt-cache-show-image.txt"))
    assert image_dependency(stanza["Depends"]) is None
    assert stanza["Version"] == "6.12.107-1"


def test_parse_depends_alternatives_and_qualifiers() -> None:
    assert parse_depends("kmod, initramfs-tools (>= 0.120+deb8u2) | linux-initramfs-tool, "
                         "python3:any (>=  3.11)") == [
        [("kmod", None)],
        [("initramfs-tools", ">= 0.120+deb8u2"), ("linux-initramfs-tool", None)],
        [("python3", ">= 3.11")],
    ]
    assert image_dependency("linux-image-6.1.0-9-arm64 (>= 6.1)") == ("linux-image-6.1.0-9-arm64",
                                                                     None)


def test_print_uris_line() -> None:
    line = _captured("apt-print-uris.txt").strip()
    m = apt._PRINT_URI.match(line)
    assert m is not None
    assert m["url"].startswith(f"{MIRROR}/pool/main/l/linux-signed-amd64/")
    assert m["sha"] == "04434ff520f860423eafe4203d986a35682ce73c2f71baa39e988ca0da93ac91"
    assert int(m["size"]) == 34402644
