"""``python -m sparkdl.launch._entry PAYLOAD RESULT``: the rank child process (see child.py)."""

import sys

from sparkdl.launch.child import child_main

if __name__ == "__main__":
    sys.exit(child_main(sys.argv[1], sys.argv[2]))
