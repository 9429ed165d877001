#!/usr/bin/env python3
"""Removes named exports from a .wasm module, in place: drop-exports.py MODULE NAME...

The proxy-wasm Rust SDK exports every callback of the ABI, and Envoy calls
each exported one on every request (a switch from Envoy into the VM and the
SDK's context lookup, about half a microsecond each). `make wasm` drops the
per-request callbacks the filter never implements, so Envoy skips them as the
ABI allows. Names that are not exported are ignored, so running it twice is
harmless.
"""

import os
import sys

MAGIC = b"\0asm\x01\0\0\0"
EXPORT_SECTION = 7


def read_leb(data, at):
    value = shift = 0
    while True:
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return value, at


def leb(value):
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def without_exports(module, names):
    if module[:8] != MAGIC:
        sys.exit("not a WebAssembly 1.0 module")
    out, at, dropped = bytearray(MAGIC), 8, []
    while at < len(module):
        section = module[at]
        size, start = read_leb(module, at + 1)
        body, at = module[start:start + size], start + size
        if section == EXPORT_SECTION:
            count, pos = read_leb(body, 0)
            kept = []
            for _ in range(count):
                length, name_at = read_leb(body, pos)
                name = body[name_at:name_at + length].decode()
                _, end = read_leb(body, name_at + length + 1)  # kind byte, then the index
                if name in names:
                    dropped.append(name)
                else:
                    kept.append(body[pos:end])
                pos = end
            body = leb(len(kept)) + b"".join(kept)
        out += bytes([section]) + leb(len(body)) + body
    return bytes(out), dropped


def main():
    path, names = sys.argv[1], set(sys.argv[2:])
    with open(path, "rb") as f:
        module, dropped = without_exports(f.read(), names)
    if dropped:
        with open(path + ".tmp", "wb") as f:
            f.write(module)
        os.replace(path + ".tmp", path)
        print(f"{path}: dropped the unused exports {', '.join(sorted(dropped))}")


if __name__ == "__main__":
    main()
