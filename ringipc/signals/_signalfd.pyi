"""Types of ringipc.signals._signalfd (compiled from _signalfd.pyx): sigqueue and signalfd."""
from typing import Iterable, Tuple

from typing_extensions import Buffer

SIGINFO_SIZE: int

def send(pid: int, signum: int, value: int) -> None: ...
def open_fd(signums: Iterable[int]) -> int: ...
def parse(record: Buffer) -> Tuple[int, int, int, int, int]: ...
