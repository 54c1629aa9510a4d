import sys
from pathlib import Path

# The helper module sits next to this file; make it importable however pytest was started.
sys.path.insert(0, str(Path(__file__).parent))
