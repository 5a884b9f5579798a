"""Types of ringipc.core._inspect (compiled from _inspect.pyx): read-only segment snapshots."""
from typing import Any, Dict, Optional, Tuple

from typing_extensions import Buffer

MAX_WALK: int

class NotRecognised(ValueError): ...

def _owner(word: int) -> Optional[Tuple[int, int]]: ...
def snapshot(seg: Buffer) -> Dict[str, Any]: ...
