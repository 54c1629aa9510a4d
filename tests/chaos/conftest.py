import sys
from pathlib import Path

# The fakes module sits next to this file; make it importable however pytest was started.
sys.path.insert(0, str(Path(__file__).parent))
