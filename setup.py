"""setuptools glue for one thing pyproject.toml cannot say: ship the top-level
guest_scripts/ and configs/ inside the wheel, as harness/_data/<folder>.

They stay where they are in the repository (a workload is two files in
guest_scripts/, the reference configs are in configs/); `harness.data_dir`
finds them there in a checkout or an editable install, and in
harness/_data/ in an installed wheel. Everything else is in pyproject.toml.
"""

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
SHIPPED = ("guest_scripts", "configs")  # harness.SHIPPED


class BuildWithData(build_py):
    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return  # an editable install reads the checkout's folders in place
        for folder in SHIPPED:
            for src in sorted((ROOT / folder).rglob("*")):
                if src.is_file() and "__pycache__" not in src.parts:
                    dest = Path(self.build_lib, "harness", "_data", src.relative_to(ROOT))
                    self.mkpath(str(dest.parent))
                    self.copy_file(str(src), str(dest))


setup(cmdclass={"build_py": BuildWithData})
