"""The `pnpovss` Python module, built by the project's CMake (see pyproject.toml).

The module and its type stub (python/pnpovss.pyi) are installed side by side. The build goes into
build-python/ (compiler cache shared with scripts/build.sh through ccache); PNPOVSS_BUILD_DIR
names another CMake build folder to take the module from (an existing configured build is reused
as it is).
"""
import os
import re
import shutil
import subprocess
import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

ROOT = os.path.dirname(os.path.abspath(__file__))


def project_version():
    with open(os.path.join(ROOT, "CMakeLists.txt")) as f:
        return re.search(r"project\(pnp_ovss VERSION ([0-9.]+)", f.read()).group(1)


class CMakeBuild(build_ext):
    def build_extension(self, ext):
        build_dir = os.environ.get("PNPOVSS_BUILD_DIR") or os.path.join(ROOT, "build-python")
        env = dict(os.environ, CCACHE_BASEDIR=ROOT)
        if not os.path.exists(os.path.join(build_dir, "CMakeCache.txt")):
            subprocess.check_call(["cmake", "-S", ROOT, "-B", build_dir, "-DCMAKE_BUILD_TYPE=Release",
                                   "-DPNPOVSS_BUILD_TESTS=OFF", "-DPNPOVSS_BUILD_BENCH=OFF",
                                   "-DPython3_EXECUTABLE=" + sys.executable], env=env)
        subprocess.check_call(["cmake", "--build", build_dir, "--target", "pnpovss_python",
                               "-j", str(os.cpu_count() or 1)], env=env)
        built = [f for f in os.listdir(os.path.join(build_dir, "python"))
                 if f.startswith("pnpovss.") and f.endswith(".so")]
        if len(built) != 1:
            sys.exit("setup.py: expected one pnpovss.*.so in %s/python, found %s" % (build_dir, built))
        target = self.get_ext_fullpath(ext.name)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        shutil.copyfile(os.path.join(build_dir, "python", built[0]), target)
        shutil.copyfile(os.path.join(ROOT, "python", "pnpovss.pyi"), os.path.join(os.path.dirname(target), "pnpovss.pyi"))


setup(
    name="pnpovss",
    version=project_version(),
    description="Training-free open-vocabulary semantic segmentation (PnP-OVSS) on libtorch",
    python_requires=">=3.9",
    install_requires=["numpy"],
    ext_modules=[Extension("pnpovss", sources=[])],
    cmdclass={"build_ext": CMakeBuild},
    # setuptools' own build files go beside CMake's, not into the CMake build folder build/.
    options={"build": {"build_base": os.path.join("build-python", "setuptools")},
             "egg_info": {"egg_base": "build-python"}},
    zip_safe=False,
)
