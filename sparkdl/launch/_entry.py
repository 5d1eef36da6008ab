"""The rank child process (see child.py and spare.py).

``python -m sparkdl.launch._entry PAYLOAD RESULT`` runs one function now;
``python -m sparkdl.launch._entry --wait MODULES`` imports MODULES first, then waits on stdin.
"""

import sys

if __name__ == "__main__":
    if sys.argv[1] == "--wait":
        from sparkdl.launch.spare import wait_main

        sys.exit(wait_main(sys.argv[2]))
    from sparkdl.launch.child import child_main

    sys.exit(child_main(sys.argv[1], sys.argv[2]))
