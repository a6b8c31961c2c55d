"""Assemble tvm's Lambda layer zip: bin/tvm and the exec wrapper
(layer/tvm-wrapper), both executable, as Lambda extracts them under /opt.

Usage: python scripts/layer.py OUT.zip TVM_BINARY
(make layer builds the binaries for arm64 and x86_64 and calls this.)
"""

import os
import sys
import zipfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WRAPPER = os.path.join(ROOT, "layer", "tvm-wrapper")


def add(z, path, name):
    info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
    info.external_attr = (0o100755 << 16)  # a regular file, rwxr-xr-x
    info.compress_type = zipfile.ZIP_DEFLATED
    with open(path, "rb") as f:
        z.writestr(info, f.read())


def build(out, binary):
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    with zipfile.ZipFile(out, "w") as z:
        add(z, binary, "bin/tvm")
        add(z, WRAPPER, "tvm-wrapper")
    return out


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    print(build(sys.argv[1], sys.argv[2]))
