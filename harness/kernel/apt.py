"""A private apt for one (mirror, suite, architecture), kept in the kharness cache.

The host's apt state is never read or written: apt gets its own config
(APT_CONFIG), sources list, lists, package cache and an empty dpkg status,
and ignores /etc/apt entirely (Dir::Etc::main and ::parts point elsewhere).
Signatures are checked against Debian's archive keyring only (signed-by),
so a package's sha256 comes from a signed index and is worth recording.

Only the main component of the one suite is used: a kernel lives in main,
and naming exactly one suite keeps the answer to "which kernel is this"
simple. Point releases update bookworm's kernel in the main suite; for the
security suite pass `--mirror http://deb.debian.org/debian-security --suite
bookworm-security`. Proxies come from the usual http_proxy environment.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from harness import atomic, cache
from harness.errors import CommandError, InfraError, KharnessError, UsageError

KEYRING = Path("/usr/share/keyrings/debian-archive-keyring.gpg")
COMPONENT = "main"
APT_TIMEOUT = 900.0  # seconds for one apt command: a slow mirror, not a hung one

# apt-get --print-uris: 'URL' FILENAME SIZE SHA256:HEX
_PRINT_URI = re.compile(
    r"^'(?P<url>[^']+)' (?P<file>\S+) (?P<size>\d+) SHA256:(?P<sha>[0-9a-f]{64})$"
)
# apt's words for "the mirror cannot be reached" (network, DNS, proxy).
_UNREACHABLE = (
    "Could not resolve", "Could not connect", "Temporary failure resolving",
    "Connection failed", "Unable to connect", "Connection timed out", "No route to host",
    "Network is unreachable", "Connection refused",
)
_BAD_SIGNATURE = ("NO_PUBKEY", "couldn't be verified", "is not signed", "EXPKEYSIG", "BADSIG")


@dataclass(frozen=True)
class DebFile:
    """Where a .deb is and what it must hash to, as the signed index says."""

    url: str
    filename: str
    size: int
    sha256: str


class PackageGone(InfraError):
    """The index named a version the mirror no longer serves (old versions leave)."""


@dataclass(frozen=True)
class PrivateApt:
    """apt-get/apt-cache confined to `root` for one mirror, suite and Debian arch."""

    root: Path
    mirror: str
    suite: str
    arch: str  # Debian's name: arm64, amd64

    @classmethod
    def at(cls, mirror: str, suite: str, arch: str, base: Path | None = None) -> PrivateApt:
        root = (base or cache.cache_root()) / "apt" / cache.key_of(mirror, suite, arch)
        return cls(root=root, mirror=mirror.rstrip("/"), suite=suite, arch=arch)

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Serialise apt runs on this root across processes (apt's own lock fails, not waits)."""
        with cache.locked(self.root / ".kharness.lock"):
            yield

    def prepare(self) -> None:
        """Create the directory layout and config files (idempotent)."""
        if not KEYRING.is_file():
            raise InfraError(f"{KEYRING} is missing", "apt-get install debian-archive-keyring")
        for sub in ("etc/apt.conf.d", "etc/sources.list.d", "etc/trusted.gpg.d",
                    "etc/preferences.d", "state/lists/partial", "cache/archives/partial", "log"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        _write_if_changed(self.root / "state/status", "")
        _write_if_changed(self.root / "etc/sources.list", self.sources_text())
        _write_if_changed(self.root / "apt.conf", self.config_text())

    def sources_text(self) -> str:
        return f"deb [signed-by={KEYRING}] {self.mirror} {self.suite} {COMPONENT}\n"

    def config_text(self) -> str:
        r = self.root
        items = {
            "Dir::Etc::main": "/dev/null",
            "Dir::Etc::parts": f"{r}/etc/apt.conf.d",
            "Dir::Etc::sourcelist": f"{r}/etc/sources.list",
            "Dir::Etc::sourceparts": f"{r}/etc/sources.list.d",
            "Dir::Etc::trusted": f"{r}/etc/trusted.gpg",
            "Dir::Etc::trustedparts": f"{r}/etc/trusted.gpg.d",
            "Dir::Etc::preferences": f"{r}/etc/preferences",
            "Dir::Etc::preferencesparts": f"{r}/etc/preferences.d",
            "Dir::State": f"{r}/state",
            "Dir::State::status": f"{r}/state/status",
            "Dir::Cache": f"{r}/cache",
            "Dir::Cache::srcpkgcache": "",  # never needed; saves a 40 MB file
            "Dir::Log": f"{r}/log",
            "APT::Architecture": self.arch,
            "APT::Architectures": self.arch,
            "Acquire::Languages": "none",  # no Translation-* downloads
            "Acquire::GzipIndexes": "true",  # keep lists compressed: 20 MB instead of 56
            "Acquire::Retries": "1",
            "Acquire::http::Timeout": "30",
            "APT::Sandbox::User": "root",  # the _apt user cannot enter a private cache dir
        }
        return "".join(f'{key} "{value}";\n' for key, value in items.items())

    def lists_path(self) -> Path:
        return self.root / "state/lists"

    def has_lists(self) -> bool:
        """Whether an update has left a Packages index for our arch."""
        return any(self.lists_path().glob(f"*_{COMPONENT}_binary-{self.arch}_Packages*"))

    def update(self) -> None:
        """apt-get update; a failure says whose fault it is (suite name or network)."""
        self.prepare()
        out = self._run(["apt-get", "-q", "update"], check=False)
        problem = update_failure(out.stdout, self.mirror, self.suite)
        if problem is not None:
            raise problem
        if out.returncode != 0:
            raise CommandError(out.args, out.returncode, out.stdout)
        if not self.has_lists():
            raise UsageError(
                f"suite {self.suite} on {self.mirror} has no {COMPONENT} packages for {self.arch}",
                "check --suite and --arch",
            )

    def show(self, package: str, version: str | None = None) -> dict[str, str]:
        """The candidate's (or `version`'s) control stanza from the signed index."""
        spec = f"{package}={version}" if version else package
        out = self._run(["apt-cache", "show", "--no-all-versions", spec], check=False)
        stanzas = parse_stanzas(out.stdout)
        if out.returncode != 0 or not stanzas:
            where = f"{self.suite}/{COMPONENT} ({self.arch}) on {self.mirror}"
            raise UsageError(
                f"package {spec} not found in {where}",
                "check the package name, e.g. linux-image-cloud-arm64 or linux-image-cloud-amd64",
            )
        return stanzas[0]

    def deb_file(self, package: str, version: str) -> DebFile:
        """URL, file name, size and sha256 of one exact package version."""
        out = self._run(["apt-get", "download", "--print-uris", f"{package}={version}"])
        for line in out.stdout.splitlines():
            if m := _PRINT_URI.match(line.strip()):
                return DebFile(m["url"], m["file"], int(m["size"]), m["sha"])
        raise CommandError(out.args, out.returncode, out.stdout, "apt printed no SHA256 for it")

    def download(self, package: str, version: str, dest_dir: Path) -> Path:
        """Fetch one exact version into `dest_dir`; apt checks it against the signed index."""
        out = self._run(["apt-get", "-q", "download", f"{package}={version}"], cwd=dest_dir,
                        check=False)
        if out.returncode != 0:
            text = out.stdout
            if "404" in text or "was not found" in text or "Can't find a source" in text:
                raise PackageGone(
                    f"{package} {version} is no longer on {self.mirror}",
                    "resolve again with --refresh (old versions leave the archive)",
                )
            problem = update_failure(text, self.mirror, self.suite)
            raise problem or CommandError(out.args, out.returncode, text)
        debs = sorted(dest_dir.glob("*.deb"))
        if len(debs) != 1:
            raise CommandError(out.args, out.returncode, out.stdout, "apt left no single .deb")
        return debs[0]

    def trim(self) -> None:
        """Drop apt's binary package cache (40 MB per root); the lists stay for the next update.

        apt rebuilds it from the lists whenever it is missing (0.7 s), so once
        the .deb is fetched it is only disk used for nothing until the next
        resolution, a day later by default. Call it under locked().
        """
        (self.root / "cache/pkgcache.bin").unlink(missing_ok=True)

    def _run(self, argv: list[str], cwd: Path | None = None,
             check: bool = True) -> subprocess.CompletedProcess[str]:
        self.prepare()
        env = dict(os.environ, APT_CONFIG=str(self.root / "apt.conf"), LC_ALL="C.UTF-8")
        try:
            out = subprocess.run(argv, cwd=cwd, env=env, text=True, stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT, timeout=APT_TIMEOUT, check=False)
        except FileNotFoundError as exc:
            raise InfraError(f"{argv[0]} not found", "run kharness on Debian or Ubuntu") from exc
        except subprocess.TimeoutExpired as exc:
            raise InfraError(
                f"{' '.join(argv)} took over {APT_TIMEOUT:.0f} s against {self.mirror}",
                "check the network or pick another --mirror",
            ) from exc
        if check and out.returncode != 0:
            raise CommandError(argv, out.returncode, out.stdout)
        return out


def update_failure(output: str, mirror: str, suite: str) -> KharnessError | None:
    """Whose fault a failed apt run was, from its output; None when it shows no failure.

    apt-get update exits 0 even when the mirror is unreachable ("Some index
    files failed to download"), so the output decides, not the exit code.
    """
    failures = [line for line in output.splitlines()
                if line.startswith(("E:", "W:", "Err:", "  "))]
    text = "\n".join(failures)
    if not any(line.startswith(("E:", "Err:", "W: Failed")) for line in failures):
        return None
    if "Malformed entry" in text:
        return UsageError(f"mirror {mirror!r} is not a URL apt accepts",
                          "pass e.g. --mirror http://deb.debian.org/debian")
    if "does not have a Release file" in text or ("404" in text and "Release" in text):
        return UsageError(f"suite {suite} not found on {mirror}",
                          "check the suite name, e.g. bookworm or trixie")
    if any(word in text for word in _UNREACHABLE):
        return InfraError(f"cannot reach the mirror {mirror}",
                          "check the network (or http_proxy) or pass another --mirror")
    if any(word in text for word in _BAD_SIGNATURE):
        return InfraError(f"signature check of {suite} on {mirror} failed",
                          "update debian-archive-keyring, or check the mirror is Debian's")
    tail = (failures or [""])[-1].strip()
    return InfraError(f"apt failed for {suite} on {mirror}: {tail[:200]}", "see apt's message")


def parse_stanzas(text: str) -> list[dict[str, str]]:
    """Deb822 control stanzas (apt-cache show output) as dicts; continuation lines joined."""
    stanzas: list[dict[str, str]] = []
    current: dict[str, str] = {}
    key = ""
    for line in text.splitlines():
        if not line.strip():
            if current:
                stanzas.append(current)
            current, key = {}, ""
        elif line[0] in " \t" and key:
            current[key] += "\n" + line.strip()
        elif ":" in line:
            key, _, value = line.partition(":")
            current[key] = value.strip()
    if current:
        stanzas.append(current)
    return stanzas


def parse_depends(value: str) -> list[list[tuple[str, str | None]]]:
    """'a (= 1), b | c' -> [[('a', '= 1')], [('b', None), ('c', None)]].

    Arch qualifiers (pkg:any) are dropped; kharness asks for one arch only.
    """
    groups: list[list[tuple[str, str | None]]] = []
    for group in value.split(","):
        alternatives: list[tuple[str, str | None]] = []
        for alt in group.split("|"):
            m = re.match(r"\s*([^\s(:]+)(?::\S+)?\s*(?:\(([^)]*)\))?", alt)
            if m and m.group(1):
                constraint = " ".join(m.group(2).split()) if m.group(2) else None
                alternatives.append((m.group(1), constraint))
        if alternatives:
            groups.append(alternatives)
    return groups


def _write_if_changed(path: Path, text: str) -> None:
    try:
        if path.read_text() == text:
            return
    except FileNotFoundError:
        pass
    atomic.write_text(path, text)
