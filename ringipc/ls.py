"""``python -m ringipc ls``: every ringipc object on this machine - rings
(and the queues, pipes and channels built on them), broadcast topics and
synchronisation primitives, and large objects' side segments (their ring
and sending process) - with kind, capacity, fill level, bytes through,
messages waiting or published, the processes using it (a topic's
subscribers with how far behind they are) and who is asleep; ``--watch N`` redraws
every N seconds with rates (a ``top``); ``--json`` for scripts.

Segments are mapped read-only and every header field is checked before use
(ringipc/core/_inspect.pyx): looking never changes an object, and a corrupt or
half-created segment is listed as such.
"""
from __future__ import annotations

import argparse
import json
import mmap
import os
import sys
import time
from typing import Any, Dict, List, Optional, Sequence, Set, Tuple

from .core import _segment
from .core._segment_handle import anonymous_segments
from .core._inspect import NotRecognised, snapshot
from .core._ring import pid_alive
from .cleanup import live_ring_names, side_segment_of, side_segment_orphaned


def _process_name(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except OSError:
        return "?"


def _read_segment(name: str, path: Optional[str] = None) -> Dict[str, Any]:
    path = path or os.path.join(_segment.SHM_DIR, name)
    fd = os.open(path, os.O_RDONLY)
    try:
        size = os.fstat(fd).st_size
        if size == 0:
            raise NotRecognised("empty (its creator died while creating it?)")
        with mmap.mmap(fd, size, prot=mmap.PROT_READ) as seg:
            info = snapshot(seg)
    finally:
        os.close(fd)
    info["segment_size"] = size
    return info


_PID_LIMIT = 1 << 22  # Linux's PID_MAX_LIMIT: a larger pid in a segment is corrupt


def _alive(pid: int, start: int = 0) -> bool:
    if not 0 < pid <= _PID_LIMIT:
        raise NotRecognised(f"a process id out of range ({pid}) in the segment")
    return bool(pid_alive(pid, start))


def _peers(info: Dict[str, Any]) -> List[Dict[str, Any]]:
    """The processes using an object, each with its role and whether it lives."""
    peers = []
    if info["type"] == "ring":
        for role, owner in (("producer", info["spsc_producer"]), ("consumer", info["spsc_consumer"])):
            if owner:
                peers.append({"pid": owner[0], "role": role, "alive": _alive(owner[0], owner[1])})
        for slot in info["slots"]:
            roles = [r for r, on in (("sending", slot["in_send"]), ("receiving", slot["in_recv"]),
                                     ("asleep-reading", slot["asleep_reading"]),
                                     ("asleep-writing", slot["asleep_writing"])) if on]
            peers.append({"pid": slot["pid"], "role": ",".join(roles) or "attached",
                          "alive": _alive(slot["pid"], slot["start"])})
    elif info["type"] == "topic":
        for sub in info["subscribers"]:
            behind = "" if sub["behind_bytes"] is None else f", {_size(sub['behind_bytes'])} behind"
            peers.append({"pid": sub["pid"], "role": "subscriber" + behind, "alive": _alive(sub["pid"], sub["start"])})
        for pub in info["publishers"]:
            role = "publisher" + (", publishing" if info["publishing_pid"] == pub["pid"] else "")
            peers.append({"pid": pub["pid"], "role": role, "alive": _alive(pub["pid"], pub["start"])})
    elif info.get("holder_pid"):
        peers.append({"pid": info["holder_pid"], "role": "holder", "alive": _alive(info["holder_pid"])})
    for peer in peers:
        peer["name"] = _process_name(peer["pid"]) if peer["alive"] else "(dead)"
    return peers


def _side_segment(name: str, ring: str, sender: int, live_rings: Set[str]) -> Dict[str, Any]:
    """A large object's side segment (a slab of its sender's pool or a one-off
    segment): raw payload, no header of ours to read, known by its name."""
    alive = _alive(sender)
    return {"name": name, "anonymous": False, "type": "side", "kind": "segment", "ring": ring,
            "segment_size": os.stat(os.path.join(_segment.SHM_DIR, name)).st_size, "creator_pid": sender,
            "peers": [{"pid": sender, "role": "sender", "alive": alive,
                       "name": _process_name(sender) if alive else "(dead)"}],
            "orphaned": bool(side_segment_orphaned(name, live_rings))}


def list_objects() -> List[Dict[str, Any]]:
    """A snapshot of every ringipc segment; unreadable ones carry an "error"."""
    found = []
    anonymous = anonymous_segments()
    live_rings = live_ring_names()
    places = [(name, None) for name in _segment.names()] + sorted(anonymous.items())
    for name, path in places:
        entry: Dict[str, object] = {"name": name, "anonymous": path is not None}
        side = side_segment_of(name) if path is None else None
        try:
            if side is not None:
                found.append(_side_segment(name, side[0], side[1], live_rings))
                continue
            info = _read_segment(name, path)
            peers = _peers(info)
            creator = info["creator_pid"]
            # An anonymous segment is freed by the kernel with its last holder: never an orphan.
            orphaned = path is None and (not 0 < creator <= _PID_LIMIT or not pid_alive(creator))
        except FileNotFoundError:
            continue  # removed meanwhile
        except (NotRecognised, OSError, ValueError, OverflowError) as exc:
            entry.update(type="unrecognised", error=str(exc))
            found.append(entry)
            continue
        entry.update(info, peers=peers, orphaned=orphaned)
        found.append(entry)
    return found


def _size(n: Optional[float]) -> str:
    if n is None:
        return "-"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def _state(obj: Dict[str, Any]) -> str:
    if obj["type"] == "ring":
        fill = 100.0 * (obj["used_bytes"] or 0) / obj["capacity"]
        waiting = f"{obj['messages_waiting']}{'' if obj['messages_waiting_exact'] else '+'}"
        closed = [w for w, on in (("writer closed", obj["writer_closed"]), ("reader closed", obj["reader_closed"])) if on]
        return (f"{fill:5.1f}% full, {waiting} msgs waiting, in {_size(obj['bytes_in'])} out {_size(obj['bytes_out'])}"
                + (f", {', '.join(closed)}" if closed else ""))
    if obj["type"] == "side":
        # A slab pool's bell (core/slabs.py) is named like its slabs, with "bell" before the hex.
        bell = obj["name"].rsplit("-", 1)[-1].startswith("bell")
        what = "the bell of a large object sender's slab pool" if bell else "a large object's memory"
        return f"{_size(obj['segment_size'])}, {what} for ring {obj['ring']}"
    if obj["type"] == "topic":
        return (f"{obj['published']} published ({_size(obj['bytes_in'])}), {_size(obj['retained_bytes'])} retained, "
                f"{len(obj['subscribers'])} subscriber(s)")
    if obj["kind"] == "lock":
        return f"held by {obj['holder_pid']}" if obj["holder_pid"] else "free"
    if obj["kind"] == "semaphore":
        return f"value {obj['value']}" + (f" of {obj['bound']}" if obj["bound"] != 0x7FFFFFFF else "")
    return "set" if obj["set"] else "clear"


def render(objects: List[Dict[str, Any]], rates: Optional[Dict[str, Tuple[Any, ...]]] = None) -> str:
    lines = []
    for obj in objects:
        if obj["type"] == "unrecognised":
            lines.append(f"{obj['name']}  ?  {obj['error']}")
            continue
        kind = f"{obj['type']}/{obj['kind']}"
        size = _size(obj["capacity"]) if obj["type"] in ("ring", "topic") else ""
        rate = ""
        if rates and obj["name"] in rates:
            bytes_in, bytes_out = rates[obj["name"]]
            rate = f"  {_size(bytes_in)}/s in, {_size(bytes_out)}/s out"
        orphan = "  ORPHANED (creator dead: python -m ringipc cleanup)" if obj["orphaned"] else ""
        lines.append(f"{obj['name']}  {kind} {size}  {_state(obj)}{rate}  creator {obj['creator_pid']}{orphan}")
        for peer in obj["peers"]:
            lines.append(f"    pid {peer['pid']} {peer['name']}: {peer['role']}{'' if peer['alive'] else ' (dead)'}")
    return "\n".join(lines) if lines else "no ringipc objects"


def _rates(before: List[Dict[str, Any]], after: List[Dict[str, Any]], seconds: float) -> Dict[str, Tuple[Any, ...]]:
    old = {o["name"]: o for o in before if o["type"] == "ring"}
    return {o["name"]: ((o["bytes_in"] - old[o["name"]]["bytes_in"]) / seconds,
                        (o["bytes_out"] - old[o["name"]]["bytes_out"]) / seconds)
            for o in after if o["type"] == "ring" and o["name"] in old}


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ringipc ls", description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print the snapshot as JSON")
    parser.add_argument("--watch", type=float, metavar="SECONDS", help="redraw every SECONDS, with rates (Ctrl-C ends)")
    args = parser.parse_args(argv)
    objects = list_objects()
    if args.json:
        json.dump(objects, sys.stdout, indent=2)
        print()
        return 0
    if not args.watch:
        print(render(objects))
        return 0
    try:
        while True:
            began = time.monotonic()
            time.sleep(args.watch)  # the refresh interval of a display, not synchronisation
            newer = list_objects()
            sys.stdout.write("\x1b[H\x1b[2J" + time.strftime("%H:%M:%S ") + f"every {args.watch} s\n")
            print(render(newer, _rates(objects, newer, time.monotonic() - began)), flush=True)
            objects = newer
    except KeyboardInterrupt:
        return 0
