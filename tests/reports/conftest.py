import sys
from pathlib import Path

# The run-directory builder lives with the analysis tests; the report tests use it too.
sys.path.insert(0, str(Path(__file__).parents[1] / "analysis"))
