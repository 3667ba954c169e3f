"""The generated rule documentation in docs/ matches the rules."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_generated_docs_are_fresh():
    result = subprocess.run([sys.executable, "scripts/generate_docs.py", "--check"], cwd=ROOT,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr + "\nrun: python scripts/generate_docs.py"
