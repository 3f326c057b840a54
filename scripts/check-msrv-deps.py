#!/usr/bin/env python3
"""Fails when a locked dependency of a published crate declares a
`rust-version` above the workspace's (or none it could be checked by).

Reads `cargo metadata --locked --all-features` for Linux (the only platform
the crates support), follows normal and build dependencies from every
published workspace crate (dev-dependencies build only our tests), and
compares each crate's declared `rust-version` with the workspace's.
"""
import json
import subprocess
import sys


def version_tuple(v):
    parts = [int(p) for p in v.split(".")]
    return tuple(parts + [0] * (3 - len(parts)))


def main():
    meta = json.loads(
        subprocess.run(
            ["cargo", "metadata", "--format-version", "1", "--locked", "--all-features",
             "--filter-platform", "x86_64-unknown-linux-gnu"],
            check=True, capture_output=True, text=True,
        ).stdout
    )
    packages = {p["id"]: p for p in meta["packages"]}
    members = set(meta["workspace_members"])
    msrv = {packages[m]["rust_version"] for m in members}
    if len(msrv) != 1 or None in msrv:
        sys.exit(f"workspace crates disagree on rust-version: {sorted(map(str, msrv))}")
    msrv = msrv.pop()
    nodes = {n["id"]: n for n in meta["resolve"]["nodes"]}
    published = [m for m in members if packages[m].get("publish") != []]
    seen, todo = set(), list(published)
    while todo:
        node = nodes[todo.pop()]
        for dep in node["deps"]:
            kinds = {k["kind"] for k in dep["dep_kinds"]}
            if kinds & {None, "build"} and dep["pkg"] not in seen:
                seen.add(dep["pkg"])
                todo.append(dep["pkg"])
    bad = []
    for pid in sorted(seen - members, key=lambda i: packages[i]["name"]):
        p = packages[pid]
        rv = p.get("rust_version")
        if rv is not None and version_tuple(rv) > version_tuple(msrv):
            bad.append(f"{p['name']} {p['version']} needs Rust {rv}")
    undeclared = sorted(
        f"{packages[i]['name']} {packages[i]['version']}"
        for i in seen - members if packages[i].get("rust_version") is None
    )
    print(f"MSRV {msrv}: {len(seen - members)} locked dependencies checked; "
          f"{len(undeclared)} declare no rust-version ({', '.join(undeclared) or 'none'})")
    if bad:
        print("above the workspace's rust-version:\n  " + "\n  ".join(bad))
        print("fix: cargo update -p NAME --precise OLDER (resolver 3 prefers fitting "
              "versions), or raise rust-version honestly")
        sys.exit(1)


if __name__ == "__main__":
    main()
