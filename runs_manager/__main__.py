import sys

from runs_manager.main import main

if __name__ == "__main__":
    sys.exit(main())
