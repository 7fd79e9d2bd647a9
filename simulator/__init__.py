"""Supply-network simulator. Its hot modules run compiled (mypyc) when a build matching the sources exists."""

from simulator import native

native.install()
