"""Names transports put in the filesystem (socket files, FIFOs): removing
one only while it is still the very file we made or judged abandoned.

Between looking at a path and unlinking it another process may have put a
new file there; comparing device and inode first keeps us from removing
that one (what remains is the instant between the comparison and the
unlink, which no portable call closes)."""
from __future__ import annotations

import os


def unlink_if_same(path: str, st: os.stat_result) -> None:
    """Unlink ``path`` if it is still the file ``st`` describes."""
    try:
        now = os.lstat(path)
        if (now.st_dev, now.st_ino) == (st.st_dev, st.st_ino):
            os.unlink(path)
    except FileNotFoundError:
        pass
