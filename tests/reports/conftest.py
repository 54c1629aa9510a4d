import sys
from pathlib import Path

# The run-directory builder lives with the analysis tests and the browser driver with the shared test
# helpers; the report tests use them too, and their own helpers (report_synthetic.py) sit next to this file.
sys.path.insert(0, str(Path(__file__).parents[1] / "analysis"))
sys.path.insert(0, str(Path(__file__).parents[1] / "helpers"))
sys.path.insert(0, str(Path(__file__).parent))
