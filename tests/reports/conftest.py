import sys
from pathlib import Path

# The run-directory builder lives with the analysis tests; the report tests use it too, and their own
# helpers (report_browser.py, report_synthetic.py) sit next to this file.
sys.path.insert(0, str(Path(__file__).parents[1] / "analysis"))
sys.path.insert(0, str(Path(__file__).parent))
