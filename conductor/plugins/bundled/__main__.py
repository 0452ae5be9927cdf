"""`python -m conductor.plugins.bundled`: rewrite the digest manifest (run by `make plugins`)."""

from conductor.plugins.bundled import write_manifest

for name, digest in write_manifest().items():
    print(f"{name}: {digest}")
