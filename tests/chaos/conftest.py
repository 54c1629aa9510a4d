import sys
from pathlib import Path

# The fakes module sits next to this file, and the real-stack helpers (stack_helpers) next to the counter
# tests; make both importable however pytest was started.
sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parents[1] / "counter"))
