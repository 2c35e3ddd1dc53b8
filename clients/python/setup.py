"""A wheel built with the core in the package (packaging/wheel/build.sh copies libws4redis.so.N and
the ws4redis program into ws4redis/ first) is a platform wheel for any Python 3 (ctypes, no
extension module): py3-none-<platform>, which auditwheel repair then turns into a manylinux tag.
Without them it stays a pure wheel."""

import os

from setuptools import setup
from setuptools.dist import Distribution

try:
    from setuptools.command.bdist_wheel import bdist_wheel
except ImportError:  # setuptools < 70.1
    from wheel.bdist_wheel import bdist_wheel

HERE = os.path.dirname(os.path.abspath(__file__))
BUNDLES_CORE = any(name.startswith("libws4redis.so.") for name in os.listdir(os.path.join(HERE, "ws4redis")))


class CoreDistribution(Distribution):
    def has_ext_modules(self):
        return BUNDLES_CORE


class CoreWheel(bdist_wheel):
    def get_tag(self):
        tag = super().get_tag()
        return ("py3", "none", tag[2]) if BUNDLES_CORE else tag


setup(distclass=CoreDistribution, cmdclass={"bdist_wheel": CoreWheel})
